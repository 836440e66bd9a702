"""Helpers (no tests) shared by the GPU tests: the CUDA build of the Python module and the
TensorRT plugin host, each skipping the calling test with the reason when it is missing."""

from __future__ import annotations

import pytest
import torch

from vptq_export import native
from vptq_export.errors import BackendUnavailableError


def cuda_kernels_module(require_device: bool = True):
    """vptq_export._kernels with its CUDA kernels (and, with require_device, a CUDA device to run
    them on), else skip."""
    if require_device and not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    try:
        mod = native.kernels_module()
    except BackendUnavailableError as exc:
        pytest.skip(f"vptq_export._kernels not built: {exc}")
    if not getattr(mod, "has_cuda", False):
        pytest.skip("vptq_export._kernels was built without the CUDA kernels (no nvcc at build time)")
    return mod


def plugin_host():
    """A PluginHost (vptq_export.tensorrt.plugin_host) on the built plugin library, else skip."""
    from vptq_export.tensorrt.plugin_host import PluginHost

    try:
        return PluginHost()
    except BackendUnavailableError as exc:
        pytest.skip(f"TensorRT plugin library not available: {exc}")
