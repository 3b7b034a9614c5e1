"""GPU timing shared by the benchmarks (cuda/bench/bench_flash.py, bench_backward.py)."""
import statistics

import torch


def time_ms(fn, reps=20, warmup=3):
    """Median wall time of fn() in milliseconds, measured with CUDA events after `warmup`
    untimed calls (the median keeps one slow launch from skewing the figure)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
