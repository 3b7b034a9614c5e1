"""GPU timing shared by the benchmarks (cuda/bench/bench_flash.py, bench_backward.py)."""
import statistics
import time

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


def warm_up(seconds=1.0):
    """Keeps the GPU busy with bf16 matrix products for about `seconds`, so that a benchmark's
    first rows are not timed while the clocks still ramp up from idle (on a freshly started
    machine the first rows, timed alone, ran up to 7% slower than later)."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10):
            a @ a
        torch.cuda.synchronize()


def interleaved_ms(fns, rounds=3, reps=10):
    """{name: median over `rounds` of time_ms(fn, reps)}, the functions timed in turn each round:
    clocks and power drift over a run, and timing each function once, one after the other,
    moved ratios by a few per cent."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(time_ms(fn, reps=reps))
    return {name: statistics.median(ts) for name, ts in times.items()}
