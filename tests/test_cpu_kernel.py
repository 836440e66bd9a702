"""vptq_export._kernels (pybind11, csrc/cpu): gemm_cpu against the PyTorch reference over the
configuration matrix, thread-count independence, validate() against the Python rules, errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from vptq_export.errors import BackendUnavailableError, CheckpointError
from vptq_export.native import kernels_module
from vptq_export.op_spec import OpAttributes, op_weight_inputs
from vptq_export.reference.dequant import vptq_linear
from vptq_export.synthetic import make_spec, random_layer

from test_ort_op_cases import CASE_IDS, CASES, TOLERANCE, max_rel_error, spec_for

try:
    K = kernels_module()
except BackendUnavailableError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"native module not built: {exc}", allow_module_level=True)


def _case(kwargs, dtype, seed=0):
    spec = spec_for(kwargs)
    layer = random_layer(spec, dtype, seed=seed)
    return spec, layer, OpAttributes.from_spec(spec).as_dict(), op_weight_inputs(layer, dtype)


@pytest.mark.parametrize("kwargs", [c[1] for c in CASES], ids=CASE_IDS)
@pytest.mark.parametrize("m", [1, 3, 17])
def test_gemm_cpu_fp32_matches_reference(kwargs, m):
    spec, layer, attrs, weights = _case(kwargs, torch.float32, seed=m)
    x = torch.randn(m, spec.in_features, generator=torch.Generator().manual_seed(m))
    y = K.gemm_cpu(x, attrs, weights, num_threads=2)
    ref = vptq_linear(x, layer)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert max_rel_error(y, ref) <= TOLERANCE[torch.float32]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("kwargs", [CASES[1][1], CASES[4][1], CASES[8][1]], ids=[CASE_IDS[i] for i in (1, 4, 8)])
def test_gemm_cpu_half_types(kwargs, dtype):
    spec, layer, attrs, weights = _case(kwargs, dtype)
    x = torch.randn(2, 5, spec.in_features).to(dtype)  # rank 3
    y = K.gemm_cpu(x, attrs, weights, num_threads=1)
    assert y.dtype == dtype and y.shape == (2, 5, spec.out_features)
    ref32 = vptq_linear(x.float(), layer)  # fp32 result before the final rounding
    assert max_rel_error(y.float(), ref32) <= TOLERANCE[dtype]


def test_numpy_inputs_positional_and_fp16():
    spec, layer, attrs, weights = _case(CASES[4][1], torch.float16)
    arrays = [w.numpy() if isinstance(w, torch.Tensor) else w for w in weights.values()]
    x = np.random.default_rng(0).standard_normal((3, spec.in_features)).astype(np.float16)
    y = K.gemm_cpu(x, attrs, *arrays)
    assert isinstance(y, np.ndarray) and y.dtype == np.float16 and y.shape == (3, spec.out_features)
    ref = vptq_linear(torch.from_numpy(x).float(), layer)
    assert max_rel_error(torch.from_numpy(y).float(), ref) <= TOLERANCE[torch.float16]


@pytest.mark.parametrize("total_bits", list(range(1, 33)))
def test_every_code_width(total_bits):
    """T = 1..32 (codes straddling words for every T that does not divide 32), gs not a multiple
    of 32 so the decoder's tail path runs too."""
    ib = min(total_bits, 16)
    rb = total_bits - ib
    spec = make_spec("t", in_features=2 * 300 + 5, out_features=13, v=4, k=2 ** ib,
                     k_res=2 ** rb if rb else 0, group_num=2, outlier_size=5, v_o=3, k_o=4)
    layer = random_layer(spec, torch.float32, seed=total_bits)
    attrs, weights = OpAttributes.from_spec(spec).as_dict(), op_weight_inputs(layer, torch.float32)
    x = torch.randn(2, spec.in_features)
    assert max_rel_error(K.gemm_cpu(x, attrs, weights), vptq_linear(x, layer)) <= TOLERANCE[torch.float32]


def test_results_do_not_depend_on_thread_count():
    spec = make_spec("t", in_features=512, out_features=300, v=8, k=4096, k_res=16, perm=True,
                     norm=True, bias=True, outlier_size=0)
    layer = random_layer(spec, torch.float32, seed=3)
    attrs, weights = OpAttributes.from_spec(spec).as_dict(), op_weight_inputs(layer, torch.float32)
    for m in (1, 9):
        x = torch.randn(m, spec.in_features)
        outs = [K.gemm_cpu(x, attrs, weights, num_threads=n) for n in (1, 2, 3, 8)]
        for y in outs[1:]:
            assert torch.equal(y, outs[0])


