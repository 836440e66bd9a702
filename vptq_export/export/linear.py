"""Linear layers in the graph: one `vptq.VPTQGemm` node per VPTQ linear (weights as the op's
inputs, never dequantized), a `Gemm(transB=1)` over a 2-D view for full-precision linears and
the lm_head (so an [O, I] checkpoint weight, or the tied embedding, is used as stored, with no
transposed copy), and streamed full-precision initializers.
"""

from __future__ import annotations

import math
import warnings

import torch

from ..errors import UnsupportedModelError
from ..op_spec import DOMAIN, OP_TYPE, OP_VERSION, OpAttributes, op_weight_inputs
from ..quantized_linear import QuantizedLinear
from .graph_builder import GraphBuilder
from .options import ONNX_TYPES
from .tensor_source import TensorSource

# Attributes for TensorRT's ONNX parser (older parsers ignore the node domain).
PLUGIN_ATTRIBUTES = {"plugin_version": "1", "plugin_namespace": DOMAIN}


def vptq_gemm(b: GraphBuilder, x: str, layer: QuantizedLinear, dtype: torch.dtype,
              out_dims: list, output_name: str | None = None) -> str:
    """Y = VPTQGemm(x, <layer's op inputs>); initializers are named `<layer>.<input>`."""
    attrs = OpAttributes.from_spec(layer.spec)
    inputs = [x]
    for key, value in op_weight_inputs(layer, dtype).items():
        inputs.append(b.initializer(f"{layer.spec.name}.{key}", value))
    b.opsets[DOMAIN] = OP_VERSION
    y = b.op(OP_TYPE, inputs, domain=DOMAIN, name=OP_TYPE, **attrs.as_dict(),
             output_names=[output_name] if output_name else None, **PLUGIN_ATTRIBUTES)
    # Declared for consumers that do not register our schema (it also infers this).
    if not output_name:
        b.annotate(y, ONNX_TYPES[dtype], list(out_dims) + [layer.spec.out_features])
    return y


def fp_initializer(b: GraphBuilder, src: TensorSource, name: str, dtype: torch.dtype,
                   *, onnx_name: str | None = None) -> str:
    """A checkpoint float tensor as an initializer in `dtype`, converted and written one block
    of rows at a time (an 8B embedding never sits in memory whole)."""
    info = src.ckpt.tensor_info(name)
    if not info.dtype.is_floating_point:
        raise TypeError(f"tensor {name} is {info.dtype}, expected a float tensor")
    nbytes = math.prod(info.shape) * torch.empty((), dtype=dtype).element_size()
    onnx_name = onnx_name or name
    if nbytes <= 1 << 20:
        return b.initializer(onnx_name, src.tensor(name).to(dtype))
    blocks = (block.to(dtype) for block in src.row_blocks(name))
    return b.add_initializer_proto(
        b.writer.blocks(onnx_name, blocks, info.shape, ONNX_TYPES[dtype], nbytes))


def gemm_2d(b: GraphBuilder, x: str, weight: str, bias: str | None, out_features: int,
            output_name: str | None = None) -> str:
    """x [..., I] @ weight[O, I]^T (+ bias) with Gemm(transB=1) over x viewed as [-1, I]."""
    lead = b.op("Shape", [x], name="Shape", start=0, end=-1)
    flat = b.op("Flatten", [x], name="Flatten", axis=-1)
    y2 = b.op("Gemm", [flat, weight] + ([bias] if bias else []), name="Gemm", transB=1)
    shape = b.op("Concat", [lead, b.const_i64([out_features])], name="Concat", axis=0)
    return b.op("Reshape", [y2, shape], name="Reshape",
                output_names=[output_name] if output_name else None)


class LinearResolver:
    """Finds what a linear module of the HF architecture is in the checkpoint: a VPTQ layer, or
    a full-precision `<name>.weight` (+ `<name>.bias`), and emits it."""

    def __init__(self, src: TensorSource, dtype: torch.dtype, *, check_indices: bool = False):
        self.src = src
        self.ckpt = src.ckpt
        self.dtype = dtype
        self.check_indices = check_indices
        self.vptq_layers = set(self.ckpt.layer_names())
        self.used: set[str] = set()        # non-VPTQ checkpoint tensors consumed
        self.emitted_vptq: list[str] = []

    def has(self, module: str) -> bool:
        return module in self.vptq_layers or self.ckpt.has_tensor(f"{module}.weight")

    def fp_tensor(self, b: GraphBuilder, name: str) -> str:
        self.used.add(name)
        return fp_initializer(b, self.src, name, self.dtype)

    def linear(self, b: GraphBuilder, x: str, module: str, out_dims: list,
               output_name: str | None = None) -> str:
        """y = module(x); `out_dims` is y's shape without the last dimension's value (used for
        the VPTQGemm output's value_info); `output_name` names y (for graph outputs)."""
        if module in self.vptq_layers:
            layer = self.src.layer(module, check_ranges=self.check_indices)
            if not layer.spec.bias and self.ckpt.has_tensor(f"{module}.bias"):
                # Neither microsoft/VPTQ's VQuantLinear (bias=False has no bias parameter) nor the
                # reference loads it; follow them, but say so.
                warnings.warn(f"{module}.bias is in the checkpoint but the VPTQ layer config has "
                              "bias=false; it is ignored, as microsoft/VPTQ ignores it")
            with b.scope(module):
                y = vptq_gemm(b, x, layer, self.dtype, out_dims, output_name)
            self.emitted_vptq.append(module)
            return y
        weight_name = f"{module}.weight"
        if not self.ckpt.has_tensor(weight_name):
            raise UnsupportedModelError(
                f"{self.ckpt.path}: neither a VPTQ layer nor a full-precision weight "
                f"({weight_name}) exists for the linear {module}")
        out_features = self.ckpt.tensor_info(weight_name).shape[0]
        weight = self.fp_tensor(b, weight_name)
        bias = self.fp_tensor(b, f"{module}.bias") if self.ckpt.has_tensor(f"{module}.bias") \
            else None
        with b.scope(module):
            return gemm_2d(b, x, weight, bias, out_features, output_name)

