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


def settle(fn, seconds):
    """Runs fn back to back for about `seconds`, so that the power state the next timing starts
    from is fn's own. The H100 here runs at its 700 W cap under these kernels (nvidia-smi's
    clock event reason: software power cap) and its clocks follow the last tens of
    milliseconds' power: timed right after SDPA's flash backend (half the TFLOP/s, less power),
    a kernel ran up to 10% faster than right after cuDNN or itself (d = 128, n = 16384).
    Returns the host's time per call meanwhile, in milliseconds (an upper bound on the GPU's)."""
    calls, start = 0, time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        for _ in range(5):
            fn()
        calls += 5
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000 / calls


def window_ms(fn, seconds, per_call_ms):
    """Mean GPU time of one fn() call in milliseconds over about `seconds` of back-to-back calls
    (per_call_ms: an estimate, to size the window), between two CUDA events: under the power
    cap the clocks swing between about 1260 and 1980 MHz within tens of milliseconds, which a
    window this long averages (a median of 10 calls, 9 ms at d = 128, n = 4096, caught one
    phase of the swing: ratios between libraries moved by up to 7% from run to run, where
    1.2 s windows agreed within 1% over three rounds)."""
    calls = max(10, int(seconds * 1000 / per_call_ms))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls


def rotated_medians(fns, rounds, time_one):
    """{name: median over `rounds` of time_one(fn)}, the functions timed in turn each round, each
    round starting one function later (a rotation), so that no function always follows the
    same one."""
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(time_one(fns[name]))
    return {name: statistics.median(ts) for name, ts in times.items()}


def interleaved_ms(fns, rounds=3, settle_s=0.3, window_s=0.5):
    """{name: median over `rounds` of window_ms(fn, window_s)}, rotated (rotated_medians), each
    window after settle_s of the function's own calls: the sustained speed, in the power state
    the function holds under load (a kernel timed right after another inherits that one's:
    see settle)."""
    def time_one(fn):
        per_call = settle(fn, settle_s)
        return window_ms(fn, window_s, per_call)
    return rotated_medians(fns, rounds, time_one)


def burst_ms(fns, rounds=3, reps=10, idle_s=1.0):
    """{name: median over `rounds` of time_ms(fn, reps)}, rotated (rotated_medians), each timing
    started from an idle GPU (idle_s asleep first): the kernels' speed before the power cap
    pulls the clocks down, at 1980 MHz here (a 16384-token, d = 128 forward's ten calls take
    about 35 ms)."""
    def time_one(fn):
        torch.cuda.synchronize()
        time.sleep(idle_s)
        return time_ms(fn, reps=reps, warmup=1)
    return rotated_medians(fns, rounds, time_one)
