"""Per-kernel CUDA times of the dynamic-mask forward variants (torch.profiler), to see
where the time of each variant goes. Diagnostic; prints one table."""
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402

b, h, d, n = 2, 12, 128, int(os.environ.get("N", "4096"))
q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
i = torch.arange(n, device="cuda")
zoh = (-(i[:, None] - i[None, :]).abs().float() / 64.0).to(torch.bfloat16).expand(b, h, n, n).contiguous()
ones = torch.ones(b, h, n, n, device="cuda", dtype=torch.bfloat16)
variants = {
    "dense": lambda: attn_cuda.flash_forward(q, k, v),
    "bias": lambda: attn_cuda.flash_forward(q, k, v, bias=zoh),
    "bias+active": lambda: attn_cuda.flash_forward(q, k, v, bias=zoh, active_mask=ones),
    "active": lambda: attn_cuda.flash_forward(q, k, v, active_mask=ones),
    "bias+active+keep n/8": lambda: attn_cuda.flash_forward(q, k, v, bias=zoh, active_mask=ones, keep_window_size=n // 8),
    "bias+keep n/8": lambda: attn_cuda.flash_forward(q, k, v, bias=zoh, keep_window_size=n // 8),
}
for name, fn in variants.items():
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
    parts = {}
    for e in prof.key_averages():
        if e.device_time_total > 0:
            key = "prepass" if "prepass" in e.key else ("flash" if "flash_fwd" in e.key else e.key[:30])
            parts[key] = parts.get(key, 0) + e.device_time_total / 3 / 1000
    print(f"{name:>22}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in parts.items()), flush=True)
