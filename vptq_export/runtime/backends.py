"""Open a backend by name: `reference`, `ort-cpu`, `ort-cuda`, `tensorrt`."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import VPTQError
from .backend import Backend

BACKENDS = ("reference", "ort-cpu", "ort-cuda", "tensorrt")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise VPTQError(f"dtype {name!r}: expected one of {', '.join(DTYPES)}") from None


def open_backend(kind: str, *, model: str | os.PathLike | None = None,
                 checkpoint: str | os.PathLike | None = None,
                 engine: str | os.PathLike | None = None,
                 dtype: torch.dtype = torch.float32, device: str = "cpu") -> Backend:
    """`reference` needs `checkpoint` (run in `dtype` on `device`); `ort-*` need `model`
    (model.onnx); `tensorrt` needs `engine` (or builds one from `model`)."""
    if kind == "reference":
        if checkpoint is None:
            raise VPTQError("the reference backend needs the checkpoint directory (--checkpoint)")
        from .reference_backend import ReferenceBackend
        return ReferenceBackend(checkpoint, dtype, device=device)
    if kind in ("ort-cpu", "ort-cuda"):
        if model is None:
            raise VPTQError(f"backend {kind} needs an ONNX model (model.onnx)")
        from .ort_backend import OrtBackend
        return OrtBackend(Path(model), kind)
    if kind == "tensorrt":
        from .trt_backend import TrtBackend
        return TrtBackend(engine=engine, model=model)
    raise VPTQError(f"unknown backend {kind!r} (choose from {', '.join(BACKENDS)})")
