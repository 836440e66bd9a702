"""`inspect_checkpoint`: validate a VPTQ checkpoint and summarise every layer (shapes, codebooks,
bits per weight), the Python side of `vptq-export inspect`."""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import VPTQCheckpoint
from .layer_spec import LayerSpec


def codebook_bits_per_weight(spec: LayerSpec, float_bits: int = 16) -> float:
    """Codebook storage spread over the layer's weights (vptq-reference.md section 1.10)."""
    entries = spec.group_num * spec.vector_len * (spec.num_centroids + spec.num_res_centroids)
    if spec.has_outliers:
        entries += spec.outlier_vector_len * spec.outlier_num_centroids
    return entries * float_bits / (spec.in_features * spec.out_features)


def layer_summary(spec: LayerSpec, float_bits: int = 16) -> dict:
    return {
        "name": spec.name,
        "in_features": spec.in_features, "out_features": spec.out_features,
        "vector_len": spec.vector_len, "num_centroids": spec.num_centroids,
        "num_res_centroids": spec.num_res_centroids,
        "group_num": spec.group_num, "group_size": spec.group_size,
        "outlier_size": spec.outlier_size, "outlier_vector_len": spec.outlier_vector_len,
        "outlier_num_centroids": spec.outlier_num_centroids,
        "index_bits": spec.index_bits, "res_index_bits": spec.res_index_bits,
        "enable_perm": spec.enable_perm, "enable_norm": spec.enable_norm, "bias": spec.bias,
        "is_indice_packed": spec.is_indice_packed, "indices_as_float": spec.indices_as_float,
        "bits_per_weight": spec.bits_per_weight,
        "codebook_bits_per_weight": codebook_bits_per_weight(spec, float_bits),
    }


def inspect_checkpoint(path: str | os.PathLike, *, check_indices: bool = False) -> dict:
    """Validate the checkpoint (headers: names, shapes, dtypes; with `check_indices` also every
    index < its codebook size and perm a permutation) and return a summary dict. Raises
    CheckpointError on the first problem."""
    ckpt = VPTQCheckpoint(path)
    specs = ckpt.validate(check_ranges=check_indices)
    float_bits = 32 if str(ckpt.dtype) == "torch.float32" else 16
    layers = [layer_summary(s, float_bits) for s in specs]
    weights = sum(s.in_features * s.out_features for s in specs)
    files = sorted({info.file for info in (ckpt.tensor_info(n) for n in ckpt.tensor_names())})
    return {
        "path": str(Path(path)),
        "model_type": ckpt.model_config.get("model_type"),
        "dtype": str(ckpt.dtype).replace("torch.", ""),
        "num_layers": len(specs),
        "quantized_weights": weights,
        "bits_per_weight": sum(l["bits_per_weight"] * l["in_features"] * l["out_features"]
                               for l in layers) / max(weights, 1),
        "codebook_bits_per_weight": sum(
            l["codebook_bits_per_weight"] * l["in_features"] * l["out_features"]
            for l in layers) / max(weights, 1),
        "non_vptq_tensors": len(ckpt.non_vptq_tensor_names()),
        "files": [os.path.basename(f) for f in files],
        "size_bytes": sum(os.path.getsize(f) for f in files),
        "indices_checked": check_indices,
        "layers": layers,
    }
