"""Which TensorRT Python module to use: TensorRT 10.x (`import tensorrt`, datacenter GPUs) or
TensorRT-RTX (`import tensorrt_rtx`, or `tensorrt_rtx_bindings` when only the bindings wheel is
installed; GeForce / RTX cards). Both expose the same API for what we use (Builder, OnnxParser,
the plugin registry, Runtime, IExecutionContext); the differences are recorded on the returned
object so that callers never test module names themselves.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import BackendUnavailableError

# Backend name -> Python modules that provide it, tried in order.
BACKENDS: dict[str, tuple[str, ...]] = {
    "tensorrt": ("tensorrt",),
    "tensorrt-rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings"),
}

INSTALL_HINT = {
    "tensorrt": "pip install tensorrt (TensorRT 10.x wheels come from NVIDIA's index, "
                "https://pypi.nvidia.com), or use --backend tensorrt-rtx",
    "tensorrt-rtx": "pip install tensorrt-rtx (or the wheels tensorrt-rtx-cu13-libs and "
                    "tensorrt-rtx-cu13-bindings)",
}


@dataclass(frozen=True)
class TensorRTBackend:
    name: str               # "tensorrt" or "tensorrt-rtx"
    module: ModuleType      # the imported module (trt)
    module_name: str
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt-rtx"

    @property
    def strongly_typed_only(self) -> bool:
        """TensorRT-RTX builds only strongly typed networks (no FP16/BF16 builder flags)."""
        return self.is_rtx or not hasattr(self.module.BuilderFlag, "FP16")

    def describe(self) -> str:
        return f"{self.name} {self.version} (Python module {self.module_name})"


def _import(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def load_backend(name: str | None = None) -> TensorRTBackend:
    """The backend `name` ("tensorrt" / "tensorrt-rtx"), or, when None, the first one installed
    (TensorRT first). Raises BackendUnavailableError saying what to install."""
    if name is not None and name not in BACKENDS:
        raise BackendUnavailableError(f"unknown TensorRT backend {name!r} (choose from {', '.join(BACKENDS)})")
    candidates = [name] if name else list(BACKENDS)
    tried = []
    for backend in candidates:
        for module_name in BACKENDS[backend]:
            module = _import(module_name)
            tried.append(module_name)
            if module is not None and hasattr(module, "Builder"):
                return TensorRTBackend(backend, module, module_name, getattr(module, "__version__", "unknown"))
    hints = "; ".join(f"{b}: {INSTALL_HINT[b]}" for b in candidates)
    raise BackendUnavailableError(
        f"no TensorRT Python module found (tried {', '.join(tried)}). Install one: {hints}")
