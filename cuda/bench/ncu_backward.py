"""One dense bf16 backward of attn_cuda and one of PyTorch's flash backend on the same inputs,
each run twice, then a torch.profiler table of the kernels of one more run of each. Under
Nsight Compute (regex flash_bwd, --launch-skip 2 --launch-count 2) the second runs are the
ones profiled. D (head dim, default 128), N (default 4096), CAUSAL (0/1) from the environment.
Diagnostic only."""
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402
import attn_cuda_backward  # noqa: E402

d, n = int(os.environ.get("D", "128")), int(os.environ.get("N", "4096"))
causal = os.environ.get("CAUSAL", "0") == "1"
b, h = max(1, 16384 // n), 16
q, k, v, dout = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
lse = torch.empty(b, h, n, device="cuda", dtype=torch.float32)
out, _ = attn_cuda.flash_forward(q, k, v, lse=lse, causal=causal)
qs, ks, vs = (x.transpose(1, 2).detach().requires_grad_() for x in (q, k, v))
with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
    o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal)
g = dout.transpose(1, 2)
runs = {
    "ours": lambda: attn_cuda_backward.flash_backward(q, k, v, out, dout, lse, causal=causal),
    "sdpa": lambda: torch.autograd.grad(o, (qs, ks, vs), g, retain_graph=True),
}
for _ in range(2):
    for fn in runs.values():
        fn()
torch.cuda.synchronize()
if os.environ.get("PROFILE_TABLE", "1") == "1":
    for name, fn in runs.items():
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        parts = [f"{e.key[:60]} {e.device_time_total / 1000:.3f} ms" for e in prof.key_averages() if e.device_time_total > 0]
        print(f"{name}: " + " | ".join(parts), flush=True)
