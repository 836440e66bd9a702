"""ONNX Runtime sessions for models with `vptq.VPTQGemm` nodes: registers our op library
(libvptq_ort.so) and picks the execution providers.

    sess = create_session("model.onnx", providers="cpu")          # CPU EP
    sess = create_session("model.onnx", providers="cuda")         # CUDA EP (onnxruntime-gpu)
"""

from __future__ import annotations

from pathlib import Path

from .errors import BackendUnavailableError
from .native import ort_library_path

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    # CPU stays listed as the fallback ORT uses for nodes without a CUDA kernel (shape ops).
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        raise BackendUnavailableError(f"onnxruntime is not installed: {exc}") from exc
    return onnxruntime


def session_options(threads: int | None = None):
    """SessionOptions with the VPTQGemm op library registered (`threads`: intra-op threads)."""
    ort = _ort()
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = int(threads)
    lib = ort_library_path()
    try:
        so.register_custom_ops_library(str(lib))
    except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
        raise BackendUnavailableError(
            f"onnxruntime {ort.__version__} refused the op library {lib}: {exc}") from exc
    return so


def create_session(model_path: str | Path | bytes, providers: str = "cpu", threads: int | None = None,
                   *, tf32: bool = False):
    """An onnxruntime.InferenceSession for `model_path` (a path or serialized model bytes) with
    the VPTQGemm op library registered. `providers`: "cpu" or "cuda"; `tf32`: let the CUDA EP
    run fp32 MatMul/Gemm in TF32 (faster, ~1e-3 relative error; off by default)."""
    ort = _ort()
    if providers not in PROVIDERS:
        raise ValueError(f"providers must be one of {', '.join(PROVIDERS)}, got {providers!r}")
    wanted = PROVIDERS[providers]
    available = ort.get_available_providers()
    if wanted[0] not in available:
        raise BackendUnavailableError(
            f"{wanted[0]} is not available in onnxruntime {ort.__version__} (available: "
            f"{', '.join(available)}); for CUDA install onnxruntime-gpu (and uninstall the CPU "
            f"onnxruntime package) on a machine with an NVIDIA GPU")
    so = session_options(threads)
    model = model_path if isinstance(model_path, bytes) else str(model_path)
    providers_arg = list(wanted)
    if providers == "cuda":
        # TF32 off: ORT's CUDA EP runs fp32 MatMul/Gemm in TF32 by default (10-bit mantissa),
        # which alone breaks fp32 parity (~2e-4 relative on the tiny models); fp16/bf16 exports
        # are unaffected.
        providers_arg[0] = ("CUDAExecutionProvider", {"use_tf32": "1" if tf32 else "0"})
    session = ort.InferenceSession(model, so, providers=providers_arg)
    if providers == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise BackendUnavailableError(
            "onnxruntime could not start the CUDA execution provider (check the CUDA / cuDNN "
            f"libraries onnxruntime-gpu {ort.__version__} needs); session providers: "
            f"{session.get_providers()}")
    return session
