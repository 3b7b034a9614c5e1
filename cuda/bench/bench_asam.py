"""ASAM's patterns on the GPU (attn_cuda_layers.asam_forward) against the dense flash forward
on the same inputs, bf16, 16 heads, batch x n = 16384 tokens: ms, speed-up and the fraction of
query-key pairs each pattern keeps. Window 128, stride 32, scales 4, 16, 64 (the defaults);
random with blocks of 64 (its own and 2 others), clustered with 32 random centroids per head.
Usage: bench_asam.py [OUT.json]"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402
import attn_cuda_layers  # noqa: E402
from gpu_timing import time_ms  # noqa: E402



def kept_fraction(pattern, n, q, k, centroids):
    """The fraction of query-key pairs the pattern keeps (per head, averaged)."""
    if pattern == "random":  # its own block and ceil(128 / 64) = 2 others, of n / 64 blocks
        return min(1.0, 3 * 64 / n)
    if pattern == "clustered":
        cq = torch.einsum("bnhd,hcd->bhnc", q.float(), centroids).argmax(-1)
        ck = torch.einsum("bnhd,hcd->bhnc", k.float(), centroids).argmax(-1)
        c = centroids.shape[1]
        nq = torch.nn.functional.one_hot(cq, c).sum(2).double()
        nk = torch.nn.functional.one_hot(ck, c).sum(2).double()
        return ((nq * nk).sum(-1) / n ** 2).mean().item()
    i = torch.arange(n, device="cuda")
    dd = (i[:, None] - i[None, :]).abs()
    keep = {"local": dd <= 64, "strided": (dd <= 16) | (dd % 32 == 0),
            "hierarchical": (dd <= 64) | ((dd % 4 == 0) & (dd <= 256)) | ((dd % 16 == 0) & (dd <= 1024))
            | ((dd % 64 == 0) & (dd <= 4096))}[pattern]
    return keep.float().mean().item()


rows = []
print(f"{'pattern':>13} {'d':>4} {'n':>6} {'dense ms':>9} {'pattern ms':>10} {'speed-up':>8} {'kept':>6}")
for d in (64, 128):
    for n in (4096, 16384):
        b, h = max(1, 16384 // n), 16
        q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        centroids = torch.randn(h, 32, d, device="cuda")  # clustered: 32 clusters
        dense = time_ms(lambda: attn_cuda.flash_forward(q, k, v), reps=10)
        for pattern in ("local", "strided", "hierarchical", "random", "clustered"):
            t = time_ms(lambda: attn_cuda_layers.asam_forward(q, k, v, pattern, 128, 32, (4, 16, 64), block_size=64,
                                                              seed=1, centroids=centroids), reps=10)
            kept = kept_fraction(pattern, n, q, k, centroids)
            print(f"{pattern:>13} {d:>4} {n:>6} {dense:9.3f} {t:10.3f} {dense / t:7.2f}x {kept:6.3f}", flush=True)
            rows.append({"pattern": pattern, "d": d, "n": n, "batch": b, "heads": h, "dense_ms": dense,
                         "pattern_ms": t, "speedup": dense / t, "kept_fraction": kept})
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "asam": rows}, f, indent=1)
