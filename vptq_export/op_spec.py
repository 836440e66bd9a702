"""The `vptq.VPTQGemm` op, version 1: input order, attribute names, and the conversion between a
checkpoint layer (`QuantizedLinear`) and the op's inputs/attributes. docs/op-spec.md is the
normative text; this module is its executable form, used by the exporter, the ONNX reference
implementation, the kernel tests and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .layer_spec import LayerSpec
from .packing import pack_indices
from .quantized_linear import QuantizedLinear

OP_TYPE = "VPTQGemm"
DOMAIN = "vptq"
OP_VERSION = 1

# Layout names for the `index_layout` attribute (the only one in version 1).
INDEX_LAYOUT_PACKED = "packed"

# Inputs in node order. Optional ones are present iff their presence attribute says so; absent
# inputs are skipped (no empty names), so the position of an input depends on what precedes it.
INPUTS = (
    # name, presence rule (attribute predicate or None for always)
    ("X", None),
    ("packed_indices", None),
    ("centroids", None),
    ("res_centroids", "has_residual"),
    ("outlier_indices", "has_outliers"),
    ("outlier_centroids", "has_outliers"),
    ("perm", "has_perm"),
    ("weight_scale", "has_norm"),
    ("weight_bias", "has_norm"),
    ("bias", "has_bias"),
)

# Integer attributes (all required in version 1).
INT_ATTRIBUTES = (
    "in_features", "out_features", "vector_len", "num_centroids", "num_res_centroids",
    "group_num", "group_size", "outlier_size", "outlier_vector_len", "outlier_num_centroids",
    "index_bits", "res_index_bits", "has_perm", "has_norm", "has_bias",
)
# String attributes: index_layout is required; plugin_version / plugin_namespace are for
# TensorRT's ONNX parser (older parsers ignore the node domain) and ignored by everyone else.
STRING_ATTRIBUTES = ("index_layout", "plugin_version", "plugin_namespace")


@dataclass(frozen=True)
class OpAttributes:
    in_features: int
    out_features: int
    vector_len: int
    num_centroids: int
    num_res_centroids: int
    group_num: int
    group_size: int
    outlier_size: int
    outlier_vector_len: int
    outlier_num_centroids: int
    index_bits: int
    res_index_bits: int
    has_perm: int
    has_norm: int
    has_bias: int
    index_layout: str = INDEX_LAYOUT_PACKED

    @property
    def has_residual(self) -> bool:
        return self.num_res_centroids > 0

    @property
    def has_outliers(self) -> bool:
        return self.outlier_size > 0

    @classmethod
    def from_spec(cls, spec: LayerSpec) -> "OpAttributes":
        return cls(
            in_features=spec.in_features, out_features=spec.out_features,
            vector_len=spec.vector_len, num_centroids=spec.num_centroids,
            num_res_centroids=spec.num_res_centroids, group_num=spec.group_num,
            group_size=spec.group_size, outlier_size=spec.outlier_size,
            outlier_vector_len=spec.outlier_vector_len,
            outlier_num_centroids=spec.outlier_num_centroids, index_bits=spec.index_bits,
            res_index_bits=spec.res_index_bits, has_perm=int(spec.enable_perm),
            has_norm=int(spec.enable_norm), has_bias=int(spec.bias))

    @classmethod
    def from_dict(cls, attrs: dict) -> "OpAttributes":
        missing = [a for a in INT_ATTRIBUTES if a not in attrs]
        if missing:
            raise ValueError(f"VPTQGemm: missing attribute(s) {', '.join(missing)}")
        layout = attrs.get("index_layout", INDEX_LAYOUT_PACKED)
        if isinstance(layout, bytes):
            layout = layout.decode()
        if layout != INDEX_LAYOUT_PACKED:
            raise ValueError(f"VPTQGemm: index_layout '{layout}' is not defined in version 1 "
                             f"(expected '{INDEX_LAYOUT_PACKED}')")
        return cls(**{a: int(attrs[a]) for a in INT_ATTRIBUTES}, index_layout=layout)

    def to_spec(self, name: str = "VPTQGemm") -> LayerSpec:
        """The equivalent LayerSpec (validates the attributes with the checkpoint rules)."""
        spec = LayerSpec.from_config(name, {
            "in_features": self.in_features, "out_features": self.out_features,
            "vector_lens": [self.outlier_vector_len if self.has_outliers else -1, self.vector_len],
            "num_centroids": [self.outlier_num_centroids if self.has_outliers else -1,
                              self.num_centroids],
            "num_res_centroids": [-1, self.num_res_centroids if self.has_residual else -1],
            "group_num": self.group_num, "group_size": self.group_size,
            "outlier_size": self.outlier_size, "enable_perm": bool(self.has_perm),
            "enable_norm": bool(self.has_norm), "bias": bool(self.has_bias),
            "is_indice_packed": True,
        })
        if (spec.index_bits, spec.res_index_bits) != (self.index_bits, self.res_index_bits):
            raise ValueError(f"VPTQGemm: index_bits/res_index_bits ({self.index_bits}, "
                             f"{self.res_index_bits}) disagree with log2 of the centroid counts "
                             f"({spec.index_bits}, {spec.res_index_bits})")
        return spec

    def as_dict(self) -> dict:
        out = {a: getattr(self, a) for a in INT_ATTRIBUTES}
        out["index_layout"] = self.index_layout
        return out

    def input_names(self) -> list[str]:
        """Names of the node's inputs, in order, for these attributes."""
        present = {"has_residual": self.has_residual, "has_outliers": self.has_outliers,
                   "has_perm": bool(self.has_perm), "has_norm": bool(self.has_norm),
                   "has_bias": bool(self.has_bias)}
        return [name for name, rule in INPUTS if rule is None or present[rule]]

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the weight inputs (everything but X)."""
        spec = self.to_spec()
        G, NI, W = spec.group_num, spec.num_index_rows, spec.packed_words_per_row
        shapes = {"packed_indices": (G, NI, W),
                  "centroids": (G, spec.num_centroids, spec.vector_len),
                  "res_centroids": (G, spec.num_res_centroids, spec.vector_len),
                  "outlier_indices": (1, spec.outlier_num_index_rows, spec.outlier_size),
                  "outlier_centroids": (1, spec.outlier_num_centroids, spec.outlier_vector_len),
                  "perm": (spec.in_features,), "weight_scale": (spec.in_features,),
                  "weight_bias": (spec.in_features,), "bias": (spec.out_features,)}
        return {n: shapes[n] for n in self.input_names() if n != "X"}


def op_weight_inputs(layer: QuantizedLinear, dtype: torch.dtype | None = None) -> dict[str, np.ndarray | torch.Tensor]:
    """The op's weight inputs (all but X) for a checkpoint layer, converted to the op layout:
    indices always packed int32 (unpacked / float-bit checkpoints are packed here), outlier
    indices and perm widened to int32 (uint16 bits reinterpreted), codebooks reshaped to
    [G, k, v] and cast to `dtype` (default: the checkpoint's). Float tensors are torch tensors
    (bf16 has no numpy dtype); integer tensors are numpy int32."""
    s = layer.spec
    attrs = OpAttributes.from_spec(s)
    dtype = dtype or layer.dtype
    out: dict[str, np.ndarray | torch.Tensor] = {}
    if s.is_indice_packed:
        out["packed_indices"] = layer.indices.detach().cpu().numpy().astype(np.int32, copy=False)
    else:
        idx, ridx = layer.decoded_indices()
        out["packed_indices"] = pack_indices(idx, ridx, s.index_bits, s.res_index_bits)
    out["centroids"] = layer.centroids.reshape(s.group_num, s.num_centroids, s.vector_len).to(dtype)
    if s.has_residual:
        out["res_centroids"] = layer.res_centroids.reshape(
            s.group_num, s.num_res_centroids, s.vector_len).to(dtype)
    if s.has_outliers:
        out["outlier_indices"] = layer.decoded_outlier_indices().astype(np.int32)
        out["outlier_centroids"] = layer.outlier_centroids.reshape(
            1, s.outlier_num_centroids, s.outlier_vector_len).to(dtype)
    if s.enable_perm:
        out["perm"] = layer.decoded_perm().astype(np.int32)
    if s.enable_norm:
        out["weight_scale"] = layer.weight_scale.to(dtype)
        out["weight_bias"] = layer.weight_bias.to(dtype)
    if s.bias:
        out["bias"] = layer.bias.to(dtype)
    assert list(out) == attrs.input_names()[1:]
    return out


def layer_from_op(attrs: OpAttributes, inputs: dict[str, np.ndarray | torch.Tensor],
                  name: str = "VPTQGemm") -> QuantizedLinear:
    """Inverse of op_weight_inputs: a QuantizedLinear (packed layout) from op inputs, so that the
    reference dequantization serves the op's Python implementation too."""
    spec = attrs.to_spec(name)

    def t(key):
        value = inputs[key]
        return value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))

    def flat(key, rows):
        return t(key).reshape(rows, -1)

    def as_u16_bits(key):
        # the checkpoint form of uint16 tensors is int16 bit patterns
        return t(key).to(torch.int64).to(torch.int32).to(torch.int16)

    return QuantizedLinear(
        spec=spec,
        centroids=flat("centroids", spec.group_num),
        indices=t("packed_indices").to(torch.int32),
        res_centroids=flat("res_centroids", spec.group_num) if spec.has_residual else None,
        outlier_centroids=flat("outlier_centroids", 1) if spec.has_outliers else None,
        outlier_indices=as_u16_bits("outlier_indices") if spec.has_outliers else None,
        perm=t("perm").to(torch.int64) if spec.enable_perm else None,
        weight_scale=t("weight_scale") if spec.enable_norm else None,
        weight_bias=t("weight_bias") if spec.enable_norm else None,
        bias=t("bias") if spec.bias else None,
    )
