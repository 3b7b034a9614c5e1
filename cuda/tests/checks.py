"""Check bookkeeping shared by the GPU scripts test_vs_torch.py and test_backward_vs_torch.py:
each check prints one PASS/FAIL line, failures are collected, and finish() exits non-zero on
any failure. Imported from the scripts' own folder (first on sys.path when run as a script)."""
import math
import sys

import torch

failures = []  # names of the failed checks, in order


def check(name, ok, detail=""):
    """Print one PASS/FAIL line and remember a failure (the script goes on checking)."""
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}")
    if not ok:
        failures.append(name)


def rel(a, b, floor=1e-30):
    """Relative L2 error ||a - b|| / max(||b||, floor), in float64."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(floor)).item()


def rand(*shape, dtype):
    """Standard normal tensor on the GPU."""
    return torch.randn(*shape, device="cuda", dtype=dtype)


def check_errors(cases, error_type):
    """cases: (desc, call, param) triples; each call must raise error_type whose message
    starts with param (the error names the offending parameter)."""
    for desc, call, param in cases:
        try:
            call()
            check(f"error: {desc}", False, "accepted")
        except error_type as e:
            check(f"error: {desc}", str(e).startswith(param), str(e))


def finish():
    """Print the failure count and exit 1 if any check failed, else 0."""
    print(f"\n{len(failures)} failures")
    sys.exit(1 if failures else 0)


def reference_attention(q, k, v, bias=None, keep=None, scale=None, softcap=0.0, causal=None):
    """float64 attention on [b, s, h, d] tensors (differentiable, for the backward's autograd
    reference too); keep: bool [b, hkv, sq, sk] or None. Returns out, lse, p; fully masked rows
    get zero weights (and zero gradients)."""
    b, sq, hq, d = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    g = hq // hkv
    qd, kd, vd = (x.double().transpose(1, 2) for x in (q, k, v))
    kd, vd = kd.repeat_interleave(g, 1), vd.repeat_interleave(g, 1)
    s = (qd @ kd.transpose(-1, -2)) * (scale or 1 / math.sqrt(d))
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if bias is not None:
        s = s + bias.double().repeat_interleave(g, 1)
    allowed = torch.ones(b, hq, sq, sk, dtype=torch.bool, device=q.device)
    if keep is not None:
        allowed &= keep.repeat_interleave(g, 1)
    if causal:
        off = sk - sq if causal == "bottom-right" else 0
        i = torch.arange(sq, device=q.device)[:, None]
        j = torch.arange(sk, device=q.device)[None, :]
        allowed &= (j <= i + off)
    s = s.masked_fill(~allowed, -math.inf)
    p = torch.softmax(s, -1).nan_to_num(0.0)
    lse = torch.logsumexp(s, -1)
    return (p @ vd).transpose(1, 2), lse, p
