"""Times dense bf16 forward kernel variants (shared libraries built from fwd_variant.cu by
kernel_variants.sh fwd) against PyTorch SDPA's flash and cuDNN backends in one process (ratios
to cuDNN), and checks each variant's output against SDPA's. Usage: fwd_variants.py NAME=LIB.so ..."""
import ctypes
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from gpu_timing import time_ms  # noqa: E402
import variant_libs  # noqa: E402

variants = variant_libs.load(sys.argv[1:], "fwd_variant")

configs = [(128, c, n) for n in (1024, 4096, 8192, 16384) for c in (False, True)] + \
          [(64, c, n) for n in (4096, 16384) for c in (False, True)]
print(f"{'d':>4} {'causal':>6} {'n':>6} {'flash':>7} {'cudnn':>7} " + " ".join(f"{n:>12}" for n, _ in variants))
for d, causal, n in configs:
    b, h = max(1, 16384 // n), 16
    q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    flops = 4 * b * h * n * n * d * (0.5 if causal else 1.0)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def flash():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
    ref = flash().transpose(1, 2).float()
    out = torch.empty_like(q)
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    runs = []
    for name, lib in variants:
        def run(lib=lib):
            rc = lib.fwd_variant(ctypes.c_void_p(q.data_ptr()), ctypes.c_void_p(k.data_ptr()),
                                 ctypes.c_void_p(v.data_ptr()), ctypes.c_void_p(out.data_ptr()),
                                 b, n, h, d, int(causal), stream)
            assert rc == 0, rc
        out.fill_(float("nan"))
        run()
        torch.cuda.synchronize()
        err = ((out.float() - ref).norm() / ref.norm()).item()
        runs.append((run, err))
    def cudnn():
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

    # Rounds: flash, cuDNN, then every variant, 3 times; the median of each over the rounds.
    # Ratios are to cuDNN.
    tf_flash, tf_cudnn, tf_var = [], [], [[] for _ in variants]
    for _ in range(3):
        tf_flash.append(flops / time_ms(flash, reps=10) / 1e9)
        tf_cudnn.append(flops / time_ms(cudnn, reps=10) / 1e9)
        for i, (run, _) in enumerate(runs):
            tf_var[i].append(flops / time_ms(run, reps=10) / 1e9)
    cells = [f"{statistics.median(tv):6.0f}" + ("" if err < 2e-2 else f" ERR{err:.0e}")
             for tv, (_, err) in zip(tf_var, runs)]
    fl, cu = statistics.median(tf_flash), statistics.median(tf_cudnn)
    print(f"{d:>4} {str(causal):>6} {n:>6} {fl:7.0f} {cu:7.0f} " + " ".join(
        f"{c:>6} {float(c.split()[0]) / cu:4.2f}x" for c in cells), flush=True)
    del q, k, v, out, ref
