"""ctypes binding of attn_cuda_flash_backward (libattn_cuda_c.so) for PyTorch tensors.

Reuses attn_cuda's library handle, tensor views and error type; tensors are passed by data
pointer, dtype, shape and strides (no copy). See cuda/include/attn_cuda/flash_backward.h.
"""
import ctypes

import torch

import attn_cuda
from attn_cuda import CAUSAL, AttnCudaError, _Tensor, current_stream, set_tensors


class _BwdArgs(ctypes.Structure):
    _fields_ = [(name, _Tensor) for name in
                ("q", "k", "v", "out", "dout", "lse", "dq", "dk", "dv", "bias", "active_mask", "dbias")] + [
        ("scale", ctypes.c_float), ("softcap", ctypes.c_float), ("dropout", ctypes.c_float),
        ("causal", ctypes.c_int32), ("seed", ctypes.c_uint64), ("stream", ctypes.c_void_p)]


_configured = False


def _lib():
    """attn_cuda's library with the backward's argtypes set (once)."""
    global _configured
    lib = attn_cuda.lib()
    if not _configured:
        lib.attn_cuda_flash_backward.argtypes = [ctypes.POINTER(_BwdArgs), ctypes.c_char_p, ctypes.c_int]
        lib.attn_cuda_flash_backward.restype = ctypes.c_int
        _configured = True
    return lib


def flash_backward(q, k, v, out, dout, lse, bias=None, active_mask=None, dbias=None, scale=0.0,
                   softcap=0.0, dropout=0.0, causal=False, seed=0, dq=None, dk=None, dv=None):
    """Gradients (dq, dk, dv) of attn_cuda.flash_forward's output; `lse` is the forward's lse.
    dbias (optional, [b, hkv, sq, sk], q's dtype or float32) receives the bias gradient.
    dq / dk / dv default to new tensors of q's dtype (float32 ones may be passed)."""
    dq = torch.empty_like(q) if dq is None else dq
    dk = torch.empty_like(k) if dk is None else dk
    dv = torch.empty_like(v) if dv is None else dv
    args = _BwdArgs()
    set_tensors(args, (("q", q), ("k", k), ("v", v), ("out", out), ("dout", dout), ("lse", lse),
                       ("dq", dq), ("dk", dk), ("dv", dv), ("bias", bias), ("active_mask", active_mask),
                       ("dbias", dbias)))
    args.scale, args.softcap, args.dropout = scale or 0.0, softcap, dropout
    args.causal = CAUSAL[causal]
    args.seed = seed
    args.stream = current_stream(q)
    err = ctypes.create_string_buffer(512)
    status = _lib().attn_cuda_flash_backward(ctypes.byref(args), err, len(err))
    if status != 0:
        raise AttnCudaError(status, err.value.decode())
    return dq, dk, dv
