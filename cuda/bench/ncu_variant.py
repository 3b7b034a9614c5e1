"""Runs one fwd_variant.cu library's dense bf16 forward twice (the second for Nsight Compute):
python3 ncu_variant.py LIB.so [D N CAUSAL]."""
import ctypes
import sys

import torch

lib = ctypes.CDLL(sys.argv[1])
d, n, causal = (int(x) for x in (sys.argv[2:5] if len(sys.argv) > 4 else (128, 4096, 0)))
b, h = max(1, 16384 // n), 16
q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
out = torch.empty_like(q)
for _ in range(2):
    assert lib.fwd_variant(ctypes.c_void_p(q.data_ptr()), ctypes.c_void_p(k.data_ptr()), ctypes.c_void_p(v.data_ptr()),
                           ctypes.c_void_p(out.data_ptr()), b, n, h, d, causal, None) == 0
torch.cuda.synchronize()
