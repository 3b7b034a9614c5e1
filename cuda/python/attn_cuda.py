"""ctypes binding of libattn_cuda_c.so for PyTorch tensors (tests and benchmarks on the GPU).

`fwd` follows seed 004's signature and returns [out, softmax_lse, p?, rng_state]; tensors
are passed by data pointer, dtype, shape and strides, so no copy is made.
"""
import ctypes
import math
import os
import struct

import torch

_DTYPES = {torch.float16: 0, torch.bfloat16: 1, torch.float32: 2, torch.uint8: 3, torch.bool: 3}


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * 4), ("stride", ctypes.c_int64 * 4)]


class _FwdArgs(ctypes.Structure):
    _fields_ = [(name, _Tensor) for name in
                ("q", "k", "v", "out", "bias", "active_mask", "lse", "softmax")] + [
        ("scale", ctypes.c_float), ("softcap", ctypes.c_float), ("dropout", ctypes.c_float),
        ("causal", ctypes.c_int32), ("seed", ctypes.c_uint64), ("keep_window_size", ctypes.c_int64),
        ("window_left", ctypes.c_int64), ("window_right", ctypes.c_int64), ("stream", ctypes.c_void_p)]


class AttnCudaError(RuntimeError):
    """Raised with the library's message ("param: reason"); .status is its code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _library():
    path = os.environ.get("ATTN_CUDA_LIB", os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "build", "cuda", "cuda", "libattn_cuda_c.so"))
    lib = ctypes.CDLL(os.path.abspath(path))
    lib.attn_cuda_flash_forward.argtypes = [ctypes.POINTER(_FwdArgs), ctypes.POINTER(ctypes.c_uint64),
                                            ctypes.c_char_p, ctypes.c_int]
    lib.attn_cuda_flash_forward.restype = ctypes.c_int
    lib.attn_cuda_flash_forward_flops.argtypes = [ctypes.c_int64] * 5 + [ctypes.c_int32]
    lib.attn_cuda_flash_forward_flops.restype = ctypes.c_double
    return lib


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = _library()
    return _lib


# A _Tensor's fields in one struct format (data, dtype, rank, shape[4], stride[4]): one
# struct.pack_into a tensor, 2.5 us on the GPU machine against 3.7 for setting the ctypes
# fields one by one (the binding's time is part of every call: 34 us for a forward call's
# host side, from 43; SDPA's forward takes 20-30).
_TENSOR_FORMAT = "=Qii4q4q"
_PAD = [(0,) * (4 - r) for r in range(5)]


def _pack_tensor(args, offset, t):
    code = _DTYPES.get(t.dtype)
    if code is None:
        raise TypeError(f"unsupported dtype {t.dtype}")
    rank = t.dim()
    if rank > 4:
        raise ValueError("at most 4 dimensions")
    struct.pack_into(_TENSOR_FORMAT, args, offset, t.data_ptr(), code, rank, *t.shape, *_PAD[rank],
                     *t.stride(), *_PAD[rank])


def set_tensors(args, tensors):
    """Writes (field name, tensor or None) pairs into the ctypes argument struct `args` (a new
    struct is zero-filled, so None fields are skipped)."""
    fields = type(args)
    for name, t in tensors:
        if t is not None:
            _pack_tensor(args, getattr(fields, name).offset, t)


_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def current_stream(t):
    """The handle of the current CUDA stream of tensor t's device (torch's private raw-stream
    getter where it exists: torch.cuda.current_stream() costs about 5 us a call)."""
    if _raw_stream is not None:
        return _raw_stream(t.get_device())
    return torch.cuda.current_stream(t.device).cuda_stream


CAUSAL = {False: 0, None: 0, "none": 0, True: 1, "top-left": 1, "bottom-right": 2}


def flash_forward(q, k, v, out=None, bias=None, active_mask=None, lse=None, softmax=None,
                  scale=0.0, softcap=0.0, dropout=0.0, causal=False, seed=0, keep_window_size=0,
                  window=(-1, -1)):
    """The C++ flash_forward on torch tensors (see cuda/include/attn_cuda/flash.h).
    window = (left, right): a sliding window around the diagonal, -1 = unlimited."""
    if out is None:
        out = torch.empty_like(q)
    args = _FwdArgs()
    set_tensors(args, (("q", q), ("k", k), ("v", v), ("out", out), ("bias", bias),
                       ("active_mask", active_mask), ("lse", lse), ("softmax", softmax)))
    args.scale, args.softcap, args.dropout = scale or 0.0, softcap, dropout
    args.causal = CAUSAL[causal]
    args.seed = seed
    args.keep_window_size = keep_window_size
    args.window_left, args.window_right = window  # ctypes zero-fills: 0 would be a real window
    args.stream = current_stream(q)
    rng = (ctypes.c_uint64 * 2)()
    err = ctypes.create_string_buffer(512)
    status = lib().attn_cuda_flash_forward(ctypes.byref(args), rng, err, len(err))
    if status != 0:
        raise AttnCudaError(status, err.value.decode())
    return out, (int(rng[0]), int(rng[1]))


def fwd(q, k, v, zoh, active_mask, out=None, p_dropout=0.0, softmax_scale=None, is_causal=False,
        keep_window_size=2048, softcap=0.0, return_softmax=False, gen=None):
    """Seed 004's flash_dma.fwd. `gen` may be a torch.Generator (its seed is used) or an int.
    With is_causal and seq_q != seq_k the causal rule is bottom-right (as flash-attn's)."""
    b, sq, hq, d = q.shape
    seed = gen.initial_seed() if isinstance(gen, torch.Generator) else int(gen or 0)
    lse = torch.empty(b, hq, sq, device=q.device, dtype=torch.float32)
    p = torch.empty(b, hq, sq, k.shape[1], device=q.device, dtype=q.dtype) if return_softmax else None
    out, rng = flash_forward(q, k, v, out=out, bias=zoh, active_mask=active_mask, lse=lse, softmax=p,
                             scale=softmax_scale or 1.0 / math.sqrt(d), softcap=softcap,
                             dropout=p_dropout, causal="bottom-right" if is_causal else False,
                             seed=seed, keep_window_size=keep_window_size)
    rng_state = torch.tensor(rng, dtype=torch.int64)
    return [out, lse] + ([p] if return_softmax else []) + [rng_state]


def flops(batch, heads, seq_q, seq_k, head_dim, causal=False):
    return lib().attn_cuda_flash_forward_flops(batch, heads, seq_q, seq_k, head_dim, CAUSAL[causal])
