"""Times dense bf16 backward kernel variants (shared libraries built from bwd_variant.cu by
kernel_variants.sh bwd) against PyTorch SDPA's flash backward (aten op, its own D and dQ
conversion included) in one process, and checks each variant's dq, dk, dv against SDPA's.
A variant's time is the dQ scratch memset plus its kernel; the library's full call adds the
D and dQ-store kernels (about 3%). Usage: bwd_variants.py NAME=LIB.so ...
PROFILE=D,N,CAUSAL (e.g. 128,4096,0): only runs every variant and SDPA twice on that shape,
for Nsight Compute (kernel_variants.sh bwd with PROFILE set)."""
import ctypes
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from gpu_timing import time_ms  # noqa: E402
import variant_libs  # noqa: E402

variants = variant_libs.load(sys.argv[1:], "bwd_variant")

profile = os.environ.get("PROFILE")
if profile:
    d_, n_, c_ = profile.split(",")
    configs = [(int(d_), c_ == "1", int(n_))]
elif os.environ.get("CONFIGS") == "quick":
    configs = [(128, False, 4096), (128, True, 8192), (64, False, 4096), (64, True, 8192)]
else:
    configs = [(d, c, n) for d in (128, 64) for c in (False, True) for n in (2048, 4096, 16384)]
ptr = lambda t: ctypes.c_void_p(t.data_ptr())
print(f"{'d':>4} {'causal':>6} {'n':>6} {'flash':>7} " + " ".join(f"{n:>14}" for n, _ in variants))
for d, causal, n in configs:
    b, h = max(1, 16384 // n), 16
    q, k, v, dout = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    qt, kt, vt, dot = (x.transpose(1, 2) for x in (q, k, v, dout))
    scale = d ** -0.5
    fw = torch.ops.aten._scaled_dot_product_flash_attention(qt, kt, vt, 0.0, causal, False, scale=scale)
    out_t, lse = fw[0], fw[1]  # out (b, h, n, d) view; lse (b, h, n) natural log
    out = out_t.transpose(1, 2).contiguous()
    lse = lse.contiguous()

    def flash():
        return torch.ops.aten._scaled_dot_product_flash_attention_backward(
            dot, qt, kt, vt, out.transpose(1, 2), lse, fw[2], fw[3], n, n, 0.0, causal, fw[6], fw[7], scale=scale)
    ref = [x.transpose(1, 2).float() for x in flash()[:3]]
    delta = (dout.float() * out.float()).sum(-1).transpose(1, 2).contiguous()  # (b, h, n)
    dq_acc = torch.zeros(b, n, h, d, device="cuda", dtype=torch.float32)
    dk, dv = torch.empty_like(k), torch.empty_like(v)
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    runs = []
    for name, lib in variants:
        def run(lib=lib):
            dq_acc.zero_()
            rc = lib.bwd_variant(ptr(q), ptr(k), ptr(v), ptr(dout), ptr(lse), ptr(delta), ptr(dq_acc), ptr(dk),
                                 ptr(dv), b, n, h, d, int(causal), stream)
            assert rc == 0, rc
        dk.fill_(float("nan")), dv.fill_(float("nan"))
        run()
        torch.cuda.synchronize()
        rel = lambda x, r: ((x.float() - r).norm() / r.norm()).item()
        # dq: the scratch holds dS K with or without the scale, depending on the variant's kernel.
        errs = [min(rel(dq_acc, ref[0]), rel(dq_acc * scale, ref[0])), rel(dk, ref[1]), rel(dv, ref[2])]
        runs.append((run, max(errs)))
    if profile:
        for _ in range(2):
            flash()
            for run, _ in runs:
                run()
        torch.cuda.synchronize()
        print("profile errors:", [f"{name} {err:.1e}" for (name, _), (_, err) in zip(variants, runs)])
        break
    flops = 2.5 * 4 * b * h * n * n * d * (0.5 if causal else 1.0)
    tf_flash, tf_var = [], [[] for _ in variants]
    for _ in range(3):
        tf_flash.append(flops / time_ms(flash, reps=10) / 1e9)
        for i, (run, _) in enumerate(runs):
            tf_var[i].append(flops / time_ms(run, reps=10) / 1e9)
    fl = statistics.median(tf_flash)
    cells = []
    for tv, (_, err) in zip(tf_var, runs):
        t = statistics.median(tv)
        cells.append(f"{t:6.0f} {t / fl:4.2f}x" + ("" if err < 2e-2 else f" ERR{err:.0e}"))
    print(f"{d:>4} {str(causal):>6} {n:>6} {fl:7.0f} " + " ".join(f"{c:>14}" for c in cells), flush=True)
    del q, k, v, dout, out, ref, dq_acc, dk, dv
    torch.cuda.empty_cache()
