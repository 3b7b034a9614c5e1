"""On the GPU: the forward against PyTorch on the same inputs (float64 math reference and
SDPA's flash backend), seed 004's fwd(), and the error messages. Fresh random inputs each
run. Prints one line per check and exits non-zero on any failure."""
import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402
from checks import check, check_errors, finish, rand, reference_attention, rel  # noqa: E402


def main():
    torch.manual_seed(int.from_bytes(__import__("os").urandom(4), "little"))
    tol = {torch.float16: 3e-3, torch.bfloat16: 2e-2, torch.float32: 2e-2}
    # 1. plain, causal (both alignments), GQA, odd sizes, every dtype, vs float64.
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        for d in (64, 128):
            for causal in (False, "top-left", "bottom-right"):
                for (sq, sk) in ((1, 1), (17, 1000), (1000, 17), (513, 777)):
                    q, k, v = rand(2, sq, 8, d, dtype=dtype), rand(2, sk, 2, d, dtype=dtype), rand(2, sk, 2, d, dtype=dtype)
                    lse = torch.empty(2, 8, sq, device="cuda")
                    out, _ = attn_cuda.flash_forward(q, k, v, lse=lse, causal=causal)
                    want, want_lse, _ = reference_attention(q, k, v, causal=causal)
                    e = rel(out, want)
                    finite_lse = torch.isfinite(want_lse)
                    lse_ok = bool(torch.equal(torch.isfinite(lse), finite_lse)) and (
                        (lse[finite_lse] - want_lse[finite_lse]).abs().max().item() < 5e-2 if finite_lse.any() else True)
                    check(f"{dtype} d{d} causal={causal} q{sq} k{sk}", e < tol[dtype] and lse_ok and torch.isfinite(out).all().item(),
                          f"rel {e:.1e}")
    # 2. against SDPA's flash backend, bf16, larger.
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for d in (64, 128):
        for causal in (False, True):
            q, k, v = (rand(2, 2048, 16, d, dtype=torch.bfloat16) for _ in range(3))
            out, _ = attn_cuda.flash_forward(q, k, v, causal=causal)
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                sd = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                    is_causal=causal).transpose(1, 2)
            want, _, _ = reference_attention(q, k, v, causal="top-left" if causal else None)
            check(f"vs SDPA flash d{d} causal={causal}", rel(out, want) < 1e-2,
                  f"ours {rel(out, want):.1e}, SDPA flash {rel(sd, want):.1e} (vs float64)")
    # 3. seed 004 fwd: zoh + active_mask + keep_window + softcap + return_softmax.
    for causal in (False, True):
        b, s, h, d, w = 2, 640, 4, 128, 96
        q, k, v = (rand(b, s, h, d, dtype=torch.bfloat16) for _ in range(3))
        zoh = rand(b, h, s, s, dtype=torch.bfloat16)
        active = (torch.rand(b, h, s, s, device="cuda") < 0.8).to(torch.bfloat16)
        out, lse, p, rng_state = attn_cuda.fwd(q, k, v, zoh, active, is_causal=causal, keep_window_size=w,
                                               softcap=30.0, return_softmax=True)
        keep = active.bool()
        if causal:
            keep &= torch.ones(s, s, dtype=torch.bool, device="cuda").tril()
        cand = zoh.float().masked_fill(~keep, -math.inf)
        kth = cand.topk(w, -1).values[..., -1:]
        keep &= (zoh.float() >= kth) | (kth == -math.inf)
        want, want_lse, want_p = reference_attention(q, k, v, bias=zoh, keep=keep, softcap=30.0)
        check(f"fwd(zoh, active_mask, keep_window={w}, softcap, causal={causal})", rel(out, want) < 2e-2,
              f"out rel {rel(out, want):.1e}, p rel {rel(p, want_p):.1e}, kept/row {keep.sum(-1).float().mean():.1f}")
        check("  return_softmax p", rel(p, want_p) < 2e-2)
        check("  rng_state", rng_state.shape == (2,))
    # 3b. the dynamic mask without softcap, dropout or return_softmax: on the H100 the Hopper
    # kernel runs it (a bias of q's dtype with 16-byte aligned rows; the mask, any dtype, and
    # the keep window through the pre-pass's kept-key bits), skipping the key tiles the
    # pre-pass finds empty. GQA, rows past a query block's end, fully masked rows, empty leading
    # tiles, bottom-right causal, mask-only and bias-only.
    for dtype in (torch.bfloat16, torch.float16):
        for d in (64, 128):
            for causal in (False, True):
                for mask_kind, w in (("same", 200), ("bytes", 1000), ("same", 0), ("none", 300), ("bias-less", 0),
                                     ("bias-less bytes", 0), ("float32", 300)):
                    # seq_k not a whole number of 128-key tiles: the last tile's chunks past it
                    b, sq, sk, hq, h = 2, (1000 if causal else 1100), (1040 if d == 64 else 1552), 4, 2
                    q = rand(b, sq, hq, d, dtype=dtype)
                    k, v = (rand(b, sk, h, d, dtype=dtype) for _ in range(2))
                    zoh = None if mask_kind.startswith("bias-less") else rand(b, h, sq, sk, dtype=dtype)
                    on = torch.rand(b, h, sq, sk, device="cuda") < 0.7
                    on[:, :, 5] = False  # fully masked rows
                    on[:, :, 512:768, :1024] = False  # query blocks 4, 5: leading key tiles empty
                    active = {"same": on.to(dtype), "bytes": on.to(torch.uint8), "none": None,
                              "bias-less": on.to(dtype), "bias-less bytes": on.to(torch.uint8),
                              "float32": on.float()}[mask_kind]
                    lse = torch.empty(b, hq, sq, device="cuda")
                    out = attn_cuda.flash_forward(q, k, v, bias=zoh, active_mask=active, lse=lse, keep_window_size=w,
                                                  causal="bottom-right" if causal else False)[0]
                    keep = on.clone() if active is not None else torch.ones_like(on)
                    if causal:
                        keep &= (torch.arange(sk, device="cuda")[None, :] <= torch.arange(sq, device="cuda")[:, None] + sk - sq)
                    if w and zoh is not None and w < sk:
                        cand = zoh.float().masked_fill(~keep, -math.inf)
                        kth = cand.topk(w, -1).values[..., -1:]
                        keep &= (zoh.float() >= kth) | (kth == -math.inf)
                    want, want_lse, _ = reference_attention(q, k, v, bias=zoh, keep=keep)
                    fin = torch.isfinite(want_lse)
                    lse_ok = bool(torch.equal(torch.isfinite(lse), fin)) and (lse[fin] - want_lse[fin]).abs().max().item() < 5e-2
                    tol = 2e-2 if dtype == torch.bfloat16 else 5e-3
                    check(f"dynamic mask {dtype} d{d} causal={causal} mask={mask_kind} keep_window={w}",
                          rel(out, want) < tol and lse_ok and torch.isfinite(out).all().item(),
                          f"rel {rel(out, want):.1e}, kept/row {keep.sum(-1).float().mean():.1f}")
    # 4. a sliding window (ASAM's local pattern), alone and with causal, against float64;
    # windows of 1024 keys or more run the Hopper kernel, narrower ones the mma.sync kernel.
    for d in (64, 128):
        for causal, window in ((False, (64, 64)), (False, (0, 130)), (True, (200, -1)), (True, (31, 0)),
                               (False, (600, 700)), (True, (1500, -1))):
            b, h = 2, 4
            sq = sk = 700 if window[0] + window[1] < 1023 else 2500
            q, k, v = (rand(b, sq, h, d, dtype=torch.bfloat16) for _ in range(3))
            out = attn_cuda.flash_forward(q, k, v, causal=causal, window=window)[0]
            i = torch.arange(sq, device="cuda")[:, None]
            j = torch.arange(sk, device="cuda")[None, :]
            keep = torch.ones(sq, sk, dtype=torch.bool, device="cuda")
            if window[0] >= 0:
                keep &= j >= i - window[0]
            if window[1] >= 0:
                keep &= j <= i + window[1]
            if causal:
                keep &= j <= i
            want, _, _ = reference_attention(q, k, v, keep=keep.expand(b, h, sq, sk))
            check(f"window {window} d{d} causal={causal}", rel(out, want) < 1e-2, f"rel {rel(out, want):.1e}")
    # 4b. rows whose maximum keeps growing across key tiles (the kernel moves a row's reference
    # maximum only when a tile exceeds it by more than 2^8, then rescales the output): large
    # logits rising along the keys, dense kernel and (with a rising bias, softcap, lse and
    # return_softmax) the general one; fully masked leading tiles under bottom-right causal.
    for dtype in (torch.float16, torch.bfloat16):
        for d in (64, 128):
            for causal in (False, "top-left", "bottom-right"):
                b, sq, sk, h = 2, 300, 1000, 4
                u = torch.randn(d, device="cuda")
                u /= u.norm()
                ramp = torch.linspace(-3, 3, sk, device="cuda")[None, :, None, None] * u
                q = (torch.randn(b, sq, h, d, device="cuda") + 4 * u).to(dtype)
                k = (torch.randn(b, sk, h, d, device="cuda") + 4 * ramp).to(dtype)
                v = rand(b, sk, h, d, dtype=dtype)
                lse = torch.empty(b, h, sq, device="cuda")
                out = attn_cuda.flash_forward(q, k, v, lse=lse, scale=0.5, causal=causal)[0]
                want, want_lse, _ = reference_attention(q, k, v, scale=0.5, causal=causal)
                fin = torch.isfinite(want_lse)
                lse_err = (lse[fin] - want_lse[fin]).abs().max().item()
                check(f"growing maxima {dtype} d{d} causal={causal}",
                      rel(out, want) < (2e-2 if dtype == torch.bfloat16 else 5e-3) and lse_err < 5e-2,
                      f"rel {rel(out, want):.1e}, lse {lse_err:.1e}")
                bias = (torch.arange(sk, device="cuda") * 0.05).expand(b, h, sq, sk) + rand(b, h, sq, sk, dtype=torch.float32)
                probs = torch.empty(b, h, sq, sk, device="cuda", dtype=dtype)
                out = attn_cuda.flash_forward(q, k, v, bias=bias.to(dtype), lse=lse, softmax=probs, scale=0.5,
                                              softcap=40.0, causal=causal)[0]
                want, want_lse, want_p = reference_attention(q, k, v, bias=bias.to(dtype), scale=0.5, softcap=40.0,
                                                             causal=causal)
                lse_err = (lse[fin] - want_lse[fin]).abs().max().item()
                check(f"growing maxima + rising bias, softcap {dtype} d{d} causal={causal}",
                      rel(out, want) < (2e-2 if dtype == torch.bfloat16 else 5e-3) and lse_err < 5e-2
                      and rel(probs, want_p) < 2e-2, f"rel {rel(out, want):.1e}, lse {lse_err:.1e}, p {rel(probs, want_p):.1e}")
    # 4c. strided views: q, k, v from one packed [b, n, 3, h, d] tensor, and heads-first
    # [b, h, n, d] storage seen as [b, n, h, d] (the copy engine's tensor maps take the strides).
    for d in (64, 128):
        for causal in (False, True):
            b, n, h = 2, 1000, 4
            q, k, v = rand(b, n, 3, h, d, dtype=torch.bfloat16).unbind(2)
            out = attn_cuda.flash_forward(q, k, v, causal=causal)[0]
            want, _, _ = reference_attention(q, k, v, causal=causal)
            check(f"packed qkv views d{d} causal={causal}", rel(out, want) < 1e-2, f"rel {rel(out, want):.1e}")
            q, k, v = (rand(b, h, n, d, dtype=torch.bfloat16).transpose(1, 2) for _ in range(3))
            out = attn_cuda.flash_forward(q, k, v, causal=causal)[0]
            want, _, _ = reference_attention(q, k, v, causal=causal)
            check(f"heads-first views d{d} causal={causal}", rel(out, want) < 1e-2, f"rel {rel(out, want):.1e}")
    # 5. errors name the parameter.
    q = rand(1, 8, 2, 64, dtype=torch.bfloat16)
    check_errors((
            ("k dtype", lambda: attn_cuda.flash_forward(q, q.half(), q), "k:"),
            ("host tensor", lambda: attn_cuda.flash_forward(q, q, q.cpu()), "v:"),
            ("head_dim 96", lambda: attn_cuda.flash_forward(*(rand(1, 8, 2, 96, dtype=torch.bfloat16),) * 3), "q:"),
            ("non-contiguous last dim", lambda: attn_cuda.flash_forward(q, q.transpose(-1, -2).contiguous().transpose(-1, -2), q), "k:"),
            ("dropout 1", lambda: attn_cuda.flash_forward(q, q, q, dropout=1.0), "dropout:"),
            ("window -2", lambda: attn_cuda.flash_forward(q, q, q, window=(-2, 0)), "window_left:"),
            ("zoh shape", lambda: attn_cuda.fwd(q, q, q, rand(1, 2, 8, 9, dtype=torch.bfloat16), None), "bias:")), attn_cuda.AttnCudaError)
    finish()


if __name__ == "__main__":
    main()
