"""Quantize one linear weight W [O, I] into a VPTQ layer (`QuantizedLinear`), following the
VPTQ algorithm (vptq-reference.md section 3.2):

1. optional min/max normalisation per input column (section 1.7), rounded to the model dtype;
2. optional permutation: stored column s is original column perm[s], perm = argsort(diag H, desc);
3. layout: `[outliers | group 0 | ... | group G-1]` stored columns;
4. one codebook per range by Hessian-weighted k-means on vectors of v consecutive output rows of
   one column (weight = the column's Hessian diagonal), rounded to the model dtype;
5. a column pass in stored order: each column's vectors take their nearest centroid; with
   `second_order` the column's error is fed forward to the later columns GPTQ-style through the
   upper Cholesky factor of H^-1 (VPTQ `vptq`, block size 1);
6. with a residual codebook: weighted k-means on the pass's quantization error, then the pass is
   rerun from the original weight with both codebooks (residual index = nearest residual centroid
   to the vector minus its main centroid).

The result keeps what the quantizer decided (indices before packing, perm, its own reconstruction
of W) so tests can check the stored layer against it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..layer_spec import LayerSpec
from ..packing import pack_indices
from ..quantized_linear import QuantizedLinear
from .kmeans import nearest, weighted_kmeans
from .options import QuantizeOptions


@dataclass
class LinearQuantization:
    layer: QuantizedLinear                 # as stored in the checkpoint
    indices: np.ndarray                    # [G, NI, gs] int64, main codes assigned
    res_indices: np.ndarray | None         # [G, NI, gs] int64
    outlier_indices: np.ndarray | None     # [1, NO, outlier_size] int64
    perm: np.ndarray | None                # [I] int64
    weight: torch.Tensor                   # [O, I] fp32: the quantizer's own reconstruction
    proxy_error: float                     # tr(dW H dW^T) / tr(W H W^T)


@dataclass
class _Range:
    start: int          # first stored column
    stop: int
    vector_len: int
    codebook: torch.Tensor              # [k, v] fp64 (values exactly representable in dtype)
    res_codebook: torch.Tensor | None   # [k_res, v]


def layer_seed(seed: int, name: str) -> int:
    """A per-layer seed that does not depend on Python's hash randomisation."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 63)


def normalized_hessian(hessian: torch.Tensor | None, in_features: int) -> torch.Tensor:
    """E[x x^T] -> H / mean(diag H) + 0.01 I (VPTQ `load_hessian`); dead inputs get H_ii = 1.
    None gives the identity (unweighted k-means, no error feedback)."""
    if hessian is None:
        return torch.eye(in_features, dtype=torch.float64)
    h = hessian.double().clone()
    if h.shape != (in_features, in_features):
        raise ValueError(f"Hessian shape {tuple(h.shape)} does not match in_features {in_features}")
    diag = h.diagonal()
    dead = diag <= 0
    h[dead, :] = 0
    h[:, dead] = 0
    diag[dead] = 1
    h /= diag.mean()
    h += 0.01 * torch.eye(in_features, dtype=torch.float64)
    return h


