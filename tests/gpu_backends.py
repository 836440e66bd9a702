"""Helpers (no tests) shared by the GPU tests: the CUDA build of the Python module and the
TensorRT plugin host, each skipping the calling test with the reason when it is missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vptq_export import native
from vptq_export.errors import BackendUnavailableError
from vptq_export.op_spec import op_weight_inputs


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


def device_weights(layer, dtype) -> dict:
    """The layer's VPTQGemm weight inputs (op_spec.op_weight_inputs, node order) as contiguous CUDA
    tensors, by input name."""
    out = {}
    for name, value in op_weight_inputs(layer, dtype).items():
        t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
        out[name] = t.contiguous().cuda()
    return out
