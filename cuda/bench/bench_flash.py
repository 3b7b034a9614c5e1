"""GPU benchmark: attn_cuda's forward against PyTorch SDPA's flash and cuDNN backends on the
same bf16 inputs in one run, and the dynamic-mask forward with keep_window_size = n/8
against the same call with every key active. Prints tables, writes JSON (argv[1])."""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402
from gpu_timing import burst_ms, interleaved_ms, time_ms, warm_up  # noqa: E402


def sdpa(backend, q, k, v, causal):
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def run():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
    return run


def dense_table(results, timer, dims=(64, 128), lengths=(1024, 2048, 4096, 8192, 16384)):
    """The dense forward's TFLOP/s, ours and SDPA's flash and cuDNN backends on the same inputs,
    each row timed by timer (gpu_timing.interleaved_ms or burst_ms) over the three."""
    print(f"{'d':>4} {'causal':>6} {'n':>6} {'attn_cuda':>10} {'SDPA flash':>11} {'SDPA cuDNN':>11} {'/flash':>7} {'/cuDNN':>7}")
    for d in dims:
        for causal in (False, True):
            for n in lengths:
                b, h = max(1, 16384 // n), 16
                q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
                out = torch.empty_like(q)
                flops = attn_cuda.flops(b, h, n, n, d, causal)
                row = {"d": d, "causal": causal, "n": n, "batch": b, "heads": h}
                fns = {"ours": lambda: attn_cuda.flash_forward(q, k, v, out=out, causal=causal)}
                for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                    try:
                        fns[name] = sdpa(backend, q, k, v, causal)
                        fns[name]()
                    except RuntimeError as e:
                        fns.pop(name)
                        row[name + "_ms"] = None
                        row[name + "_error"] = str(e)[:200]
                for name, ms in timer(fns).items():
                    row[name + "_ms"] = ms
                tf = {key: (flops / row[key + "_ms"] / 1e9 if row.get(key + "_ms") else None) for key in ("ours", "flash", "cudnn")}
                row.update({key + "_tflops": val for key, val in tf.items()})
                results.append(row)
                fmt = lambda x: f"{x:.0f}" if x else "n/a"
                ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "n/a"
                print(f"{d:>4} {str(causal):>6} {n:>6} {fmt(tf['ours']):>10} {fmt(tf['flash']):>11} {fmt(tf['cudnn']):>11} "
                      f"{ratio(tf['ours'], tf['flash']):>7} {ratio(tf['ours'], tf['cudnn']):>7}", flush=True)
                del q, k, v, out


def mma_sync(fn):
    """fn run with the Hopper kernels switched off (the mma.sync kernels, as on other GPUs)."""
    def run():
        os.environ["ATTN_CUDA_NO_WGMMA"] = "1"
        try:
            return fn()
        finally:
            del os.environ["ATTN_CUDA_NO_WGMMA"]
    return run


def dynamic_mask_table(results):
    """Seed 004's dynamic-mask forward (bf16 zoh + bf16 mask, d=128, batch 2, 12 heads):
    every key active and keep_window_size = n/8, on the Hopper kernel and on the mma.sync
    general kernel in the same run; and a block-sparse byte mask (1/8 of the 128 x 128 blocks
    active) against the same call with all blocks active."""
    print("\n## Dynamic-mask forward (seed 004 fwd), bf16, d=128, batch 2, 12 heads: ms (median of 5), "
          "Hopper kernel and mma.sync kernel; zoh+mask read rate of the all-active call")
    print(f"{'n':>6} {'zoh':>7} {'all active':>11} {'(mma.sync)':>11} {'GB/s':>6} {'n/8':>7} {'(mma.sync)':>11} "
          f"{'n/8 speed-up':>13} {'visited':>8}")
    for n in (4096, 8192, 16384):
        b, h, d = 2, 12, 128
        q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        i = torch.arange(n, device="cuda")
        for kind in ("local", "random"):
            if kind == "local":  # attention decays with distance (as a ZOH of a decaying state)
                zoh = (-(i[:, None] - i[None, :]).abs().float() / 64.0).to(torch.bfloat16).expand(b, h, n, n)
                zoh = zoh + 0.01 * torch.randn(b, h, n, n, device="cuda", dtype=torch.bfloat16)
            else:
                zoh = torch.randn(b, h, n, n, device="cuda", dtype=torch.bfloat16)
            active = torch.ones(b, h, n, n, device="cuda", dtype=torch.bfloat16)
            calls = {
                "all_active": lambda: attn_cuda.fwd(q, k, v, zoh, active, keep_window_size=n),
                "window": lambda: attn_cuda.fwd(q, k, v, zoh, active, keep_window_size=n // 8),
            }
            row = {"n": n, "zoh": kind}
            for name, fn in calls.items():
                row[name + "_ms"] = time_ms(fn, reps=5, warmup=1)
                row[name + "_mma_sync_ms"] = time_ms(mma_sync(fn), reps=3 if n == 16384 else 5, warmup=1)
            row["all_active_read_gbps"] = 2 * zoh.numel() * 2 / row["all_active_ms"] / 1e6
            row["speedup"] = row["all_active_ms"] / row["window_ms"]
            # Fraction of 128x64 tiles holding a kept pair (what the kernels visit).
            visited = None
            if n <= 8192:
                kth = zoh.float().topk(n // 8, -1).values[..., -1:]
                kept = zoh.float() >= kth
                visited = kept.view(b, h, n // 128, 128, n // 64, 64).any(5).any(3).float().mean().item()
                del kept, kth
            row["visited_tile_fraction"] = visited
            results.append(row)
            print(f"{n:>6} {kind:>7} {row['all_active_ms']:>11.2f} {row['all_active_mma_sync_ms']:>11.2f} "
                  f"{row['all_active_read_gbps']:>6.0f} {row['window_ms']:>7.2f} {row['window_mma_sync_ms']:>11.2f} "
                  f"{row['speedup']:>12.2f}x {(f'{visited:.3f}' if visited is not None else 'n/a'):>8}", flush=True)
            del zoh, active
        # Block-sparse: a byte mask with 1/8 of its 128 x 128 blocks active (random), zoh bf16.
        zoh = torch.randn(b, h, n, n, device="cuda", dtype=torch.bfloat16)
        blocks = torch.rand(b, h, n // 128, n // 128, device="cuda") < 0.125
        sparse = blocks.repeat_interleave(128, 2).repeat_interleave(128, 3).to(torch.uint8)
        dense = torch.ones_like(sparse)
        t_dense = time_ms(lambda: attn_cuda.fwd(q, k, v, zoh, dense, keep_window_size=0), reps=5, warmup=1)
        t_sparse = time_ms(lambda: attn_cuda.fwd(q, k, v, zoh, sparse, keep_window_size=0), reps=5, warmup=1)
        frac = blocks.float().mean().item()
        row = {"n": n, "zoh": "block-sparse bytes", "all_blocks_ms": t_dense, "sparse_ms": t_sparse,
               "active_block_fraction": frac, "speedup": t_dense / t_sparse}
        results.append(row)
        print(f"{n:>6} block-sparse byte mask, {frac:.3f} of blocks active: {t_sparse:.2f} ms vs all blocks "
              f"{t_dense:.2f} ms = {t_dense / t_sparse:.2f}x (ideal {1 / frac:.1f}x)", flush=True)
        del zoh, blocks, sparse, dense, q, k, v
        torch.cuda.empty_cache()


def window_table(results):
    """ASAM's local pattern on the GPU: a sliding window of 128 keys (64 each side) against the
    same call without a window, bf16, batch x n = 16384 tokens, 16 heads."""
    print("\n## Sliding window (ASAM local, window 128), bf16, 16 heads: ms, and speed-up over no window")
    print(f"{'d':>4} {'n':>6} {'full ms':>9} {'window ms':>10} {'speed-up':>9}")
    for d in (64, 128):
        for n in (4096, 16384):
            b, h = max(1, 16384 // n), 16
            q, k, v = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            full = time_ms(lambda: attn_cuda.flash_forward(q, k, v), reps=20, warmup=3)
            win = time_ms(lambda: attn_cuda.flash_forward(q, k, v, window=(64, 64)), reps=20, warmup=3)
            results.append({"d": d, "n": n, "batch": b, "heads": h, "window": 128, "full_ms": full, "window_ms": win,
                            "speedup": full / win})
            print(f"{d:>4} {n:>6} {full:>9.3f} {win:>10.3f} {full / win:>8.2f}x", flush=True)
            del q, k, v


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "bench_flash.json"
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dense": [], "dense_burst": [], "dynamic_mask": [],
               "window": []}
    parts = os.environ.get("BENCH_PARTS", "dense,dynamic,window").split(",")
    warm_up()
    # The H100 runs these kernels at its power cap, and its clocks follow the last tens of
    # milliseconds' power. Sustained: each kernel's mean over a 0.5 s window of its own calls
    # after 0.3 s of them (the clocks it holds under load), three rotated rounds. Burst: each
    # timed from an idle GPU (clocks at their 1980 MHz maximum), as a call with gaps before it
    # runs.
    if "dense" in parts:
        print("\n## Forward, bf16, TFLOP/s, sustained (3 rotated rounds: 0.5 s windows after 0.3 s of each, median; "
              "batch x n = 16384 tokens, 16 heads)")
        dense_table(results["dense"], interleaved_ms)
        print("\n## Forward, bf16, TFLOP/s, burst (3 rotated rounds x 10 calls after 1 s idle, median)")
        dense_table(results["dense_burst"], burst_ms, dims=(128,), lengths=(4096, 8192, 16384))
    if "dynamic" in parts:
        dynamic_mask_table(results["dynamic_mask"])
    if "window" in parts:
        window_table(results["window"])
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