def quantize_linear(name: str, weight: torch.Tensor, bias: torch.Tensor | None = None,
                    hessian: torch.Tensor | None = None,
                    options: QuantizeOptions = QuantizeOptions(),
                    dtype: torch.dtype = torch.float16) -> LinearQuantization:
    """Quantize W [O, I] (any float dtype) with the input second moment `hessian` = E[x x^T]
    [I, I] (None: unweighted). `dtype` is the storage dtype of codebooks, scale/bias and bias."""
    w = weight.detach().double().clone()
    O, I = w.shape
    spec = options.layer_spec(name, I, O, bias is not None)
    seed = layer_seed(options.seed, name)
    h = normalized_hessian(hessian, I)
    dead = (hessian.diagonal() <= 0) if hessian is not None else torch.zeros(I, dtype=torch.bool)
    w[:, dead] = 0

    scale16 = bias16 = None
    if spec.enable_norm:
        lo, hi = w.min(0).values, w.max(0).values
        scale16 = (hi - lo).to(dtype)
        scale16[scale16 == 0] = 1
        bias16 = lo.to(dtype)
        s = scale16.double()
        w = (w - bias16.double()) / s
        h_eff = h * s[:, None] * s[None, :]        # squared error in normalised coordinates
    else:
        h_eff = h

    perm = None
    if spec.enable_perm:
        perm = torch.argsort(h.diagonal(), descending=True, stable=True)
        w, h_eff = w[:, perm], h_eff[perm][:, perm]
    col_weight = h_eff.diagonal().clone()

    # upper Cholesky factor of H^-1 (GPTQ); identity when no error feedback is wanted
    if options.second_order and hessian is not None:
        damp = h_eff + 0.01 * h_eff.diagonal().mean() * torch.eye(I, dtype=torch.float64)
        u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(damp)), upper=True)
    else:
        u = None

    ranges = _build_codebooks(spec, w, col_weight, options, seed, dtype)
    q, codes, err = _column_pass(spec, w, ranges, u)
    if spec.has_residual:
        main_ranges = ranges[1:] if spec.has_outliers else ranges
        for g, rng in enumerate(main_ranges):
            vecs, wts = _vectors(err[:, rng.start:rng.stop], rng.vector_len,
                                 col_weight[rng.start:rng.stop])
            book, _ = weighted_kmeans(vecs, spec.num_res_centroids, wts,
                                      iters=options.kmeans_iters, seed=seed + 7919 * (g + 1))
            rng.res_codebook = book.to(dtype).double()
        q, codes, err = _column_pass(spec, w, ranges, u)

    idx, ridx, oidx = _index_tensors(spec, codes)
    # the quantizer's own reconstruction, in original column order
    w_hat = q.clone()
    if perm is not None:
        w_hat = w_hat[:, torch.argsort(perm)]
    if spec.enable_norm:
        w_hat = w_hat * scale16.double()[None, :] + bias16.double()[None, :]
    w_orig = weight.detach().double()
    dw = w_hat - w_orig
    proxy = float(torch.trace(dw @ h @ dw.T) / torch.trace(w_orig @ h @ w_orig.T).clamp_min(1e-30))

    layer = _stored_layer(spec, ranges, idx, ridx, oidx, perm, scale16, bias16, bias, dtype)
    return LinearQuantization(layer=layer, indices=idx, res_indices=ridx, outlier_indices=oidx,
                              perm=None if perm is None else perm.numpy().astype(np.int64),
                              weight=w_hat.float(), proxy_error=proxy)


