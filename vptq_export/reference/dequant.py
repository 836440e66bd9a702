"""Reference dequantization and linear, exactly microsoft/VPTQ's `dequant` semantics
(vptq/ops/quant_gemm.py), computed in fp32 (or fp64) from the stored fp16/bf16 codebooks.

Closed form (docs/op-spec.md, "Math"); with o = r*v + j:
  stored column s >= outlier_size, (g, c) = divmod(s - outlier_size, gs):
      Ws[o, s] = C[g, idx[g, r, c], j] + R[g, ridx[g, r, c], j]
  stored column s < outlier_size, (r', j') = divmod(o, v_o):
      Ws[o, s] = Co[0, oidx[0, r', s], j']
  W[o, perm[s]] = Ws[o, s] * scale[perm[s]] + bias[perm[s]]
  y = x @ W^T + out_bias

Differences from upstream are rounding only: upstream adds C + R and applies scale/bias in the
model dtype; here everything is fp32 and rounded once, so the result is within one model-dtype
ulp of upstream's.
"""

from __future__ import annotations

import numpy as np
import torch

from ..quantized_linear import QuantizedLinear


def _lookup(codebook: torch.Tensor, idx: np.ndarray, vector_len: int) -> torch.Tensor:
    """codebook [G, k*v], idx [G, NI, gs] -> columns [NI*v, G*gs] (VPTQ's reshape chain)."""
    groups = codebook.shape[0]
    book = codebook.reshape(groups, -1, vector_len)                     # [G, k, v]
    idx_t = torch.from_numpy(idx)
    gathered = book[torch.arange(groups)[:, None, None], idx_t]        # [G, NI, gs, v]
    G, NI, gs, v = gathered.shape
    return gathered.permute(1, 3, 0, 2).reshape(NI * v, G * gs)          # [NI*v, G*gs]


def dequantize_stored(layer: QuantizedLinear, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Ws [O, I] in *stored* column order (outliers first, then groups), no perm, no norm."""
    s = layer.spec
    idx, ridx = layer.decoded_indices()
    _check_range("indices", idx, s.num_centroids, layer)
    q = _lookup(layer.centroids.to(dtype), idx, s.vector_len)
    if s.has_residual:
        _check_range("res_indices", ridx, s.num_res_centroids, layer)
        q = q + _lookup(layer.res_centroids.to(dtype), ridx, s.vector_len)
    q = q[: s.out_features]
    if s.has_outliers:
        oidx = layer.decoded_outlier_indices()
        _check_range("outlier_indices", oidx, s.outlier_num_centroids, layer)
        qo = _lookup(layer.outlier_centroids.to(dtype), oidx, s.outlier_vector_len)
        q = torch.cat([qo[: s.out_features], q], dim=1)
    return q


def dequantize(layer: QuantizedLinear, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """W [O, I] in original column order, computed in `dtype` (fp32 default, fp64 for tests)."""
    s = layer.spec
    w = dequantize_stored(layer, dtype)
    if s.enable_perm:
        perm = layer.decoded_perm()
        if sorted(perm.tolist()) != list(range(s.in_features)):
            raise ValueError(f"layer {s.name}: perm is not a permutation of 0..{s.in_features - 1}")
        # W[:, perm[s]] = Ws[:, s]  <=>  W = Ws[:, argsort(perm)]
        w = w[:, torch.from_numpy(np.argsort(perm, kind="stable"))]
    if s.enable_norm:
        w = w * layer.weight_scale.to(dtype)[None, :] + layer.weight_bias.to(dtype)[None, :]
    return w


def vptq_linear(x: torch.Tensor, layer: QuantizedLinear, *, weight: torch.Tensor | None = None,
                compute_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """y = x @ W^T + bias, accumulated in `compute_dtype`, returned in x's dtype.

    `weight` may pass a W computed once by `dequantize` (the model reference caches it)."""
    w = dequantize(layer, compute_dtype) if weight is None else weight.to(compute_dtype)
    y = x.to(compute_dtype) @ w.T
    if layer.spec.bias:
        y = y + layer.bias.to(compute_dtype)
    return y.to(x.dtype)


def _check_range(what: str, idx: np.ndarray, limit: int, layer: QuantizedLinear) -> None:
    if idx.size and int(idx.max()) >= limit:
        raise ValueError(f"layer {layer.spec.name}: {what} holds {int(idx.max())}, "
                         f"but the codebook has {limit} entries")
