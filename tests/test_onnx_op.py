"""vptq.VPTQGemm for onnx's Python tooling: schema (checker, strict shape inference) and the
ReferenceEvaluator implementation, against the PyTorch reference and a hand-computed case."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from vptq_export.layer_spec import LayerSpec
from vptq_export.onnx_op import VPTQGemm, VPTQGemmShapeError
from vptq_export.op_spec import DOMAIN, OP_TYPE, OpAttributes, layer_from_op, op_weight_inputs
from vptq_export.quantized_linear import QuantizedLinear
from vptq_export.reference import vptq_linear
from vptq_export.synthetic import make_spec, random_layer

_ELEM = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
         torch.bfloat16: TensorProto.BFLOAT16}


def _initializer(name, value):
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            return TensorProto(name=name, data_type=TensorProto.BFLOAT16, dims=list(value.shape),
                               raw_data=value.contiguous().view(torch.int16).numpy().tobytes())
        value = value.contiguous().numpy()
    return onnx.numpy_helper.from_array(np.ascontiguousarray(value), name)


def one_node_model(layer: QuantizedLinear, dtype=torch.float32, x_dims=("batch", "seq", None),
                   drop_input: str | None = None) -> onnx.ModelProto:
    attrs = OpAttributes.from_spec(layer.spec)
    weights = op_weight_inputs(layer, dtype)
    inits = [_initializer(k, v) for k, v in weights.items() if k != drop_input]
    node = helper.make_node(OP_TYPE, ["X"] + [i.name for i in inits], ["Y"], domain=DOMAIN,
                            **attrs.as_dict())
    dims = [d if d is not None else layer.spec.in_features for d in x_dims]
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", _ELEM[dtype], dims)],
        [helper.make_tensor_value_info("Y", _ELEM[dtype], dims[:-1] + [layer.spec.out_features])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    return model


SPECS = {
    "plain": dict(),
    "residual": dict(k_res=16),
    "outliers": dict(outlier_size=8, v_o=4, k_o=16),
    "perm_norm": dict(perm=True, norm=True),
    "groups": dict(group_num=4, k_res=4),
    "bias": dict(bias=True),
    "everything": dict(k_res=4, outlier_size=16, group_num=2, perm=True, norm=True, bias=True),
    "unpacked": dict(packed=False, k_res=8, perm=True),
    "odd_rows": dict(v=6, k=64),          # with O = 50: end padding of the last index row
}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_reference_evaluator_matches_reference(case):
    opts = dict(SPECS[case])
    out_features = 50 if case == "odd_rows" else 48        # 50 % 6 != 0: end padding
    spec = make_spec(f"layer.{case}", 64, out_features, **opts)
    layer = random_layer(spec, torch.float16, seed=hash(case) % 1000)
    model = one_node_model(layer)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    y_dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in y_dims] == ["batch", "seq", out_features]
    x = np.random.default_rng(1).standard_normal((2, 3, 64)).astype(np.float32)
    (y,) = ReferenceEvaluator(model, new_ops=[VPTQGemm]).run(None, {"X": x})
    expected = vptq_linear(torch.from_numpy(x), layer).numpy()
    assert y.shape == (2, 3, out_features) and y.dtype == np.float32
    # same math (reference.vptq_linear): identical up to fp32 summation order
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


def test_hand_computed_case():
    # I = 3 (one group), O = 2, v = 2, k = 2 (1-bit codes): codes [0, 1, 1] for the only index
    # row -> word bits 0b110 = 6. W[:, c] = centroids[code[c]] -> [[1, 3, 3], [2, 4, 4]].
    spec = make_spec("hand", 3, 2, v=2, k=2)
    layer = QuantizedLinear(spec=spec, centroids=torch.tensor([[1.0, 2.0, 3.0, 4.0]]),
                            indices=torch.tensor([[[6]]], dtype=torch.int32))
    model = one_node_model(layer, x_dims=(None,))
    x = np.array([1.0, 10.0, 100.0], np.float32)
    (y,) = ReferenceEvaluator(model, new_ops=[VPTQGemm]).run(None, {"X": x})
    np.testing.assert_array_equal(y, [1 + 30 + 300, 2 + 40 + 400])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_types(dtype):
    spec = make_spec("half", 64, 40, k_res=16, norm=True, bias=True)
    layer = random_layer(spec, torch.float16, seed=3)
    model = one_node_model(layer, dtype)
    onnx.checker.check_model(model, full_check=True)
    x32 = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    x = torch.from_numpy(x32).to(dtype)
    feed = x.numpy() if dtype == torch.float16 else \
        x.view(torch.int16).numpy().view(np.uint16).view(_ml_bf16())
    (y,) = ReferenceEvaluator(model, new_ops=[VPTQGemm]).run(None, {"X": feed})
    assert y.dtype == feed.dtype and y.shape == (4, 40)
    y_t = torch.from_numpy(y.view(np.uint16).view(np.int16)).view(torch.bfloat16) \
        if dtype == torch.bfloat16 else torch.from_numpy(y)
    # The graph holds the codebooks in `dtype` (fp16 -> bf16 rounds them, as the exporter
    # does); fp32 accumulation and one rounding to `dtype` make the result equal to the
    # reference's on those same weights.
    as_exported = layer_from_op(OpAttributes.from_spec(spec), op_weight_inputs(layer, dtype))
    torch.testing.assert_close(y_t, vptq_linear(x, as_exported), rtol=0, atol=0)


def _ml_bf16():
    import ml_dtypes
    return ml_dtypes.bfloat16


def test_shape_inference_rejects_inconsistent_nodes():
    spec = make_spec("bad", 64, 48, k_res=16)
    layer = random_layer(spec, torch.float16, seed=0)
    with pytest.raises((VPTQGemmShapeError, onnx.shape_inference.InferenceError,
                        onnx.checker.ValidationError), match="inputs"):
        onnx.shape_inference.infer_shapes(one_node_model(layer, drop_input="res_centroids"),
                                          strict_mode=True)
    with pytest.raises(Exception, match="in_features"):
        onnx.shape_inference.infer_shapes(one_node_model(layer, x_dims=("b", 63)),
                                          strict_mode=True)
    wrong = one_node_model(layer)
    wrong.graph.initializer[1].CopyFrom(onnx.numpy_helper.from_array(
        np.zeros((1, 6, 8), np.float32), wrong.graph.initializer[1].name))   # centroids shape
    with pytest.raises(Exception, match="centroids"):
        onnx.shape_inference.infer_shapes(wrong, strict_mode=True)


def test_schema_lists_every_attribute():
    from vptq_export.op_spec import INT_ATTRIBUTES, STRING_ATTRIBUTES

    schema = onnx.defs.get_schema(OP_TYPE, 1, DOMAIN)
    assert set(schema.attributes) == set(INT_ATTRIBUTES) | set(STRING_ATTRIBUTES)
    assert all(schema.attributes[a].required for a in INT_ATTRIBUTES + ("index_layout",))
    types = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    assert types["T"] == {"tensor(float)", "tensor(float16)", "tensor(bfloat16)"}


def test_reference_op_rejects_wrong_input_count():
    spec = make_spec("count", 64, 48, bias=True)
    layer = random_layer(spec, torch.float16, seed=0)
    model = one_node_model(layer, drop_input="bias")
    with pytest.raises(Exception, match="bias"):
        ReferenceEvaluator(model, new_ops=[VPTQGemm]).run(
            None, {"X": np.zeros((1, 1, 64), np.float32)})


def test_layer_spec_roundtrip_through_attributes():
    spec = make_spec("rt", 64, 48, k_res=4, outlier_size=16, group_num=2, perm=True)
    back = OpAttributes.from_spec(spec).to_spec("rt")
    assert isinstance(back, LayerSpec) and back.num_index_rows == spec.num_index_rows
