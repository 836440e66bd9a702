"""Helpers (no tests) shared by tests/test_cpu_kernel.py and tests/test_ort_op.py: the configuration matrix of
VPTQGemm layers and single-node ONNX models built from `op_spec.op_weight_inputs`."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from vptq_export.op_spec import DOMAIN, OP_TYPE, OpAttributes, op_weight_inputs
from vptq_export.synthetic import make_spec

# (id, make_spec keywords). Covers v in {2,4,6,8,12,16} (+ odd v), index bits 4..16, residual
# bits 0..16, codes straddling words (T = 7, 11, 13, 19, 23, 29), outliers (v_o not dividing v),
# perm, norm, G > 1, bias, O not a multiple of v.
CASES = [
    ("v2-k16", dict(in_features=64, out_features=30, v=2, k=16)),
    ("v4-k256-perm-bias", dict(in_features=96, out_features=50, v=4, k=256, perm=True, bias=True)),
    ("v6-k4096-k16-norm", dict(in_features=80, out_features=45, v=6, k=4096, k_res=16, norm=True)),
    ("v8-k65536", dict(in_features=128, out_features=64, v=8, k=65536)),
    ("v8-k256-256-all", dict(in_features=136, out_features=61, v=8, k=256, k_res=256, group_num=2,
                             outlier_size=8, v_o=4, k_o=32, perm=True, norm=True, bias=True)),
    ("v12-k128-k2048", dict(in_features=72, out_features=40, v=12, k=128, k_res=2048)),
    ("v16-k65536-65536", dict(in_features=64, out_features=40, v=16, k=65536, k_res=65536)),
    ("v16-k8192-g4-outl", dict(in_features=140, out_features=37, v=16, k=8192, group_num=4,
                               outlier_size=12, v_o=3, k_o=64, bias=True)),
    ("v5-k32-k64-odd", dict(in_features=77, out_features=23, v=5, k=32, k_res=64, outlier_size=7,
                            v_o=2, k_o=8, perm=True, norm=True)),
    ("v3-k1024-k8192", dict(in_features=90, out_features=17, v=3, k=1024, k_res=8192, group_num=3)),
    ("v8-k512-k16384", dict(in_features=96, out_features=33, v=8, k=512, k_res=16384)),
    ("v1-k2048", dict(in_features=50, out_features=9, v=1, k=2048, norm=True, bias=True)),
]
CASE_IDS = [c[0] for c in CASES]

NP_DTYPES = {torch.float32: np.float32, torch.float16: np.float16}
ONNX_DTYPES = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
               torch.bfloat16: TensorProto.BFLOAT16}

# Tolerances, relative to max |reference| over the output (fp32 accumulation everywhere; the
# reference sums in a different order and rounds once to the output type):
#   fp32: summation-order differences only;
#   fp16 / bf16: at most one rounding of the output (half an ulp, 2^-11 / 2^-8 relative) plus the
#   fp32 summation differences, so one ulp (2^-10 / 2^-7) of the largest output bounds every
#   element's difference.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


def spec_for(case_kwargs: dict, name: str = "layer"):
    return make_spec(name, **case_kwargs)


def max_rel_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    y, ref = y.to(torch.float64), ref.to(torch.float64)
    return float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def _initializer(name: str, value, dtype: torch.dtype) -> onnx.TensorProto:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        if value.dtype == torch.bfloat16:
            bits = value.contiguous().view(torch.int16).numpy().view(np.uint16)
            t = helper.make_tensor(name, TensorProto.BFLOAT16, list(value.shape), bits.tobytes(), raw=True)
            return t
        return numpy_helper.from_array(value.numpy(), name=name)
    return numpy_helper.from_array(np.asarray(value), name=name)


def single_node_model(spec, layer, dtype: torch.dtype, *, x_rank: int = 2, node_name: str = "vptq_node",
                      attrs: dict | None = None, weights: dict | None = None,
                      io_float32: bool = False, x_width_symbolic: bool = False) -> bytes:
    """A model with one VPTQGemm node whose weight inputs are initializers. `io_float32` (bf16):
    X and Y stay float32 in the graph, with Cast nodes around the op (numpy has no bfloat16)."""
    attrs = dict(attrs if attrs is not None else OpAttributes.from_spec(spec).as_dict())
    weights = weights if weights is not None else op_weight_inputs(layer, dtype)
    inits = [_initializer(k, v, dtype) for k, v in weights.items()]
    width = "I" if x_width_symbolic else spec.in_features  # symbolic: ORT does not check it
    x_shape = ["B", "S", width] if x_rank == 3 else ["M", width]
    io_type = TensorProto.FLOAT if io_float32 else ONNX_DTYPES[dtype]
    nodes, x_in, y_out = [], "X", "Y"
    if io_float32:
        nodes.append(helper.make_node("Cast", ["X"], ["X_cast"], to=ONNX_DTYPES[dtype], name="cast_x"))
        x_in, y_out = "X_cast", "Y_op"
    nodes.append(helper.make_node(OP_TYPE, [x_in] + list(weights), [y_out], domain=DOMAIN,
                                  name=node_name, **attrs))
    if io_float32:
        nodes.append(helper.make_node("Cast", ["Y_op"], ["Y"], to=TensorProto.FLOAT, name="cast_y"))
    graph = helper.make_graph(nodes, "vptq_single_node",
                              [helper.make_tensor_value_info("X", io_type, x_shape)],
                              [helper.make_tensor_value_info("Y", io_type, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    return model.SerializeToString()
