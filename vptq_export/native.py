"""Where the compiled parts of vptq-export are, and a clear error when one is missing.

`pip install .` builds, as far as the machine allows (see `vptq-export doctor`):
  vptq_export/_kernels*.so        pybind11 module (CPU kernels; CUDA ones when nvcc was found)
  vptq_export/lib/libvptq_ort.so  ONNX Runtime custom-op library (needs ORT headers at build time)
  vptq_export/lib/libvptq_trt.so  TensorRT plugin library (needs CUDA + TensorRT headers)
  vptq_export/lib/build_report.txt  one line per component: built, or why not
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from .errors import BackendUnavailableError

PACKAGE_DIR = Path(__file__).resolve().parent
LIB_DIR = PACKAGE_DIR / "lib"

# Environment overrides (a library built elsewhere, e.g. by plain cmake into build/).
ORT_LIBRARY_ENV = "VPTQ_ORT_LIBRARY"
TRT_LIBRARY_ENV = "VPTQ_TRT_LIBRARY"

BUILD_HINT = ("build it with `pip install .` from the source tree (or `pip install -e . "
              "--no-build-isolation`); `vptq-export doctor` shows what was built and why not")


def build_report_path() -> Path:
    return LIB_DIR / "build_report.txt"


def build_report() -> dict[str, str]:
    """{component: status} from the build's report ({} when the package was not built)."""
    path = build_report_path()
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            name, _, status = line.partition(":")
            out[name.strip()] = status.strip()
    return out


def _library(env: str, filename: str, component: str) -> Path:
    override = os.environ.get(env)
    if override:
        path = Path(override)
        if not path.is_file():
            raise BackendUnavailableError(f"{env}={override}: no such file")
        return path
    path = LIB_DIR / filename
    if path.is_file():
        return path
    why = build_report().get(component)
    reason = f" (build report: {why})" if why else ""
    raise BackendUnavailableError(f"{component} {path} is not built{reason}; {BUILD_HINT}")


def ort_library_path() -> Path:
    """Path of libvptq_ort.so (the ONNX Runtime custom-op library registering vptq.VPTQGemm)."""
    return _library(ORT_LIBRARY_ENV, "libvptq_ort.so", "ONNX Runtime op library")


def trt_plugin_path() -> Path:
    """Path of libvptq_trt.so (the TensorRT plugin library)."""
    return _library(TRT_LIBRARY_ENV, "libvptq_trt.so", "TensorRT plugin")


def has_ort_library() -> bool:
    try:
        ort_library_path()
        return True
    except BackendUnavailableError:
        return False


def kernels_module():
    """The pybind11 module vptq_export._kernels (gemm_cpu, validate, CUDA functions when built)."""
    try:
        return importlib.import_module("vptq_export._kernels")
    except ImportError as exc:
        why = build_report().get("Python module _kernels")
        reason = f" (build report: {why})" if why else ""
        raise BackendUnavailableError(
            f"the native module vptq_export._kernels is not available: {exc}{reason}; "
            f"{BUILD_HINT}") from exc


def has_kernels_module() -> bool:
    try:
        kernels_module()
        return True
    except BackendUnavailableError:
        return False
