"""The TensorRT plugin library as a build artifact: built whenever its inputs were there (CUDA
kernels + TensorRT headers), a dynamic plugin library that exports exactly `getCreators` and
`setLoggerFinder`, needs no TensorRT library (headers-only: one binary for TensorRT 10.x and
TensorRT-RTX), and loads on a machine without a GPU.

CI (.ci/run) builds with TensorRT_INCLUDE_DIR from .ci/fetch_trt_headers.sh and nvcc, so there
these tests fail rather than skip if the plugin did not compile.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from vptq_export import native
from vptq_export.errors import BackendUnavailableError

FORBIDDEN_NEEDED = ("libnvinfer", "libtensorrt", "libnvonnxparser", "libnvinfer_plugin")


def _headers_were_given() -> bool:
    inc = os.environ.get("TensorRT_INCLUDE_DIR")
    return bool(inc) and os.path.isfile(os.path.join(inc, "NvInferRuntime.h"))


@pytest.fixture(scope="module")
def plugin_path():
    try:
        return native.trt_plugin_path()
    except BackendUnavailableError as exc:
        report = native.build_report()
        cuda_built = report.get("CUDA kernels", "").startswith("built")
        if _headers_were_given() and cuda_built:
            pytest.fail(f"TensorRT headers were given (TensorRT_INCLUDE_DIR) and the CUDA kernels were built, "
                        f"but the plugin library is missing: {exc}")
        pytest.skip(f"TensorRT plugin library not built: {exc}")


def _readelf(args: list[str], path) -> str:
    tool = shutil.which("readelf")
    if not tool:
        pytest.skip("readelf (binutils) not installed")
    return subprocess.run([tool, *args, str(path)], check=True, capture_output=True, text=True).stdout


def test_build_report_says_built(plugin_path):
    status = native.build_report().get("TensorRT plugin", "")
    if status:   # absent when the library comes from VPTQ_TRT_LIBRARY
        assert status.startswith("built"), status


def test_needs_no_tensorrt_library(plugin_path):
    needed = [line.split("[", 1)[1].rstrip("]") for line in _readelf(["-d"], plugin_path).splitlines()
              if "(NEEDED)" in line]
    assert needed, "no NEEDED entries: not a shared library?"
    bad = [n for n in needed if n.startswith(FORBIDDEN_NEEDED)]
    assert not bad, f"{plugin_path} links TensorRT ({bad}); it must use the headers only"


def test_exports_exactly_the_plugin_library_entry_points(plugin_path):
    symbols = set()
    for line in _readelf(["--dyn-syms", "-W"], plugin_path).splitlines():
        parts = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(parts) >= 8 and parts[4] in ("GLOBAL", "WEAK") and parts[6] != "UND":
            symbols.add(parts[7].split("@")[0])
    assert symbols == {"getCreators", "setLoggerFinder"}, sorted(symbols)


def test_loads_and_lists_the_creator_without_a_gpu(plugin_path):
    from vptq_export.tensorrt.plugin_host import PluginHost
    try:
        host = PluginHost(plugin_path)
    except BackendUnavailableError as exc:
        pytest.skip(f"plugin host not built: {exc}")
    with host:
        info = host.creator_info()
    assert (info["name"], info["version"], info["namespace"]) == ("VPTQGemm", "1", "vptq")
