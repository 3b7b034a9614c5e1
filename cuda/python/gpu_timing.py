"""GPU timing shared by the benchmarks (cuda/bench/bench_flash.py, bench_backward.py)."""
import statistics

import torch


def time_ms(fn, reps=20, warmup=3):
    """Median GPU time of one fn() call in milliseconds.

    The calls are issued back to back, each between two CUDA events, with one
    synchronization at the end (as torch.utils.benchmark and triton's do_bench time
    kernels): while the host stays ahead of the GPU, a call's events measure the GPU's work
    from the end of the call before, not the host's time to launch it. The host's time shows
    only where it exceeds the GPU's. (Timing each call alone, synchronized, adds the launch
    time to every call: 20-30 us for SDPA's forward, 34 us for this binding's forward and
    53 for its backward, on the GPU machine.) The median keeps the first call, which starts on
    an idle GPU, and any slow one from skewing the figure."""
    for _ in range(warmup):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    torch.cuda.synchronize()
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)
