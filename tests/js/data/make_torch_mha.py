"""Writes torch_mha.json: nn.MultiheadAttention (batch_first) test vectors from PyTorch itself,
for tests/js/multihead.test.mjs. Run where PyTorch is installed (the lent GPU machine):
    python3 tests/js/data/make_torch_mha.py > tests/js/data/torch_mha.json
Each case holds the module's state dict (PyTorch's names), the inputs, an optional causal
flag, and PyTorch's float64 output (the module is run in float64 on float32-rounded inputs
and weights, so the vector checks semantics, not rounding)."""
import json
import sys

import torch

torch.manual_seed(20261123)
cases = []
for name, e, heads, kdim, vdim, sq, sk, bias, causal in (
    ("self", 32, 4, None, None, 7, 7, True, False),
    ("self causal, no bias", 16, 2, None, None, 5, 5, False, True),
    ("cross", 24, 3, 12, 20, 6, 9, True, False),
):
    m = torch.nn.MultiheadAttention(e, heads, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    with torch.no_grad():  # non-zero biases, so that their use is checked
        for n, p in m.named_parameters():
            if "bias" in n:
                p.copy_(torch.randn_like(p) * 0.3)
    m = m.double()
    query = torch.randn(1, sq, e).float().double()
    key = torch.randn(1, sk, kdim or e).float().double()
    value = torch.randn(1, sk, vdim or e).float().double()
    mask = torch.ones(sq, sk, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        out, weights = m(query, key, value, attn_mask=mask, need_weights=True, average_attn_weights=False)
    state = {k: v.detach().flatten().tolist() for k, v in m.state_dict().items()}
    cases.append({
        "name": name, "modelDim": e, "heads": heads, "kdim": kdim or e, "vdim": vdim or e, "bias": bias,
        "causal": causal, "seqQ": sq, "seqK": sk, "state": state,
        "query": query.flatten().tolist(), "key": key.flatten().tolist(), "value": value.flatten().tolist(),
        "output": out.flatten().tolist(), "weights": weights.flatten().tolist(),
    })
json.dump({"torch": torch.__version__, "cases": cases}, sys.stdout)
