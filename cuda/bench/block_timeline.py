"""Summarises block-timeline files (cuda/bench/block_timeline.cu): per block, the time from its
start to its first data (mark 0 -> 1), its loop per step (1 -> 3), the last products (3 -> 4),
the epilogue (4 -> 5), and on each multiprocessor the gap from one block's last mark to the next
block's start; then how unevenly the multiprocessors finish. Marks are thread 0's, so the
second warpgroup's lag shows in the gap. Usage: block_timeline.py FILE.bin ..."""
import sys

import numpy as np


def summarise(path):
    a = np.fromfile(path, dtype=np.uint64).reshape(-1, 16).astype(np.int64)
    t = a[:, 0:6].astype(np.float64) / 1e3  # us
    sm, steps = a[:, 14], np.maximum(a[:, 15], 1)
    t0 = t[:, 0].min()
    gaps, ends = [], []
    for s in np.unique(sm):
        idx = np.where(sm == s)[0]
        idx = idx[np.argsort(t[idx, 0])]
        gaps.extend(t[idx[1:], 0] - t[idx[:-1], 5])
        ends.append(t[idx[-1], 5] - t0)
    sms, span = len(np.unique(sm)), t[:, 5].max() - t0
    parts = [("start -> first data", t[:, 1] - t[:, 0]), ("loop, per step", (t[:, 3] - t[:, 1]) / steps),
             ("last products", t[:, 4] - t[:, 3]), ("epilogue", t[:, 5] - t[:, 4]), ("to the next block", np.array(gaps))]
    print(f"== {path}: {len(a)} blocks on {sms} multiprocessors, {span:.1f} us, {steps.mean():.1f} steps a block")
    print(f"  {'part':<22}{'median us':>10}{'p90 us':>9}{'us per SM':>11}{'of span':>9}")
    for name, x in parts:
        total = x.sum() / sms if name != "loop, per step" else (t[:, 3] - t[:, 1]).sum() / sms
        print(f"  {name:<22}{np.median(x):>10.2f}{np.percentile(x, 90):>9.2f}{total:>11.1f}{total / span:>9.1%}")
    ends = np.array(ends)
    print(f"  multiprocessors finish between {ends.min():.1f} and {ends.max():.1f} us (median {np.median(ends):.1f});"
          f" busy {((t[:, 5] - t[:, 0]).sum() / (sms * span)):.1%} of span x multiprocessors")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        summarise(p)
