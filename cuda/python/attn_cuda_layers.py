"""ctypes binding of attn_cuda_multihead_forward, attn_cuda_linear_attention and
attn_cuda_asam_forward (libattn_cuda_c.so) for PyTorch tensors: see
cuda/include/attn_cuda/multihead.h, linear.h and asam.h.
Reuses attn_cuda's library handle, tensor views and error type; no copies are made."""
import ctypes

import torch

import attn_cuda
from attn_cuda import CAUSAL, AttnCudaError, _Tensor, current_stream, set_tensors

_MHA_TENSORS = ("query", "key", "value", "out", "q_weight", "k_weight", "v_weight", "out_weight",
                "q_bias", "k_bias", "v_bias", "out_bias", "bias", "active_mask")


class _MhaArgs(ctypes.Structure):
    _fields_ = [(name, _Tensor) for name in _MHA_TENSORS] + [
        ("heads", ctypes.c_int32), ("causal", ctypes.c_int32), ("stream", ctypes.c_void_p)]


class _LinearArgs(ctypes.Structure):
    _fields_ = [(name, _Tensor) for name in ("q", "k", "v", "out")] + [
        ("feature_map", ctypes.c_int32), ("causal", ctypes.c_int32), ("eps", ctypes.c_float),
        ("stream", ctypes.c_void_p)]


class _AsamArgs(ctypes.Structure):
    _fields_ = [(name, _Tensor) for name in ("q", "k", "v", "out", "lse")] + [
        ("pattern", ctypes.c_int32), ("scale_count", ctypes.c_int32), ("window_size", ctypes.c_int64),
        ("stride", ctypes.c_int64), ("scales", ctypes.c_int64 * 8), ("scale", ctypes.c_float),
        ("stream", ctypes.c_void_p), ("block_size", ctypes.c_int64), ("seed", ctypes.c_uint64),
        ("centroids", _Tensor)]


FEATURE_MAPS = {"elu": 0, "relu": 1, "dpfp": 2}
ASAM_PATTERNS = {"local": 0, "strided": 1, "hierarchical": 2, "random": 3, "clustered": 4}
_configured = False


def _lib():
    global _configured
    lib = attn_cuda.lib()
    if not _configured:
        lib.attn_cuda_multihead_forward.argtypes = [ctypes.POINTER(_MhaArgs), ctypes.c_char_p, ctypes.c_int]
        lib.attn_cuda_multihead_forward.restype = ctypes.c_int
        lib.attn_cuda_linear_attention.argtypes = [ctypes.POINTER(_LinearArgs), ctypes.c_char_p, ctypes.c_int]
        lib.attn_cuda_linear_attention.restype = ctypes.c_int
        lib.attn_cuda_asam_forward.argtypes = [ctypes.POINTER(_AsamArgs), ctypes.c_char_p, ctypes.c_int]
        lib.attn_cuda_asam_forward.restype = ctypes.c_int
        _configured = True
    return lib


def _call(fn, args):
    err = ctypes.create_string_buffer(512)
    status = fn(ctypes.byref(args), err, len(err))
    if status != 0:
        raise AttnCudaError(status, err.value.decode())


def multihead_forward(query, key, value, weights, heads, causal=False, bias=None, active_mask=None, out=None):
    """weights: dict with q_weight, k_weight, v_weight, out_weight and optional q_bias, k_bias,
    v_bias, out_bias (PyTorch layouts: [out_features, in_features])."""
    if out is None:
        out = torch.empty_like(query)
    args = _MhaArgs()
    given = {"query": query, "key": key, "value": value, "out": out, "bias": bias, "active_mask": active_mask}
    set_tensors(args, ((name, given[name] if name in given else weights.get(name)) for name in _MHA_TENSORS))
    args.heads, args.causal = heads, CAUSAL[causal]
    args.stream = current_stream(query)
    _call(_lib().attn_cuda_multihead_forward, args)
    return out


def linear_attention(q, k, v, feature_map="elu", causal=False, eps=1e-6, out=None):
    """q, k [batch, seq, heads, head_dim], v [batch, seq_k, heads, value_dim]."""
    if out is None:
        out = torch.empty(q.shape[0], q.shape[1], q.shape[2], v.shape[3], device=q.device, dtype=q.dtype)
    args = _LinearArgs()
    set_tensors(args, (("q", q), ("k", k), ("v", v), ("out", out)))
    args.feature_map = FEATURE_MAPS.get(feature_map, feature_map) if isinstance(feature_map, str) else feature_map
    args.causal, args.eps = int(bool(causal)), eps
    args.stream = current_stream(q)
    _call(_lib().attn_cuda_linear_attention, args)
    return out


def asam_forward(q, k, v, pattern="hierarchical", window_size=128, stride=32, scales=(4, 16, 64), scale=0.0,
                 lse=None, out=None, block_size=64, seed=0, centroids=None):
    """ASAM's sparse patterns (local, strided, hierarchical, random, clustered): q, k, v
    [batch, n, heads, head_dim]; clustered takes centroids [heads, num_clusters, head_dim]
    float32."""
    if out is None:
        out = torch.empty(q.shape[0], q.shape[1], q.shape[2], v.shape[3], device=q.device, dtype=q.dtype)
    args = _AsamArgs()
    set_tensors(args, (("q", q), ("k", k), ("v", v), ("out", out), ("lse", lse), ("centroids", centroids)))
    args.pattern = ASAM_PATTERNS.get(pattern, pattern) if isinstance(pattern, str) else pattern
    args.window_size, args.stride, args.scale = window_size, stride, scale
    args.block_size, args.seed = block_size, seed
    args.scale_count = len(scales)
    for i, s in enumerate(scales[:8]):
        args.scales[i] = s
    args.stream = current_stream(q)
    _call(_lib().attn_cuda_asam_forward, args)
    return out
