"""vptq_export.native / ort_session / `vptq-export doctor`: library discovery, clear errors when a
part is missing, provider selection."""

from __future__ import annotations

import pytest

from vptq_export import native
from vptq_export.cli import main as cli_main
from vptq_export.errors import BackendUnavailableError


def test_missing_library_error_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "LIB_DIR", tmp_path)
    monkeypatch.delenv(native.ORT_LIBRARY_ENV, raising=False)
    (tmp_path / "build_report.txt").write_text("ONNX Runtime op library: not built: headers not found\n")
    with pytest.raises(BackendUnavailableError, match="not built.*headers not found.*pip install"):
        native.ort_library_path()
    assert native.build_report() == {"ONNX Runtime op library": "not built: headers not found"}
    assert not native.has_ort_library()


def test_env_override(tmp_path, monkeypatch):
    lib = tmp_path / "libvptq_ort.so"
    monkeypatch.setenv(native.ORT_LIBRARY_ENV, str(lib))
    with pytest.raises(BackendUnavailableError, match="no such file"):
        native.ort_library_path()
    lib.write_bytes(b"")
    assert native.ort_library_path() == lib


def test_kernels_module_missing(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "vptq_export._kernels":
            raise ImportError("No module named 'vptq_export._kernels'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(BackendUnavailableError, match="_kernels.*pip install"):
        native.kernels_module()


def test_create_session_rejects_unknown_and_unavailable_providers(monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from vptq_export import ort_session
    with pytest.raises(ValueError, match="cpu"):
        ort_session.create_session(b"", providers="tpu")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider is not available"):
        ort_session.create_session(b"", providers="cuda")


def test_create_session_runs_a_vptq_model():
    pytest.importorskip("onnxruntime")
    if not native.has_ort_library():
        pytest.skip("ONNX Runtime op library not built")
    import numpy as np
    import torch

    from test_ort_op_cases import CASES, single_node_model, spec_for
    from vptq_export.ort_session import create_session
    from vptq_export.reference.dequant import vptq_linear
    from vptq_export.synthetic import random_layer

    spec = spec_for(CASES[0][1])
    layer = random_layer(spec, torch.float32)
    sess = create_session(single_node_model(spec, layer, torch.float32), providers="cpu", threads=1)
    x = np.ones((2, spec.in_features), np.float32)
    np.testing.assert_allclose(sess.run(None, {"X": x})[0],
                               vptq_linear(torch.from_numpy(x), layer).numpy(), rtol=1e-5, atol=1e-6)


def test_doctor_runs(capsys):
    assert cli_main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "CUDA GPU" in out and "polygraphy" in out


@pytest.mark.parametrize("which", ["ort", "trt"])
def test_libraries_are_never_unloaded(which):
    """libvptq_ort.so / libvptq_trt.so carry DF_1_NODELETE (-z nodelete): hosts dlclose them
    (ORT when the last session options that registered the library go away) and a reload left
    stale CUDA kernel registrations (tests/test_ort_cuda.py reproduces that on a GPU)."""
    import shutil
    import subprocess

    finder = {"ort": native.ort_library_path, "trt": native.trt_plugin_path}[which]
    try:
        lib = finder()
    except BackendUnavailableError as exc:
        pytest.skip(f"library not built: {exc}")
    readelf = shutil.which("readelf")
    if not readelf:
        pytest.skip("readelf (binutils) not installed")
    dynamic = subprocess.run([readelf, "-d", str(lib)], capture_output=True, text=True, check=True).stdout
    flags = [line for line in dynamic.splitlines() if "FLAGS_1" in line]
    assert flags and "NODELETE" in flags[0], f"{lib}: no NODELETE in its dynamic section:\n{dynamic}"


def test_doctor_flags_a_tensorrt_without_plugin_v3_layers(monkeypatch):
    """A TensorRT module whose INetworkDefinition lacks add_plugin_v3 (TensorRT-RTX 1.7) is listed
    as importable but unable to build VPTQGemm engines; one with it is listed plainly."""
    import sys
    import types

    from vptq_export.cli import doctor

    rtx = types.ModuleType("tensorrt_rtx")
    rtx.__version__ = "1.7.1.116"
    rtx.INetworkDefinition = type("INetworkDefinition", (), {})
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.14.1"
    trt.INetworkDefinition = type("INetworkDefinition", (), {"add_plugin_v3": lambda self: None})
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", rtx)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    rows = dict(doctor.diagnose())
    assert rows["TensorRT-RTX (tensorrt_rtx)"].startswith("1.7.1.116; cannot hold IPluginV3 layers")
    assert rows["TensorRT (tensorrt)"] == "10.14.1"