# ---------------------------------------------------------------------------------- helpers
def _vectors(block: torch.Tensor, vector_len: int, col_weight: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns [O, n] -> vectors [n * NR, v] (v consecutive output rows of one column, rows
    zero-padded at the end to a multiple of v) and their weights (the column's weight)."""
    O, n = block.shape
    pad = (-O) % vector_len
    if pad:
        block = torch.cat([block, block.new_zeros(pad, n)])
    vecs = block.T.reshape(n, -1, vector_len).reshape(-1, vector_len)
    rows = (O + pad) // vector_len
    return vecs, col_weight.repeat_interleave(rows)


def _build_codebooks(spec: LayerSpec, w: torch.Tensor, col_weight: torch.Tensor,
                     options: QuantizeOptions, seed: int, dtype: torch.dtype) -> list[_Range]:
    ranges: list[tuple[int, int, int, int]] = []      # start, stop, v, k
    if spec.has_outliers:
        ranges.append((0, spec.outlier_size, spec.outlier_vector_len, spec.outlier_num_centroids))
    for g in range(spec.group_num):
        start = spec.outlier_size + g * spec.group_size
        ranges.append((start, start + spec.group_size, spec.vector_len, spec.num_centroids))
    out = []
    for i, (start, stop, v, k) in enumerate(ranges):
        vecs, wts = _vectors(w[:, start:stop], v, col_weight[start:stop])
        book, _ = weighted_kmeans(vecs, k, wts, iters=options.kmeans_iters, seed=seed + 104729 * i)
        out.append(_Range(start, stop, v, book.to(dtype).double(), None))
    return out


def _column_pass(spec: LayerSpec, w: torch.Tensor, ranges: list[_Range], u: torch.Tensor | None):
    """Quantize stored columns in order. Returns (Q [O, I] quantized values, codes per column:
    list of (main [NR], res [NR] or None), err [O, I] = column-before-quantization - Q)."""
    O, I = w.shape
    work = w.clone()
    q = torch.zeros_like(w)
    err = torch.zeros_like(w)
    codes: list = [None] * I
    for rng in ranges:
        v = rng.vector_len
        pad = (-O) % v
        for s in range(rng.start, rng.stop):
            col = work[:, s]
            vecs = torch.cat([col, col.new_zeros(pad)]).reshape(-1, v)
            main = nearest(vecs, rng.codebook)
            qv = rng.codebook[main]
            res = None
            if rng.res_codebook is not None:
                res = nearest(vecs - qv, rng.res_codebook)
                qv = qv + rng.res_codebook[res]
            qcol = qv.reshape(-1)[:O]
            q[:, s] = qcol
            err[:, s] = col - qcol
            codes[s] = (main, res)
            if u is not None and s + 1 < I:
                e = (col - qcol) / u[s, s]
                work[:, s + 1:] -= e[:, None] * u[s, s + 1:][None, :]
    return q, codes, err


def _index_tensors(spec: LayerSpec, codes):
    G, gs, os_ = spec.group_num, spec.group_size, spec.outlier_size
    idx = np.stack([np.stack([codes[os_ + g * gs + c][0].numpy() for c in range(gs)], axis=1)
                    for g in range(G)])                                     # [G, NI, gs]
    ridx = None
    if spec.has_residual:
        ridx = np.stack([np.stack([codes[os_ + g * gs + c][1].numpy() for c in range(gs)], axis=1)
                         for g in range(G)])
    oidx = None
    if spec.has_outliers:
        oidx = np.stack([codes[c][0].numpy() for c in range(os_)], axis=1)[None]   # [1, NO, os]
    return idx.astype(np.int64), None if ridx is None else ridx.astype(np.int64), \
        None if oidx is None else oidx.astype(np.int64)


def _as16(values: np.ndarray, as_float: bool = False) -> torch.Tensor:
    """Unsigned values < 65536 -> their uint16 bits as int16 (or float16 bit patterns)."""
    bits = values.astype(np.uint16)
    return torch.from_numpy(bits.view(np.float16 if as_float else np.int16).copy())


def _stored_layer(spec, ranges, idx, ridx, oidx, perm, scale16, bias16, bias, dtype):
    main_ranges = ranges[1:] if spec.has_outliers else ranges
    kw: dict = {}
    kw["centroids"] = torch.stack([r.codebook for r in main_ranges]).reshape(
        spec.group_num, -1).to(dtype)
    if spec.has_residual:
        kw["res_centroids"] = torch.stack([r.res_codebook for r in main_ranges]).reshape(
            spec.group_num, -1).to(dtype)
    if spec.is_indice_packed:
        kw["indices"] = torch.from_numpy(pack_indices(idx, ridx, spec.index_bits,
                                                      spec.res_index_bits))
    else:
        kw["indices"] = _as16(idx, spec.indices_as_float)
        if ridx is not None:
            kw["res_indices"] = _as16(ridx, spec.indices_as_float)
    if spec.has_outliers:
        kw["outlier_centroids"] = ranges[0].codebook.reshape(1, -1).to(dtype)
        kw["outlier_indices"] = _as16(oidx)
    if perm is not None:
        p = perm.numpy().astype(np.int64)
        kw["perm"] = _as16(p) if spec.is_indice_packed else torch.from_numpy(p)
    if spec.enable_norm:
        kw["weight_scale"], kw["weight_bias"] = scale16, bias16
    if bias is not None:
        kw["bias"] = bias.detach().to(dtype)
    return QuantizedLinear(spec=spec, **kw)