def test_hand_computed_case():
    """I = 2, O = 3, v = 2, k = 2, no residual: indices [[1, 0], [0, 1]] (row-major, gs = 2),
    packed bits 0b01 / 0b10 -> words 1 and 2; W[o, c] = C[idx[o // 2, c], o % 2]."""
    C = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)           # [G=1, k=2, v=2]
    packed = np.array([[[1], [2]]], np.int32)                       # [G, NI=2, W=1]
    attrs = dict(in_features=2, out_features=3, vector_len=2, num_centroids=2, num_res_centroids=0,
                 group_num=1, group_size=2, outlier_size=0, outlier_vector_len=0,
                 outlier_num_centroids=0, index_bits=1, res_index_bits=0, has_perm=0, has_norm=0,
                 has_bias=0, index_layout="packed")
    # idx row 0 = [1, 0]: W[0] = [C[1][0], C[0][0]] = [3, 1], W[1] = [4, 2]
    # idx row 1 = [0, 1]: W[2] = [C[0][0], C[1][0]] = [1, 3]  (row 3 is padding)
    x = np.array([[1.0, 10.0]], np.float32)
    y = K.gemm_cpu(x, attrs, packed, C)
    np.testing.assert_array_equal(y, [[13.0, 24.0, 31.0]])


def _python_accepts(attrs: dict) -> bool:
    try:
        OpAttributes.from_dict(attrs).to_spec()
        return True
    except (ValueError, CheckpointError):
        return False


def test_validate_agrees_with_python_rules():
    base = OpAttributes.from_spec(make_spec("b", in_features=96, out_features=40, v=4, k=256,
                                            k_res=16, group_num=2, outlier_size=8, v_o=2, k_o=8,
                                            perm=True)).as_dict()
    assert K.validate(base) == ""
    rng = np.random.default_rng(0)
    variations = {
        "num_centroids": [255, 0, 512, 1], "num_res_centroids": [0, 3, 32], "vector_len": [0, 1, 7],
        "group_num": [0, 1, 3], "group_size": [44, 40, 88], "outlier_size": [0, 9],
        "outlier_num_centroids": [0, 6, 16], "outlier_vector_len": [0, 3], "index_bits": [7, 9, 8],
        "res_index_bits": [0, 4, 5], "in_features": [95, 70000], "out_features": [0, 1],
    }
    checked = 0
    for _ in range(300):
        attrs = dict(base)
        for key in rng.choice(list(variations), size=rng.integers(1, 3), replace=False):
            attrs[key] = int(rng.choice(variations[key]))
        ok_python = _python_accepts(attrs)
        message = K.validate(attrs)
        assert (message == "") == ok_python, (attrs, message)
        checked += 1
    assert checked == 300


@pytest.mark.parametrize("change, match", [
    (dict(num_centroids=100), "num_centroids"),
    (dict(index_bits=7), "index_bits"),
    (dict(group_size=10), "in_features"),
    (dict(has_bias=2), "has_bias"),
])
def test_validate_names_the_attribute(change, match):
    attrs = OpAttributes.from_spec(make_spec("b", v=8, k=256)).as_dict()
    attrs.update(change)
    assert match in K.validate(attrs)
    with pytest.raises(ValueError, match=match):
        K.gemm_cpu(np.zeros((1, 64), np.float32), attrs, np.zeros((1, 6, 16), np.int32),
                   np.zeros((1, 256, 8), np.float32))


def test_bad_inputs_raise():
    spec, layer, attrs, weights = _case(CASES[1][1], torch.float32)
    w = dict(weights)
    with pytest.raises(ValueError, match="in_features"):
        K.gemm_cpu(torch.zeros(2, spec.in_features + 1), attrs, w)
    with pytest.raises(TypeError, match="centroids"):
        K.gemm_cpu(torch.zeros(2, spec.in_features), attrs, {**w, "centroids": w["centroids"].half()})
    with pytest.raises(ValueError, match="packed_indices"):
        K.gemm_cpu(torch.zeros(2, spec.in_features), attrs, {**w, "packed_indices": w["packed_indices"][:, :-1]})
    with pytest.raises(ValueError, match="weight inputs"):
        K.gemm_cpu(torch.zeros(2, spec.in_features), attrs, w["packed_indices"], w["centroids"])
    bad_perm = w["perm"].copy()
    bad_perm[0] = spec.in_features
    with pytest.raises(ValueError, match="perm"):
        K.gemm_cpu(torch.zeros(1, spec.in_features), attrs, {**w, "perm": bad_perm})


def test_outlier_index_out_of_range_is_an_error_not_a_crash():
    spec, layer, attrs, weights = _case(CASES[4][1], torch.float32)
    oidx = weights["outlier_indices"].copy()
    oidx[0, 0, 0] = spec.outlier_num_centroids
    with pytest.raises(ValueError, match="outlier_indices"):
        K.gemm_cpu(torch.zeros(1, spec.in_features), attrs, {**weights, "outlier_indices": oidx})


def test_zero_rows():
    spec, layer, attrs, weights = _case(CASES[0][1], torch.float32)
    y = K.gemm_cpu(torch.zeros(0, spec.in_features), attrs, weights)
    assert tuple(y.shape) == (0, spec.out_features)
