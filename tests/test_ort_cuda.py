"""libvptq_ort.so on the ONNX Runtime CUDA execution provider (GPU host with onnxruntime-gpu):
single-node VPTQGemm models over the configuration matrix (decode path M <= 8 and prefill path
M = 17, 64) against the PyTorch reference, and whole exported tiny models: parity (`compare`,
fp32 and fp16 exports) and greedy generation with the KV cache kept on the device.

Skipped (with the reason) where the CUDA EP, a GPU or a CUDA build of the op library is missing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vptq_export.errors import BackendUnavailableError
from vptq_export.native import ort_library_path
from vptq_export.reference.dequant import vptq_linear
from vptq_export.synthetic import random_layer

from test_ort_op_cases import CASE_IDS, CASES, TOLERANCE, max_rel_error, single_node_model, spec_for

pytestmark = pytest.mark.gpu

ort = pytest.importorskip("onnxruntime")
if "CUDAExecutionProvider" not in ort.get_available_providers():
    pytest.skip(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install "
                "onnxruntime-gpu on a machine with an NVIDIA GPU)", allow_module_level=True)
if not torch.cuda.is_available():
    pytest.skip("no CUDA device (torch.cuda.is_available() is False)", allow_module_level=True)
try:
    LIB = str(ort_library_path())
except BackendUnavailableError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"ONNX Runtime op library not built: {exc}", allow_module_level=True)


def cuda_session(model: bytes):
    so = ort.SessionOptions()
    so.register_custom_ops_library(LIB)
    sess = ort.InferenceSession(model, so, providers=[("CUDAExecutionProvider", {"use_tf32": "0"})])
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    return sess


def _vptq_node_runs_on_cuda(model: bytes) -> bool:
    """Profile one run and check the VPTQGemm node was placed on the CUDA EP (a CPU fallback
    would silently pass the accuracy checks)."""
    import json

    so = ort.SessionOptions()
    so.register_custom_ops_library(LIB)
    so.enable_profiling = True
    sess = ort.InferenceSession(model, so, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape
    sess.run(None, {"X": np.zeros([d if isinstance(d, int) else 1 for d in shape], np.float32)})
    events = json.load(open(sess.end_profiling()))
    providers = {e["args"].get("provider") for e in events
                 if e.get("cat") == "Node" and e["args"].get("op_name") == "VPTQGemm"}
    return providers == {"CUDAExecutionProvider"}


@pytest.mark.parametrize("kwargs", [c[1] for c in CASES], ids=CASE_IDS)
def test_fp32_matrix_cuda(kwargs):
    spec = spec_for(kwargs)
    layer = random_layer(spec, torch.float32, seed=1)
    sess = cuda_session(single_node_model(spec, layer, torch.float32))
    for m in (1, 3, 8, 17, 64):  # M <= 8: fused decode GEMV; larger: dequant + GEMM
        x = torch.randn(m, spec.in_features)
        y = sess.run(None, {"X": x.numpy()})[0]
        assert y.shape == (m, spec.out_features)
        # fp32 tolerance (test_ort_op_cases.TOLERANCE): summation order only
        assert max_rel_error(torch.from_numpy(y), vptq_linear(x, layer)) <= TOLERANCE[torch.float32], m


@pytest.mark.parametrize("kwargs", [c[1] for c in CASES], ids=CASE_IDS)
def test_fp16_matrix_cuda(kwargs):
    spec = spec_for(kwargs)
    layer = random_layer(spec, torch.float16, seed=2)
    sess = cuda_session(single_node_model(spec, layer, torch.float16, x_rank=3))
    for m in (1, 5, 40):
        x = torch.randn(1, m, spec.in_features).half()
        y = sess.run(None, {"X": x.numpy()})[0]
        assert y.dtype == np.float16
        ref32 = vptq_linear(x.float(), layer)
        # one fp16 ulp of max |ref| (output rounding) + fp32 summation-order differences; the
        # prefill path also rounds the dequantized W to fp16 before the GEMM (exact: the
        # reference W is a sum/product of fp16 values rounded once, within one more ulp)
        assert max_rel_error(torch.from_numpy(y).float(), ref32) <= 2 * TOLERANCE[torch.float16], m


def test_vptq_node_is_placed_on_cuda():
    spec = spec_for(CASES[4][1])
    layer = random_layer(spec, torch.float32, seed=3)
    assert _vptq_node_runs_on_cuda(single_node_model(spec, layer, torch.float32))


# ----------------------------------------------------------------------------- whole models
@pytest.fixture(scope="module")
def cuda_exports(tiny_vptq_checkpoint, tmp_path_factory):
    from vptq_export.export import ExportOptions, export_model

    ckpt = tiny_vptq_checkpoint("llama", vector_len=4, centroids=64, res_centroids=16, perm=True,
                                norm=True)
    out = {}
    for dtype in ("float32", "float16"):
        path = tmp_path_factory.mktemp(f"cuda-{dtype}") / "model.onnx"
        export_model(ckpt, path, ExportOptions(dtype=dtype, progress=False))
        out[dtype] = path
    return ckpt, out


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_whole_model_parity_cuda(cuda_exports, dtype):
    from vptq_export.runtime.compare import compare_model

    ckpt, models = cuda_exports
    report = compare_model(models[dtype], ckpt, backend="ort-cuda", steps=8)
    print(report.table(per_step=False))
    # tolerances per export dtype: vptq_export/runtime/tolerances.py (docs/runtime.md)
    assert report.passed, report.failures


def test_greedy_generation_cuda_matches_reference(cuda_exports):
    from vptq_export.runtime.backends import open_backend
    from vptq_export.runtime.generate import generate
    from vptq_export.runtime.reference_backend import ReferenceBackend

    ckpt, models = cuda_exports
    prompts = [[55, 260, 224, 84, 88], [100, 101], [7, 30, 31, 200, 201, 202, 17]]
    ref = generate(ReferenceBackend(ckpt, torch.float32), prompts, max_new_tokens=12)
    backend = open_backend("ort-cuda", model=models["float32"])
    try:
        got = generate(backend, prompts, max_new_tokens=12)
    finally:
        backend.close()
    assert got.tokens == ref.tokens


# A fresh interpreter: the library must be loaded, released and loaded again in one process.
_RELOAD_SCRIPT = r"""
import gc, sys
import numpy as np, onnxruntime as ort, torch
sys.path.insert(0, sys.argv[2])
from test_ort_op_cases import CASES, single_node_model, spec_for
from vptq_export.reference.dequant import vptq_linear
from vptq_export.synthetic import random_layer
lib = sys.argv[1]
spec = spec_for(CASES[0][1])
layer = random_layer(spec, torch.float32, seed=3)
model = single_node_model(spec, layer, torch.float32)
x = torch.randn(2, spec.in_features)
for providers in (["CPUExecutionProvider"], [("CUDAExecutionProvider", {"use_tf32": "0"})]):
    so = ort.SessionOptions()
    so.register_custom_ops_library(lib)
    sess = ort.InferenceSession(model, so, providers=providers)
    y = torch.from_numpy(sess.run(None, {"X": x.numpy()})[0])
    ref = vptq_linear(x.double(), layer).float()
    err = float((y - ref).abs().max() / ref.abs().max())
    print(providers[0] if isinstance(providers[0], str) else providers[0][0], err, flush=True)
    assert err < 1e-5, err
    del sess, so
    gc.collect()      # ORT unloads the library with the last session options that registered it
"""


def test_cpu_session_then_cuda_session_in_one_process(tmp_path):
    """Regression: a CPU-EP session, released, then a CUDA-EP session in the same process. ORT
    unloads and reloads the op library in between; before libvptq_ort.so was linked with
    -z nodelete the reloaded library's kernels failed with 'device kernel image is invalid' (or
    the process crashed)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "reload.py"
    script.write_text(_RELOAD_SCRIPT)
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, str(script), LIB, tests_dir], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "CUDAExecutionProvider" in proc.stdout, proc.stdout
