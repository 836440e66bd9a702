"""libvptq_ort.so in ONNX Runtime (CPU EP): single-node VPTQGemm models over the configuration
matrix against the PyTorch reference, fp16 / bf16, error reporting (node name, no crash), and
concurrent runs of one session."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vptq_export.errors import BackendUnavailableError
from vptq_export.native import ort_library_path
from vptq_export.op_spec import OpAttributes, op_weight_inputs
from vptq_export.reference.dequant import vptq_linear
from vptq_export.synthetic import random_layer

from test_ort_op_cases import CASE_IDS, CASES, TOLERANCE, max_rel_error, single_node_model, spec_for

ort = pytest.importorskip("onnxruntime")
try:
    LIB = str(ort_library_path())
except BackendUnavailableError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"ONNX Runtime op library not built: {exc}", allow_module_level=True)


def session(model: bytes, threads: int | None = None):
    so = ort.SessionOptions()
    so.register_custom_ops_library(LIB)
    if threads is not None:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _layer(kwargs, dtype, seed=0):
    spec = spec_for(kwargs)
    return spec, random_layer(spec, dtype, seed=seed)


@pytest.mark.parametrize("kwargs", [c[1] for c in CASES], ids=CASE_IDS)
def test_fp32_matrix(kwargs):
    spec, layer = _layer(kwargs, torch.float32)
    sess = session(single_node_model(spec, layer, torch.float32))
    for m in (1, 3, 17):
        x = torch.randn(m, spec.in_features)
        y = sess.run(None, {"X": x.numpy()})[0]
        assert y.shape == (m, spec.out_features) and y.dtype == np.float32
        assert max_rel_error(torch.from_numpy(y), vptq_linear(x, layer)) <= TOLERANCE[torch.float32]


@pytest.mark.parametrize("kwargs", [CASES[4][1], CASES[7][1]], ids=[CASE_IDS[4], CASE_IDS[7]])
def test_rank3_input(kwargs):
    spec, layer = _layer(kwargs, torch.float32)
    sess = session(single_node_model(spec, layer, torch.float32, x_rank=3))
    x = torch.randn(2, 17, spec.in_features)
    y = sess.run(None, {"X": x.numpy()})[0]
    assert y.shape == (2, 17, spec.out_features)
    assert max_rel_error(torch.from_numpy(y), vptq_linear(x, layer)) <= TOLERANCE[torch.float32]


@pytest.mark.parametrize("kwargs", [CASES[1][1], CASES[4][1], CASES[8][1]], ids=[CASE_IDS[i] for i in (1, 4, 8)])
def test_fp16(kwargs):
    spec, layer = _layer(kwargs, torch.float16)
    sess = session(single_node_model(spec, layer, torch.float16, x_rank=3))
    x = torch.randn(1, 3, spec.in_features).half()
    y = sess.run(None, {"X": x.numpy()})[0]
    assert y.dtype == np.float16
    ref32 = vptq_linear(x.float(), layer)  # before the final rounding (tolerance: one fp16 ulp)
    assert max_rel_error(torch.from_numpy(y).float(), ref32) <= TOLERANCE[torch.float16]


def test_bf16():
    spec, layer = _layer(CASES[4][1], torch.bfloat16)
    sess = session(single_node_model(spec, layer, torch.bfloat16, io_float32=True))
    x = torch.randn(3, spec.in_features).bfloat16()
    y = sess.run(None, {"X": x.float().numpy()})[0]
    ref32 = vptq_linear(x.float(), layer)
    assert max_rel_error(torch.from_numpy(y), ref32) <= TOLERANCE[torch.bfloat16]


def test_same_result_as_pybind_module():
    from vptq_export.native import kernels_module
    try:
        k = kernels_module()
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    spec, layer = _layer(CASES[4][1], torch.float32)
    x = torch.randn(5, spec.in_features)
    y_ort = session(single_node_model(spec, layer, torch.float32)).run(None, {"X": x.numpy()})[0]
    y_py = k.gemm_cpu(x, OpAttributes.from_spec(spec).as_dict(), op_weight_inputs(layer, torch.float32))
    np.testing.assert_array_equal(y_ort, y_py.numpy())


def test_eight_threads_share_one_session():
    spec, layer = _layer(CASES[4][1], torch.float32)
    sess = session(single_node_model(spec, layer, torch.float32), threads=2)
    xs = [np.random.default_rng(i).standard_normal((1 + i % 3, spec.in_features)).astype(np.float32)
          for i in range(8)]
    expected = [sess.run(None, {"X": x})[0] for x in xs]
    results: list = [None] * 8
    errors: list = []

    def worker(i):
        try:
            for _ in range(20):
                y = sess.run(None, {"X": xs[i]})[0]
                if not np.array_equal(y, expected[i]):
                    raise AssertionError(f"thread {i}: result changed")
            results[i] = y
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(8):
        np.testing.assert_array_equal(results[i], expected[i])


# ------------------------------------------------------------------ errors name the node

def _bad_model(**kw):
    spec, layer = _layer(CASES[1][1], torch.float32)
    return spec, layer, single_node_model(spec, layer, torch.float32, node_name="the_bad_node", **kw)


@pytest.mark.parametrize("change, words", [
    (dict(num_centroids=100), "num_centroids"),
    (dict(index_bits=9), "index_bits"),
    (dict(group_size=3), "group_size"),
    (dict(index_layout="interleaved"), "index_layout"),
])
def test_bad_attributes_fail_at_session_creation(change, words):
    spec, layer = _layer(CASES[1][1], torch.float32)
    attrs = OpAttributes.from_spec(spec).as_dict()
    attrs.update(change)
    model = single_node_model(spec, layer, torch.float32, node_name="the_bad_node", attrs=attrs)
    with pytest.raises(Exception, match="the_bad_node") as info:
        session(model)
    assert words in str(info.value)


def test_missing_attribute():
    spec, layer = _layer(CASES[1][1], torch.float32)
    attrs = OpAttributes.from_spec(spec).as_dict()
    del attrs["group_size"]
    with pytest.raises(Exception, match="the_bad_node.*group_size"):
        session(single_node_model(spec, layer, torch.float32, node_name="the_bad_node", attrs=attrs))


def test_input_count_mismatch():
    spec, layer = _layer(CASES[1][1], torch.float32)  # has perm and bias
    weights = op_weight_inputs(layer, torch.float32)
    del weights["bias"]
    with pytest.raises(Exception, match="the_bad_node.*inputs"):
        session(single_node_model(spec, layer, torch.float32, node_name="the_bad_node", weights=weights))


def test_bad_weight_shape_and_dtype():
    spec, layer = _layer(CASES[1][1], torch.float32)
    weights = op_weight_inputs(layer, torch.float32)
    short = {**weights, "centroids": weights["centroids"][:, :-1]}
    sess = session(single_node_model(spec, layer, torch.float32, node_name="the_bad_node", weights=short))
    with pytest.raises(Exception, match="the_bad_node.*centroids.*shape"):
        sess.run(None, {"X": np.zeros((1, spec.in_features), np.float32)})
    wrong = {**weights, "bias": weights["bias"].double()}
    try:
        sess = session(single_node_model(spec, layer, torch.float32, node_name="the_bad_node", weights=wrong))
    except Exception as exc:  # ORT may reject the type while resolving the graph
        assert "the_bad_node" in str(exc) or "VPTQGemm" in str(exc)
        return
    with pytest.raises(Exception, match="the_bad_node.*bias.*float32"):
        sess.run(None, {"X": np.zeros((1, spec.in_features), np.float32)})


def test_wrong_x_width():
    spec, layer, model = _bad_model(x_width_symbolic=True)
    sess = session(model)
    with pytest.raises(Exception, match="the_bad_node.*in_features"):
        sess.run(None, {"X": np.zeros((2, spec.in_features + 1), np.float32)})
    # the session still works afterwards
    x = np.ones((1, spec.in_features), np.float32)
    assert sess.run(None, {"X": x})[0].shape == (1, spec.out_features)
