"""On the GPU: the backward against PyTorch autograd on the same inputs (float64 reference
attention written with torch ops) and against SDPA's flash backend backward in bf16, plus
error messages. Fresh random inputs each run. Prints one line per check and exits non-zero
on any failure."""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402
import attn_cuda_backward  # noqa: E402
from checks import check, check_errors, finish, rand, reference_attention, rel  # noqa: E402


def rms(x):
    return (x.double().norm() / math.sqrt(x.numel())).item()


def ours(q, k, v, dout, bias=None, active=None, want_dbias=False, dq=None, **kw):
    """Forward (for out, lse) then our backward (into dq when given); returns dq, dk, dv, dbias."""
    b, sq, hq, _ = q.shape
    lse = torch.empty(b, hq, sq, device="cuda", dtype=torch.float32)
    out, _ = attn_cuda.flash_forward(q, k, v, bias=bias, active_mask=active, lse=lse, **kw)
    dbias = torch.empty(b, k.shape[2], sq, k.shape[1], device="cuda", dtype=torch.float32) if want_dbias else None
    dq, dk, dv = attn_cuda_backward.flash_backward(q, k, v, out, dout, lse, bias=bias, active_mask=active,
                                                   dbias=dbias, dq=dq, **kw)
    return dq, dk, dv, dbias


def autograd(q, k, v, dout, bias=None, keep=None, **kw):
    """float64 gradients of reference_attention() through torch autograd."""
    qd, kd, vd = (x.detach().double().requires_grad_() for x in (q, k, v))
    bd = bias.detach().double().requires_grad_() if bias is not None else None
    out, _, _ = reference_attention(qd, kd, vd, bias=bd, keep=keep, **kw)
    out.backward(dout.double())
    return qd.grad, kd.grad, vd.grad, (bd.grad if bd is not None else None)


def compare(name, got, want, tol):
    # dq, dk and dbias cancel exactly when a row sees one key (softmax = 1, dS = 0): their
    # error is then measured against a quarter of dv's RMS size instead of ~0.
    floor_rms = 0.25 * rms(want[2])
    errs = [rel(g, w, floor_rms * math.sqrt(w.numel())) for g, w in zip(got, want)
            if w is not None and g is not None]
    finite = all(torch.isfinite(g).all().item() for g in got if g is not None)
    check(name, finite and max(errs) < tol, "rel " + " ".join(f"{e:.1e}" for e in errs))


