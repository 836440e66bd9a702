"""`ExportOptions`: what `export_model` / `export_layer` may be asked to do, and the dtype names."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from onnx import TensorProto

from ..errors import VPTQError

# Export dtype names (CLI --dtype) -> torch dtype and ONNX element type.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ONNX_TYPES = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
              torch.bfloat16: TensorProto.BFLOAT16, torch.int64: TensorProto.INT64,
              torch.int32: TensorProto.INT32, torch.bool: TensorProto.BOOL}

# float32 by default: it runs on every ONNX Runtime EP (the CPU EP has few fp16 and almost no
# bf16 kernels), matches the fp32 reference exactly, and fp16 checkpoint codebooks widen to it
# without rounding. GPU deployments pass --dtype float16 (half the embedding / lm_head bytes).
DEFAULT_DTYPE = "float32"


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise VPTQError(f"export dtype {dtype} is not supported (float32, float16, bfloat16)")
        return dtype
    try:
        return DTYPES[str(dtype).replace("torch.", "")]
    except KeyError:
        raise VPTQError(f"export dtype {dtype!r} is not one of {', '.join(DTYPES)}") from None


@dataclass(frozen=True)
class ExportOptions:
    dtype: str | torch.dtype = DEFAULT_DTYPE
    """Activation / codebook / embedding dtype of the exported graph."""
    check_indices: bool = False
    """Decode every index and check it against the codebook size and perm (slower)."""
    progress: bool = True
    """tqdm bar per decoder layer."""
    validate: bool = True
    """Run onnx.checker (full: strict shape inference) on the result before publishing it."""

    @property
    def torch_dtype(self) -> torch.dtype:
        return parse_dtype(self.dtype)

    @property
    def onnx_dtype(self) -> int:
        return ONNX_TYPES[self.torch_dtype]
