"""One dense bf16 forward of attn_cuda and one of PyTorch's flash backend on the same inputs,
each run twice (the second is the one to profile), for Nsight Compute:

  ncu --kernel-name-base demangled -k regex:flash_fwd_kernel --launch-skip 2 --launch-count 2 \
      --section SpeedOfLight --section WarpStateStats ... python3 cuda/bench/ncu_forward.py

D (head dim, default 128), N (sequence, default 4096), CAUSAL (0/1) from the environment.
Diagnostic only: prints nothing of its own."""
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402

d, n = int(os.environ.get("D", "128")), int(os.environ.get("N", "4096"))
causal = os.environ.get("CAUSAL", "0") == "1"
b, h = max(1, 16384 // n), 16
q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
for _ in range(2):
    attn_cuda.flash_forward(q, k, v, causal=causal)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       is_causal=causal)
torch.cuda.synchronize()
