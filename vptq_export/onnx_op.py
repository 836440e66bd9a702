"""`vptq.VPTQGemm` v1 for onnx's Python tooling: the op schema (so `onnx.checker` with
`full_check=True` and `onnx.shape_inference.infer_shapes(strict_mode=True)` accept exported
models) and an `onnx.reference` implementation (so `ReferenceEvaluator` runs them):

    from vptq_export.onnx_op import VPTQGemm          # importing registers the schema
    sess = ReferenceEvaluator("model.onnx", new_ops=[VPTQGemm])

docs/op-spec.md is the contract. Input order and attributes come from `op_spec`; the math is the
PyTorch reference (`op_spec.layer_from_op` + `reference.vptq_linear`), never re-implemented here.

Schema shape: `X` (T), `packed_indices` (int32), `centroids` (T), then one variadic,
heterogeneous input `weights` (float T or int32) for the optional inputs. Optional inputs are
*omitted* when absent (op-spec), so their positions shift; a schema with fixed optional slots
would type-check `perm` (int32) against the `res_centroids` slot (T). Which input is which is
decided by the presence attributes, and the shape inference function checks the count, dtypes
and shapes of every weight input against them.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, defs
from onnx.reference.op_run import OpRun

from . import op_spec
from .errors import VPTQError
from .op_spec import DOMAIN, INT_ATTRIBUTES, OP_TYPE, OP_VERSION, OpAttributes

FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(bfloat16)")
_FLOAT_ELEM = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)
_INT_INPUTS = ("packed_indices", "outlier_indices", "perm")

_S = defs.OpSchema

_ATTRIBUTE_DOCS = {
    "in_features": "I, the last dimension of X", "out_features": "O, the last dimension of Y",
    "vector_len": "v", "num_centroids": "k (power of two)",
    "num_res_centroids": "k_res (power of two), 0 without residual codebook",
    "group_num": "G", "group_size": "gs; outlier_size + G*gs = I",
    "outlier_size": "os, 0 without outlier part", "outlier_vector_len": "v_o (0 without outliers)",
    "outlier_num_centroids": "k_o (0 without outliers)", "index_bits": "log2 k",
    "res_index_bits": "log2 k_res, 0 without residual", "has_perm": "0/1: perm input present",
    "has_norm": "0/1: weight_scale and weight_bias inputs present",
    "has_bias": "0/1: bias input present",
}


def _schema() -> defs.OpSchema:
    attributes = [_S.Attribute(name, _S.AttrType.INT, _ATTRIBUTE_DOCS[name], required=True)
                  for name in INT_ATTRIBUTES]
    attributes.append(_S.Attribute("index_layout", _S.AttrType.STRING,
                                   "index layout; 'packed' is the only value of version 1",
                                   required=True))
    attributes.append(_S.Attribute("plugin_version", _S.AttrType.STRING,
                                   "'1' (read by TensorRT's ONNX parser only)", required=False))
    attributes.append(_S.Attribute("plugin_namespace", _S.AttrType.STRING,
                                   "'vptq' (read by TensorRT's ONNX parser only)", required=False))
    schema = _S(
        OP_TYPE, DOMAIN, OP_VERSION,
        "Y = X * W^T + bias with W decoded from VPTQ vector-quantized tensors (docs/op-spec.md).",
        inputs=[
            _S.FormalParameter("X", "T", "activations [..., in_features]"),
            _S.FormalParameter("packed_indices", "tensor(int32)", "[G, ceil(O/v), W] packed codes"),
            _S.FormalParameter("centroids", "T", "[G, k, v] main codebook"),
            _S.FormalParameter(
                "weights", "W",
                "optional inputs present per attribute, in this order: res_centroids, "
                "outlier_indices, outlier_centroids, perm, weight_scale, weight_bias, bias",
                param_option=_S.FormalParameterOption.Variadic, is_homogeneous=False,
                min_arity=0),
        ],
        outputs=[_S.FormalParameter("Y", "T", "[..., out_features]")],
        type_constraints=[
            ("T", list(FLOAT_TYPES), "activations, codebooks, scales and biases"),
            ("W", list(FLOAT_TYPES) + ["tensor(int32)"],
             "optional weight inputs: T for codebooks/scales/bias, int32 for index tensors"),
        ],
        attributes=attributes,
    )
    schema.set_type_and_shape_inference_function(_infer)
    return schema


class VPTQGemmShapeError(ValueError):
    """A VPTQGemm node whose inputs contradict its attributes."""


def _attributes_from_context(ctx) -> OpAttributes:
    values = {}
    for name in INT_ATTRIBUTES + ("index_layout",):
        attr = ctx.get_attribute(name)
        if attr is None:
            raise VPTQGemmShapeError(f"{OP_TYPE}: missing attribute {name!r}")
        values[name] = attr.s.decode() if name == "index_layout" else attr.i
    attrs = OpAttributes.from_dict(values)
    attrs.to_spec()            # validates the attribute combination
    return attrs


def _infer(ctx) -> None:
    """Y = X.shape[:-1] + [O], dtype of X; checks input count, dtypes and known shapes."""
    try:
        attrs = _attributes_from_context(ctx)
    except (ValueError, VPTQError) as exc:           # CheckpointError from LayerSpec validation
        raise VPTQGemmShapeError(f"{OP_TYPE}: invalid attributes: {exc}") from None
    names = attrs.input_names()
    if ctx.get_num_inputs() != len(names):
        raise VPTQGemmShapeError(
            f"{OP_TYPE}: the presence attributes call for {len(names)} inputs ({', '.join(names)}), "
            f"the node has {ctx.get_num_inputs()}")
    x_type = ctx.get_input_type(0)
    if x_type is None or not x_type.HasField("tensor_type"):
        return
    elem = x_type.tensor_type.elem_type
    if elem and elem not in _FLOAT_ELEM:
        raise VPTQGemmShapeError(f"{OP_TYPE}: X must be float32/float16/bfloat16, "
                                 f"found {TensorProto.DataType.Name(elem)}")
    shapes = attrs.input_shapes()
    for i, name in enumerate(names[1:], start=1):
        t = ctx.get_input_type(i)
        if t is None or not t.HasField("tensor_type"):
            continue
        want = TensorProto.INT32 if name in _INT_INPUTS else elem
        got = t.tensor_type.elem_type
        if want and got and got != want:
            raise VPTQGemmShapeError(
                f"{OP_TYPE}: input {i} ({name}) must be {TensorProto.DataType.Name(want)}, "
                f"found {TensorProto.DataType.Name(got)}")
        if t.tensor_type.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim]
            want_shape = list(shapes[name])
            if len(dims) != len(want_shape) or any(
                    d is not None and d != w for d, w in zip(dims, want_shape)):
                raise VPTQGemmShapeError(
                    f"{OP_TYPE}: input {i} ({name}) must have shape {want_shape}, found "
                    f"{['?' if d is None else d for d in dims]}")
    out = onnx.TypeProto()
    out.tensor_type.elem_type = elem
    if x_type.tensor_type.HasField("shape"):
        dims = x_type.tensor_type.shape.dim
        if len(dims) == 0:
            raise VPTQGemmShapeError(f"{OP_TYPE}: X must have rank >= 1")
        last = dims[-1]
        if last.HasField("dim_value") and last.dim_value != attrs.in_features:
            raise VPTQGemmShapeError(f"{OP_TYPE}: X's last dimension must be in_features="
                                     f"{attrs.in_features}, found {last.dim_value}")
        shape = out.tensor_type.shape
        for d in list(dims)[:-1]:
            shape.dim.add().CopyFrom(d)
        shape.dim.add().dim_value = attrs.out_features
    ctx.set_output_type(0, out)


def register_schema() -> None:
    """Register the VPTQGemm v1 schema with onnx (idempotent). Done on import of this module."""
    if _registered():
        return
    defs.register_schema(_schema())


def _registered() -> bool:
    try:
        defs.get_schema(OP_TYPE, OP_VERSION, DOMAIN)
        return True
    except defs.SchemaError:
        return False


register_schema()


# ---------------------------------------------------------------------------------- reference op
def _to_torch(a: np.ndarray) -> torch.Tensor:
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:          # initializers are read-only views; torch wants writable
        a = a.copy()
    if a.dtype.name == "bfloat16":                 # ml_dtypes / onnx custom bfloat16
        return torch.from_numpy(a.view(np.uint16).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _to_numpy(t: torch.Tensor, like: np.ndarray) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16).view(like.dtype)
    return t.numpy()


class VPTQGemm(OpRun):
    """`onnx.reference` implementation of vptq.VPTQGemm v1 (the PyTorch reference math)."""

    op_domain = DOMAIN

    def _run(self, X, *weights, **attributes):   # noqa: N803 (ONNX input name)
        name = self.onnx_node.name or self.onnx_node.output[0]
        attrs = OpAttributes.from_dict(attributes)
        names = attrs.input_names()[1:]
        if len(weights) != len(names):
            raise ValueError(f"{OP_TYPE} node {name!r}: attributes call for {len(names) + 1} "
                             f"inputs ({', '.join(['X'] + names)}), got {len(weights) + 1}")
        inputs = {}
        for key, value, shape in zip(names, weights, attrs.input_shapes().values()):
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"{OP_TYPE} node {name!r}: input {key} has shape "
                                 f"{list(value.shape)}, expected {list(shape)}")
            inputs[key] = _to_torch(value)
        if X.shape[-1] != attrs.in_features:
            raise ValueError(f"{OP_TYPE} node {name!r}: X's last dimension is {X.shape[-1]}, "
                             f"expected in_features={attrs.in_features}")
        layer = op_spec.layer_from_op(attrs, inputs, name=name)
        from .reference import vptq_linear
        y = vptq_linear(_to_torch(X), layer)
        return (_to_numpy(y, X),)
