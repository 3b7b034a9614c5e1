"""On the GPU: multi-head / cross attention against PyTorch's nn.MultiheadAttention in float64
on the same weights and inputs, and linear attention (elu, relu, dpfp; causal and not)
against a float64 reference written from SPEC.md's definition. Fresh random inputs each run,
odd sizes, every dtype, and the error messages; ASAM's local, strided and hierarchical
patterns against float64 attention under the pattern's mask (sparse_attention.h's rules). One line per check; exits non-zero on any
failure."""
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
    check_errors([
        ("random pattern", lambda: attn_cuda_layers.asam_forward(q, q, q, "random"), "pattern"),
        ("scales not multiples", lambda: attn_cuda_layers.asam_forward(q, q, q, scales=(4, 6)), "scales"),
        ("window 0", lambda: attn_cuda_layers.asam_forward(q, q, q, window_size=0), "window_size"),
        ("k of another length", lambda: attn_cuda_layers.asam_forward(q, q[:, :32], q[:, :32]), "k"),
        ("packed q (heads not contiguous per row)",
         lambda: attn_cuda_layers.asam_forward(*rand(1, 64, 3, 2, 64, dtype=torch.bfloat16).unbind(2)), "q"),
    ], AttnCudaError)


def main():
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    test_multihead()
    test_linear()
    test_asam()
    finish()


if __name__ == "__main__":
    main()
