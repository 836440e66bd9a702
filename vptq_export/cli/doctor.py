"""`vptq-export doctor`: what this installation can run, and why not.

Native parts (build report), ONNX Runtime (version, execution providers, whether our op library
loads), CUDA GPU visibility, TensorRT / TensorRT-RTX Python modules, polygraphy.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess


def _module_version(name: str) -> str | None:
    try:
        mod = importlib.import_module(name)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "installed"))


def _holds_plugin_v3_layers(name: str) -> bool:
    """Whether a TensorRT Python module's networks can hold IPluginV3 layers (TensorRT-RTX 1.7's
    INetworkDefinition has no add_plugin_v3)."""
    network = getattr(importlib.import_module(name), "INetworkDefinition", None)
    return network is not None and hasattr(network, "add_plugin_v3")


def _gpu() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return f"yes ({torch.cuda.get_device_name(0)}, torch {torch.__version__})"
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout.strip()
            if out:
                return f"yes (nvidia-smi: {out.splitlines()[0]})"
        except Exception:
            pass
    return "no CUDA GPU visible"


def diagnose() -> list[tuple[str, str]]:
    """(item, status) pairs; the Python API behind `vptq-export doctor`."""
    from .. import native
    rows: list[tuple[str, str]] = []
    report = native.build_report()
    if report:
        rows += [(f"build: {name}", status) for name, status in report.items()]
    else:
        rows.append(("build report", f"missing ({native.build_report_path()}); the package was "
                                     f"not built with its native parts: {native.BUILD_HINT}"))
    try:
        k = native.kernels_module()
        rows.append(("module vptq_export._kernels", "imports" + (" (CPU + CUDA)" if k.has_cuda else " (CPU)")))
    except Exception as exc:
        rows.append(("module vptq_export._kernels", f"unavailable: {exc}"))
    try:
        import onnxruntime as ort
        rows.append(("onnxruntime", f"{ort.__version__}; providers: {', '.join(ort.get_available_providers())}"))
        try:
            from ..ort_session import session_options
            session_options()
            rows.append(("op library libvptq_ort.so", f"loads ({native.ort_library_path()})"))
        except Exception as exc:
            rows.append(("op library libvptq_ort.so", f"unavailable: {exc}"))
    except ImportError:
        rows.append(("onnxruntime", "not installed"))
    rows.append(("CUDA GPU", _gpu()))
    try:
        rows.append(("TensorRT plugin libvptq_trt.so", f"built ({native.trt_plugin_path()})"))
    except Exception as exc:
        rows.append(("TensorRT plugin libvptq_trt.so", f"unavailable: {exc}"))
    for mod, label in (("tensorrt", "TensorRT (tensorrt)"), ("tensorrt_rtx", "TensorRT-RTX (tensorrt_rtx)"),
                       ("tensorrt_rtx_bindings", "TensorRT-RTX (tensorrt_rtx_bindings)"),
                       ("polygraphy", "polygraphy"), ("onnxruntime_genai", "onnxruntime-genai")):
        version = _module_version(mod)
        if version and mod.startswith("tensorrt") and not _holds_plugin_v3_layers(mod):
            version += ("; cannot hold IPluginV3 layers, so no VPTQGemm engine can be built with it "
                        "(docs/tensorrt.md)")
        rows.append((label, version if version else "not importable"))
    return rows


def run(args) -> int:
    rows = diagnose()
    width = max(len(item) for item, _ in rows)
    for item, status in rows:
        print(f"{item:<{width}}  {status}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="show which backends this installation can run, and why not",
                              description=__doc__)
    p.set_defaults(func=run)
