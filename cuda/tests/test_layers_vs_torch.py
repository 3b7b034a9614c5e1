"""On the GPU: multi-head / cross attention against PyTorch's nn.MultiheadAttention in float64
on the same weights and inputs, and linear attention (elu, relu, dpfp; causal and not)
against a float64 reference written from SPEC.md's definition. Fresh random inputs each run,
odd sizes, every dtype, and the error messages; ASAM's five patterns (local, strided,
hierarchical, random, clustered) against float64 attention under the pattern's mask
(sparse_attention.h's rules, random's lists re-derived here from its seed). One line per
check; exits non-zero on any failure."""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda_layers  # noqa: E402
from attn_cuda import AttnCudaError  # noqa: E402
from checks import check, check_errors, finish, rand, reference_attention, rel  # noqa: E402


def mha_reference(query, key, value, w, heads, causal, keep):
    """nn.MultiheadAttention (batch_first) in float64 with our weights; keep: bool [b, sk] or None."""
    e, kdim, vdim = query.shape[2], key.shape[2], value.shape[2]
    m = torch.nn.MultiheadAttention(e, heads, bias="q_bias" in w, kdim=kdim, vdim=vdim, batch_first=True,
                                    dtype=torch.float64, device="cuda")
    with torch.no_grad():
        if kdim == e and vdim == e:
            m.in_proj_weight.copy_(torch.cat([w["q_weight"], w["k_weight"], w["v_weight"]]).double())
        else:
            m.q_proj_weight.copy_(w["q_weight"].double())
            m.k_proj_weight.copy_(w["k_weight"].double())
            m.v_proj_weight.copy_(w["v_weight"].double())
        if "q_bias" in w:
            m.in_proj_bias.copy_(torch.cat([w["q_bias"], w["k_bias"], w["v_bias"]]).double())
            m.out_proj.bias.copy_(w["out_bias"].double())
        m.out_proj.weight.copy_(w["out_weight"].double())
    sq, sk = query.shape[1], key.shape[1]
    attn_mask = None
    if causal:
        attn_mask = torch.ones(sq, sk, dtype=torch.bool, device="cuda").triu(1)  # True = blocked
    out, _ = m(query.double(), key.double(), value.double(), need_weights=False, attn_mask=attn_mask,
               key_padding_mask=None if keep is None else ~keep)
    return out


def weights_for(e, kdim, vdim, bias, dtype):
    s = 1 / math.sqrt(e)
    w = {"q_weight": rand(e, e, dtype=dtype) * s, "k_weight": rand(e, kdim, dtype=dtype) / math.sqrt(kdim),
         "v_weight": rand(e, vdim, dtype=dtype) / math.sqrt(vdim), "out_weight": rand(e, e, dtype=dtype) * s}
    if bias:
        w.update({name: rand(e, dtype=dtype) * 0.1 for name in ("q_bias", "k_bias", "v_bias", "out_bias")})
    return w


