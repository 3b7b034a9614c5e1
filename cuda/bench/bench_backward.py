"""GPU benchmark of the backward: attn_cuda's flash_backward against PyTorch SDPA's flash and
cuDNN backends' backward (autograd.grad of their outputs) on the same bf16 inputs, batch x n = 16384 tokens,
16 heads, d 64 / 128, causal and not. TFLOP/s count backward flops as 2.5 x the forward's
(4 b h n^2 d, halved under causal). Prints a table, writes JSON to argv[1]."""
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import attn_cuda  # noqa: E402
import attn_cuda_backward  # noqa: E402
from gpu_timing import burst_ms, interleaved_ms, warm_up  # noqa: E402


def bwd_flops(b, h, n, d, causal):
    fwd = 4.0 * b * h * n * n * d
    return 2.5 * (fwd / 2 if causal else fwd)


def backward_table(rows, timer, dims=(64, 128), lengths=(1024, 2048, 4096, 8192, 16384)):
    """The backward's TFLOP/s, ours and SDPA's flash and cuDNN backends on the same inputs, each
    row timed by timer (gpu_timing.interleaved_ms or burst_ms) over the three."""
    print(f"{'d':>4} {'causal':>6} {'n':>6} {'ours ms':>8} {'SDPA ms':>8} {'ours':>7} {'SDPA':>7} {'ratio':>6} {'cuDNN':>7} {'ratio':>6}")
    for d in dims:
        for causal in (False, True):
            for n in lengths:
                b, h = max(1, 16384 // n), 16
                q, k, v, dout = (torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16) for _ in range(4))
                lse = torch.empty(b, h, n, device="cuda", dtype=torch.float32)
                out, _ = attn_cuda.flash_forward(q, k, v, lse=lse, causal=causal)
                dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
                row = {"d": d, "causal": causal, "n": n, "batch": b, "heads": h}
                fns = {"ours": lambda: attn_cuda_backward.flash_backward(
                    q, k, v, out, dout, lse, causal=causal, dq=dq, dk=dk, dv=dv)}
                qs, ks, vs = (x.transpose(1, 2).detach().requires_grad_() for x in (q, k, v))
                g = dout.transpose(1, 2)
                for name, backend in (("sdpa", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                    try:
                        with sdpa_kernel(backend):
                            o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal)
                        fns[name] = lambda o=o: torch.autograd.grad(o, (qs, ks, vs), g, retain_graph=True)
                        fns[name]()
                    except RuntimeError as e:
                        row[name + "_ms"], row[name + "_error"] = None, str(e)[:200]
                # The three backwards in turn each round (gpu_timing's rotated rounds).
                for name, ms in timer(fns).items():
                    row[name + "_ms"] = ms
                del fns
                f = bwd_flops(b, h, n, d, causal)
                row["ours_tflops"] = f / row["ours_ms"] / 1e9
                row["sdpa_tflops"] = f / row["sdpa_ms"] / 1e9 if row["sdpa_ms"] else None
                row["cudnn_tflops"] = f / row["cudnn_ms"] / 1e9 if row["cudnn_ms"] else None
                rows.append(row)
                sd, cu = row["sdpa_tflops"], row["cudnn_tflops"]
                print(f"{d:>4} {str(causal):>6} {n:>6} {row['ours_ms']:>8.3f} "
                      f"{(row['sdpa_ms'] or float('nan')):>8.3f} {row['ours_tflops']:>7.1f} "
                      f"{(sd or float('nan')):>7.1f} {(row['ours_tflops'] / sd if sd else float('nan')):>6.2f} "
                      f"{(cu or float('nan')):>7.1f} {(row['ours_tflops'] / cu if cu else float('nan')):>6.2f}", flush=True)
                del q, k, v, dout, out, lse, dq, dk, dv, qs, ks, vs
                torch.cuda.empty_cache()


def main():
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "backward": [], "backward_burst": []}
    warm_up()
    # Sustained and burst as in bench_flash.py (the H100 runs at its power cap).
    print("## Backward, bf16, TFLOP/s, sustained (3 rotated rounds: 0.5 s windows after 0.3 s of each, median; "
          "batch x n = 16384 tokens, 16 heads)")
    backward_table(result["backward"], interleaved_ms)
    print("\n## Backward, bf16, TFLOP/s, burst (3 rotated rounds x 10 calls after 1 s idle, median)")
    backward_table(result["backward_burst"], burst_ms, lengths=(1024, 2048))
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
