"""Check bookkeeping shared by the GPU scripts test_vs_torch.py and test_backward_vs_torch.py:
each check prints one PASS/FAIL line, failures are collected, and finish() exits non-zero on
any failure. Imported from the scripts' own folder (first on sys.path when run as a script)."""
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