def test_multihead():
    tol = {torch.float16: 2.5e-3, torch.bfloat16: 2e-2, torch.float32: 1e-2}  # max seen: 6e-4, 5e-3, 3e-3
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        for (e, heads) in ((128, 2), (256, 2), (512, 8)):
            for (sq, sk, kdim, vdim) in ((17, 17, e, e), (1, 300, 96, 40), (300, 33, e, 72)):
                for causal in (False, True):
                    if causal and sq != sk:
                        continue
                    for bias in (True, False):
                        for padded in (False, True):
                            b = 2
                            query, key, value = rand(b, sq, e, dtype=dtype), rand(b, sk, kdim, dtype=dtype), rand(b, sk, vdim, dtype=dtype)
                            w = weights_for(e, kdim, vdim, bias, dtype)
                            keep = None
                            if padded:  # the last third of each key row padded away (never all of it)
                                keep = torch.ones(b, sk, dtype=torch.bool, device="cuda")
                                keep[:, sk - sk // 3:] = False
                            mask = None if keep is None else keep.to(torch.uint8)[:, None, None, :]
                            out = attn_cuda_layers.multihead_forward(query, key, value, w, heads, causal=causal,
                                                                     active_mask=mask)
                            ref = mha_reference(query, key, value, w, heads, causal, keep)
                            err = rel(out, ref)
                            check(f"mha {dtype} e{e} h{heads} q{sq} k{sk} kdim{kdim} vdim{vdim} causal={causal} "
                                  f"bias={bias} padded={padded}", err < tol[dtype], f"rel {err:.1e}")
    q = rand(1, 5, 128, dtype=torch.float16)
    w = weights_for(128, 128, 128, True, torch.float16)
    bad_w = dict(w, k_weight=rand(128, 64, dtype=torch.float16))
    check_errors([
        ("heads not dividing embed", lambda: attn_cuda_layers.multihead_forward(q, q, q, w, 3), "heads"),
        ("head_dim 32", lambda: attn_cuda_layers.multihead_forward(q, q, q, w, 4), "heads"),
        ("k_weight of the wrong width", lambda: attn_cuda_layers.multihead_forward(q, q, q, bad_w, 2), "k_weight"),
        ("key of another dtype", lambda: attn_cuda_layers.multihead_forward(q, q.float(), q, w, 2), "key"),
        ("host memory", lambda: attn_cuda_layers.multihead_forward(q.cpu(), q, q, w, 2, out=torch.empty_like(q)), "query"),
    ], AttnCudaError)


def features(x, name):
    if name == "elu":
        return torch.nn.functional.elu(x) + 1
    if name == "relu":
        return torch.relu(x)
    xp = torch.cat([torch.relu(x), torch.relu(-x)], -1)  # dpfp, nu = 1
    return xp * xp.roll(1, -1)


def linear_reference(q, k, v, name, causal, eps):
    """float64, O(n^2) on purpose: phi(q)^T S / (phi(q)^T z + eps) written as masked products."""
    fq, fk = (features(x.double().transpose(1, 2), name) for x in (q, k))
    vd = v.double().transpose(1, 2)
    a = fq @ fk.transpose(-1, -2)
    if causal:
        a = a.tril()
    num, den = a @ vd, a.sum(-1, keepdim=True) + eps
    return (num / den).transpose(1, 2)


def test_linear():
    tol = {torch.float32: 2e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}  # max seen: 3e-7, 2e-4, 2e-3
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for name in ("elu", "relu", "dpfp"):
            for causal in (False, True):
                for (sq, sk, d, dv) in ((1, 1, 16, 16), (17, 17, 64, 48), (64, 64, 32, 32), (65, 65, 64, 64),
                                        (300, 300, 64, 16), (1100, 1100, 32, 64), (33, 200, 64, 64)):
                    if causal and sq != sk:
                        continue
                    q, k, v = rand(2, sq, 3, d, dtype=dtype), rand(2, sk, 3, d, dtype=dtype), rand(2, sk, 3, dv, dtype=dtype)
                    out = attn_cuda_layers.linear_attention(q, k, v, name, causal=causal, eps=1e-6)
                    ref = linear_reference(q, k, v, name, causal, 1e-6)
                    err = rel(out, ref)
                    check(f"linear {dtype} {name} causal={causal} q{sq} k{sk} d{d} dv{dv}", err < tol[dtype],
                          f"rel {err:.1e}")
    # Strided (non-contiguous) q: a transposed view of [b, h, s, d].
    q = rand(2, 3, 70, 32, dtype=torch.float32).transpose(1, 2)
    k, v = rand(2, 70, 3, 32, dtype=torch.float32), rand(2, 70, 3, 32, dtype=torch.float32)
    err = rel(attn_cuda_layers.linear_attention(q, k, v, "elu", causal=True), linear_reference(q, k, v, "elu", True, 1e-6))
    check("linear strided q", err < 2e-6, f"rel {err:.1e}")
    q = rand(1, 8, 2, 16, dtype=torch.float32)
    check_errors([
        ("causal with seq_q != seq_k", lambda: attn_cuda_layers.linear_attention(q, q[:, :5], q[:, :5], causal=True), "causal"),
        ("unknown feature map", lambda: attn_cuda_layers.linear_attention(q, q, q, 7), "feature_map"),
        ("NaN eps", lambda: attn_cuda_layers.linear_attention(q, q, q, eps=float("nan")), "eps"),
        ("v of another batch", lambda: attn_cuda_layers.linear_attention(q, q, rand(2, 8, 2, 16, dtype=torch.float32)), "v"),
    ], AttnCudaError)


def asam_mask(n, pattern, window_size, stride, scales):
    """keep [n, n]: src/asam/sparse_attention.h's definition of each pattern."""
    i = torch.arange(n, device="cuda")[:, None]
    d = (i - torch.arange(n, device="cuda")[None, :]).abs()
    half = window_size // 2
    if pattern == "local":
        return d <= half
    if pattern == "strided":
        return (d <= stride // 2) | (d % stride == 0)
    keep = d <= half
    for s in scales:
        keep |= (d % s == 0) & (d <= s * half)
    return keep


def test_asam():
    cases = [("local", 128, 32, ()), ("strided", 128, 32, ()), ("strided", 128, 48, ()),
             ("hierarchical", 128, 32, (4, 16, 64)), ("hierarchical", 40, 32, (2, 6, 24))]
    for dtype in (torch.bfloat16, torch.float16):
        for d in (64, 128):
            for n in (1000, 2048):
                for pattern, window, stride, scales in cases:
                    b, h = 2, 3
                    q, k, v = (rand(b, n, h, d, dtype=dtype) for _ in range(3))
                    lse = torch.empty(b, h, n, device="cuda")
                    out = attn_cuda_layers.asam_forward(q, k, v, pattern, window, stride, scales or (4,), lse=lse)
                    keep = asam_mask(n, pattern, window, stride, scales).expand(b, h, n, n)
                    want, want_lse, _ = reference_attention(q, k, v, keep=keep)
                    lse_err = (lse - want_lse).abs().max().item()
                    tol = 2e-2 if dtype == torch.bfloat16 else 5e-3
                    check(f"asam {pattern} w{window} s{stride} {scales} {dtype} d{d} n{n}",
                          rel(out, want) < tol and lse_err < 5e-2, f"rel {rel(out, want):.1e}, lse {lse_err:.1e}")
    q = rand(1, 64, 2, 64, dtype=torch.bfloat16)
    centroids = torch.randn(2, 8, 64, device="cuda")
    check_errors([
        ("unknown pattern", lambda: attn_cuda_layers.asam_forward(q, q, q, 7), "pattern"),
        ("random block 48", lambda: attn_cuda_layers.asam_forward(q, q, q, "random", block_size=48), "block_size"),
        ("clustered without centroids", lambda: attn_cuda_layers.asam_forward(q, q, q, "clustered"), "centroids"),
        ("centroids of another head dim",
         lambda: attn_cuda_layers.asam_forward(q, q, q, "clustered", centroids=centroids[:, :, :32].contiguous()),
         "centroids"),
        ("float16 centroids", lambda: attn_cuda_layers.asam_forward(q, q, q, "clustered", centroids=centroids.half()),
         "centroids"),
        ("strided centroids",
         lambda: attn_cuda_layers.asam_forward(q, q, q, "clustered", centroids=centroids.transpose(1, 2).contiguous().transpose(1, 2)),
         "centroids"),
        ("scales not multiples", lambda: attn_cuda_layers.asam_forward(q, q, q, scales=(4, 6)), "scales"),
        ("window 0", lambda: attn_cuda_layers.asam_forward(q, q, q, window_size=0), "window_size"),
        ("k of another length", lambda: attn_cuda_layers.asam_forward(q, q[:, :32], q[:, :32]), "k"),
        ("packed q (heads not contiguous per row)",
         lambda: attn_cuda_layers.asam_forward(*rand(1, 64, 3, 2, 64, dtype=torch.bfloat16).unbind(2)), "q"),
    ], AttnCudaError)


M64 = (1 << 64) - 1


def random_key_blocks(n, heads, window_size, block, seed):
    """lists[h][qb]: the random pattern's key blocks, written from src/asam/random_blocks.h's
    definition (splitmix64, a partial Fisher-Yates shuffle seeded by (seed, head, block))."""
    nb = -(-n // block)
    count = 1 + min(nb - 1, -(-window_size // block))
    lists = []
    for h in range(heads):
        rows = []
        for qb in range(nb):
            state = seed ^ (h << 32) ^ ((qb * 0x632BE59BD9B4E019) & M64)
            pool = list(range(nb))
            pool[0], pool[qb] = pool[qb], pool[0]
            for x in range(1, count):
                state = (state + 0x9E3779B97F4A7C15) & M64
                z = state
                z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
                z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
                z ^= z >> 31
                pick = x + z % (nb - x)
                pool[x], pool[pick] = pool[pick], pool[x]
            rows.append(sorted(pool[:count]))
        lists.append(rows)
    return lists


def random_mask(n, heads, window_size, block, seed):
    """keep [heads, n, n]: query i attends key j when j's block is in the list of i's block."""
    lists = random_key_blocks(n, heads, window_size, block, seed)
    nb = len(lists[0])
    blocks = torch.zeros(heads, nb, nb, dtype=torch.bool)
    for h in range(heads):
        for qb in range(nb):
            blocks[h, qb, lists[h][qb]] = True
    idx = torch.arange(n) // block
    return blocks[:, idx][:, :, idx].cuda()


def separated_rows(x, centroids, margin=1e-2):
    """x with every row's best and second-best centroid (float64 dot products) at least
    `margin` apart, redrawn where not, so float32 and float64 pick the same cluster."""
    while True:
        dots = torch.einsum("bnhd,hcd->bnhc", x.double(), centroids.double())
        top = dots.topk(min(2, dots.shape[-1]), -1).values
        close = (top[..., 0] - top[..., -1] < margin) if top.shape[-1] > 1 else torch.zeros_like(top[..., 0], dtype=torch.bool)
        if not close.any():
            return x, dots.argmax(-1)  # [b, n, h]
        x[close] = torch.randn_like(x[close])


def lse_error(lse, want):
    """Largest |lse - want| over finite entries; inf where the two disagree on which are -inf."""
    finite = torch.isfinite(want)
    if not torch.equal(finite, torch.isfinite(lse)):
        return math.inf
    return (lse - want)[finite].abs().max().item() if finite.any() else 0.0


def test_asam_segments():
    """random and clustered: one flash call with segment ids (asam_segments.cu)."""
    for dtype in (torch.bfloat16, torch.float16):
        tol = 2e-2 if dtype == torch.bfloat16 else 5e-3
        for d in (64, 128):
            for n, block, window in ((1000, 64, 128), (2048, 64, 200), (1000, 96, 300), (2048, 128, 128), (17, 32, 64)):
                b, h = 2, 3
                seed = int.from_bytes(os.urandom(8), "little")
                q, k, v = (rand(b, n, h, d, dtype=dtype) for _ in range(3))
                lse = torch.empty(b, h, n, device="cuda")
                out = attn_cuda_layers.asam_forward(q, k, v, "random", window, lse=lse, block_size=block, seed=seed)
                keep = random_mask(n, h, window, block, seed).expand(b, h, n, n)
                want, want_lse, _ = reference_attention(q, k, v, keep=keep)
                err = lse_error(lse, want_lse)
                check(f"asam random w{window} block {block} {dtype} d{d} n{n}", rel(out, want) < tol and err < 5e-2,
                      f"rel {rel(out, want):.1e}, lse {err:.1e}")
            for n, clusters in ((1000, 16), (2048, 32), (100, 64), (1, 4)):
                b, h = 2, 3
                centroids = torch.randn(h, clusters, d, device="cuda")
                q, cq = separated_rows(rand(b, n, h, d, dtype=dtype), centroids)
                k, ck = separated_rows(rand(b, n, h, d, dtype=dtype), centroids)
                v = rand(b, n, h, d, dtype=dtype)
                lse = torch.empty(b, h, n, device="cuda")
                out = attn_cuda_layers.asam_forward(q, k, v, "clustered", lse=lse, centroids=centroids)
                keep = cq.transpose(1, 2)[..., :, None] == ck.transpose(1, 2)[..., None, :]  # [b, h, n, n]
                want, want_lse, _ = reference_attention(q, k, v, keep=keep)
                err = lse_error(lse, want_lse)
                empty = int((~keep.any(-1)).sum())  # queries whose cluster has no key: zeros
                check(f"asam clustered C{clusters} {dtype} d{d} n{n} ({empty} queries without keys)",
                      rel(out, want) < tol and err < 5e-2, f"rel {rel(out, want):.1e}, lse {err:.1e}")


def main():
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    test_multihead()
    test_linear()
    test_asam()
    test_asam_segments()
    finish()


if __name__ == "__main__":
    main()