def main():
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    tol = {torch.float16: 5e-3, torch.bfloat16: 3e-2}
    # 1. plain, causal (both alignments), GQA / MQA, odd sizes, vs float64 autograd.
    for dtype in (torch.float16, torch.bfloat16):
        for d in (64, 128):
            for causal in (False, "top-left", "bottom-right"):
                for (sq, sk, hq, hkv) in ((1, 1, 4, 2), (17, 300, 4, 2), (300, 17, 4, 1), (257, 513, 8, 2)):
                    q, k, v = rand(2, sq, hq, d, dtype=dtype), rand(2, sk, hkv, d, dtype=dtype), rand(2, sk, hkv, d, dtype=dtype)
                    dout = rand(2, sq, hq, d, dtype=dtype)
                    got = ours(q, k, v, dout, causal=causal)[:3]
                    want = autograd(q, k, v, dout, causal=causal)[:3]
                    compare(f"{dtype} d{d} causal={causal} q{sq} k{sk} h{hq}/{hkv}", got, want, tol[dtype])
    # 1b. strided views (q, k, v of one packed [b, s, 3, h, d] tensor; dout heads-first seen
    # as [b, s, h, d]), the Hopper kernel's tensor maps with row strides other than h * d.
    for dtype in (torch.float16, torch.bfloat16):
        for d in (64, 128):
            for causal in (False, "top-left"):
                qkv = rand(2, 333, 3, 4, d, dtype=dtype)
                q, k, v = qkv.unbind(2)
                dout = rand(2, 4, 333, d, dtype=dtype).transpose(1, 2)
                got = ours(q, k, v, dout, causal=causal)[:3]
                want = autograd(q, k, v, dout, causal=causal)[:3]
                compare(f"{dtype} d{d} causal={causal} packed qkv, heads-first dout", got, want, tol[dtype])
    # 1c. Many key blocks adding into each query block (the Hopper kernel writes dq itself
    # once the last one has landed: bwd_dq_finish.cuh), with dq a strided view of a packed
    # tensor or float32.
    for dtype in (torch.float16, torch.bfloat16):
        for d in (64, 128):
            for causal in (False, "top-left", "bottom-right"):
                sq, sk = (1031, 1100) if causal != "bottom-right" else (1100, 513)
                q, k, v = rand(2, sq, 4, d, dtype=dtype), rand(2, sk, 2, d, dtype=dtype), rand(2, sk, 2, d, dtype=dtype)
                dout = rand(2, sq, 4, d, dtype=dtype)
                want = autograd(q, k, v, dout, causal=causal)[:3]
                packed = torch.full((2, sq, 3, 4, d), float("nan"), device="cuda", dtype=dtype)
                for name, dq in (("strided dq", packed[:, :, 1]),
                                 ("float32 dq", torch.full_like(q, float("nan"), dtype=torch.float32))):
                    got = ours(q, k, v, dout, causal=causal, dq=dq)[:3]
                    compare(f"{dtype} d{d} causal={causal} q{sq} k{sk} {name}", got, want, tol[dtype])
                    check(f"  {dtype} d{d} {name}: written in place", got[0].data_ptr() == dq.data_ptr())
    # 2. softcap + scale, bias + active mask (with fully masked rows) + dbias.
    for dtype in (torch.float16, torch.bfloat16):
        for d in (64, 128):
            b, sq, sk, hq, hkv = 2, 190, 333, 4, 2
            q, k, v = rand(b, sq, hq, d, dtype=dtype), rand(b, sk, hkv, d, dtype=dtype), rand(b, sk, hkv, d, dtype=dtype)
            dout = rand(b, sq, hq, d, dtype=dtype)
            got = ours(q, k, v, dout, scale=0.2, softcap=3.0, causal="bottom-right")[:3]
            want = autograd(q, k, v, dout, scale=0.2, softcap=3.0, causal="bottom-right")[:3]
            compare(f"{dtype} d{d} scale softcap causal", got, want, tol[dtype])
            bias = rand(b, hkv, sq, sk, dtype=dtype)
            keep = torch.rand(b, hkv, sq, sk, device="cuda") < 0.7
            keep[:, :, 2::5] = False  # rows that see no key
            got = ours(q, k, v, dout, bias=bias, active=keep.to(torch.uint8), want_dbias=True, softcap=5.0)
            want = autograd(q, k, v, dout, bias=bias, keep=keep, softcap=5.0)
            compare(f"{dtype} d{d} bias active_mask empty rows softcap (dq dk dv dbias)", got, want, tol[dtype])
            masked_zero = bool((got[0][:, 2::5] == 0).all().item()) and bool((got[3][:, :, 2::5] == 0).all().item())
            check(f"  {dtype} d{d} fully masked rows: zero dq and dbias", masked_zero)
    # 3. dropout: out is linear in v with the dropped weights, so <dv, delta_v> must equal
    # <out(v + delta_v) - out(v), dout> when both forwards use the same seed (dq / dk under
    # dropout are checked against float64 with the same keep mask in flash_backward_test).
    for d in (64, 128):
        q16, k16, v16 = (rand(1, 96, 2, d, dtype=torch.float16) for _ in range(3))
        dout = rand(1, 96, 2, d, dtype=torch.float16)
        dv = ours(q16, k16, v16, dout, dropout=0.3, seed=1234)[2]
        v1 = (v16.float() + torch.randn_like(v16.float())).half()
        out0, _ = attn_cuda.flash_forward(q16, k16, v16, dropout=0.3, seed=1234)
        out1, _ = attn_cuda.flash_forward(q16, k16, v1, dropout=0.3, seed=1234)
        fd = ((out1.double() - out0.double()) * dout.double()).sum().item()
        an = (dv.double() * (v1.double() - v16.double())).sum().item()
        # fd comes from float16 outputs: each carries a rounding error up to u|out| (u = 2^-11),
        # which sums to about `noise` (0.02-0.03 here; 80 repeats on an H100 stayed under 1.8x it).
        u = 2.0 ** -11
        noise = (((u * out0.double()) ** 2 + (u * out1.double()) ** 2) * dout.double() ** 2).sum().sqrt().item()
        check(f"dropout d{d}: dv agrees with the forward's dropped weights",
              abs(fd - an) < 1e-2 * max(1.0, abs(an)) + 4 * noise,
              f"forward difference {fd:.4f}, from dv {an:.4f}, output rounding ~{noise:.4f}")
    # 4. against SDPA's flash backend backward, bf16, larger (both vs float64 autograd).
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for d in (64, 128):
        for causal in (False, True):
            q, k, v = (rand(2, 1024, 8, d, dtype=torch.bfloat16) for _ in range(3))
            dout = rand(2, 1024, 8, d, dtype=torch.bfloat16)
            got = ours(q, k, v, dout, causal=causal)[:3]
            qs, ks, vs = (x.detach().transpose(1, 2).requires_grad_() for x in (q, k, v))
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal)
            o.backward(dout.transpose(1, 2))
            sdpa = [x.grad.transpose(1, 2) for x in (qs, ks, vs)]
            want = autograd(q, k, v, dout, causal="top-left" if causal else None)[:3]
            e_ours = [rel(g, w) for g, w in zip(got, want)]
            e_sdpa = [rel(g, w) for g, w in zip(sdpa, want)]
            ok = all(eo < max(2 * es, 1e-2) for eo, es in zip(e_ours, e_sdpa))
            check(f"vs SDPA flash backward d{d} causal={causal}", ok,
                  "ours " + " ".join(f"{e:.1e}" for e in e_ours) + " | SDPA " + " ".join(f"{e:.1e}" for e in e_sdpa))
    # 5. errors name the parameter.
    q = rand(1, 8, 2, 64, dtype=torch.bfloat16)
    lse = torch.zeros(1, 2, 8, device="cuda")
    check_errors((
            ("k dtype", lambda: attn_cuda_backward.flash_backward(q, q.half(), q, q, q, lse), "k:"),
            ("host dout", lambda: attn_cuda_backward.flash_backward(q, q, q, q, q.cpu(), lse), "dout:"),
            ("lse dtype", lambda: attn_cuda_backward.flash_backward(q, q, q, q, q, lse.half()), "lse:"),
            ("lse shape", lambda: attn_cuda_backward.flash_backward(q, q, q, q, q, lse[:, :1]), "lse:"),
            ("dq dtype", lambda: attn_cuda_backward.flash_backward(q, q, q, q, q, lse, dq=q.half()), "dq:"),
            ("head_dim 96", lambda: attn_cuda_backward.flash_backward(*(rand(1, 8, 2, 96, dtype=torch.bfloat16),) * 5,
                                                                      lse), "q:"),
            ("dropout 1", lambda: attn_cuda_backward.flash_backward(q, q, q, q, q, lse, dropout=1.0), "dropout:"),
            ("dbias shape", lambda: attn_cuda_backward.flash_backward(
                q, q, q, q, q, lse, dbias=torch.empty(1, 2, 8, 9, device="cuda")), "dbias:")), attn_cuda.AttnCudaError)
    finish()


if __name__ == "__main__":
    main()
