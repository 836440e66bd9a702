"""Random but valid VPTQ layers (random codes and codebooks) for tests, kernel checks and
large-shape checkpoints. Not quantization: see vptq_export.quantize for that."""

from __future__ import annotations

import numpy as np
import torch

from .layer_spec import LayerSpec
from .packing import pack_indices
from .quantized_linear import QuantizedLinear


def random_layer(spec: LayerSpec, dtype: torch.dtype = torch.float16,
                 seed: int | np.random.Generator = 0, *, codebook_scale: float = 0.05) -> QuantizedLinear:
    """A QuantizedLinear with uniformly random indices in range, N(0, codebook_scale) codebooks,
    a random permutation, scale ~ U(0.5, 1.5), small biases; storage exactly as the checkpoint
    format prescribes for `spec` (packed int32 or unpacked int16 / float16 bit patterns)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    G, NI, gs, v = spec.group_num, spec.num_index_rows, spec.group_size, spec.vector_len

    def floats(*shape, scale=codebook_scale, loc=0.0):
        return torch.from_numpy(rng.normal(loc, scale, shape).astype(np.float32)).to(dtype)

    idx = rng.integers(0, spec.num_centroids, (G, NI, gs), dtype=np.int64)
    ridx = rng.integers(0, spec.num_res_centroids, (G, NI, gs), dtype=np.int64) \
        if spec.has_residual else None
    kwargs: dict = {}
    if spec.is_indice_packed:
        kwargs["indices"] = torch.from_numpy(pack_indices(idx, ridx, spec.index_bits,
                                                          spec.res_index_bits))
    else:
        as16 = np.float16 if spec.indices_as_float else np.int16
        kwargs["indices"] = torch.from_numpy(idx.astype(np.uint16).view(as16))
        if ridx is not None:
            kwargs["res_indices"] = torch.from_numpy(ridx.astype(np.uint16).view(as16))
    kwargs["centroids"] = floats(G, spec.num_centroids * v)
    if spec.has_residual:
        kwargs["res_centroids"] = floats(G, spec.num_res_centroids * v, scale=codebook_scale / 4)
    if spec.has_outliers:
        NO = spec.outlier_num_index_rows
        oidx = rng.integers(0, spec.outlier_num_centroids, (1, NO, spec.outlier_size))
        kwargs["outlier_indices"] = torch.from_numpy(oidx.astype(np.uint16).view(np.int16))
        kwargs["outlier_centroids"] = floats(1, spec.outlier_num_centroids * spec.outlier_vector_len,
                                             scale=codebook_scale * 3)
    if spec.enable_perm:
        perm = rng.permutation(spec.in_features)
        kwargs["perm"] = torch.from_numpy(perm.astype(np.uint16).view(np.int16)) \
            if spec.is_indice_packed else torch.from_numpy(perm.astype(np.int64))
    if spec.enable_norm:
        kwargs["weight_scale"] = torch.from_numpy(
            rng.uniform(0.5, 1.5, spec.in_features).astype(np.float32)).to(dtype)
        kwargs["weight_bias"] = floats(spec.in_features, scale=codebook_scale / 2)
    if spec.bias:
        kwargs["bias"] = floats(spec.out_features, scale=0.02)
    return QuantizedLinear(spec=spec, **kwargs)


def make_spec(name: str = "layer", in_features: int = 64, out_features: int = 48, *,
              v: int = 8, k: int = 256, k_res: int = 0, group_num: int = 1,
              outlier_size: int = 0, v_o: int = 4, k_o: int = 16, perm: bool = False,
              norm: bool = False, bias: bool = False, packed: bool = True,
              indices_as_float: bool = False) -> LayerSpec:
    """A LayerSpec from short keyword names (group_size derived), validated like a checkpoint."""
    gs, rem = divmod(in_features - outlier_size, group_num)
    if rem:
        raise ValueError("in_features - outlier_size must divide by group_num")
    return LayerSpec.from_config(name, {
        "in_features": in_features, "out_features": out_features,
        "vector_lens": [v_o if outlier_size else -1, v],
        "num_centroids": [k_o if outlier_size else -1, k],
        "num_res_centroids": [-1, k_res if k_res else -1],
        "group_num": group_num, "group_size": gs, "outlier_size": outlier_size,
        "enable_perm": perm, "enable_norm": norm, "bias": bias,
        "is_indice_packed": packed, "indices_as_float": indices_as_float,
    })
