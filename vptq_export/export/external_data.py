"""Stream initializer data into `model.onnx.data`, one tensor (or one block of rows) at a time.

Every initializer larger than `INLINE_LIMIT` bytes is appended to the data file as soon as it is
produced and recorded in the graph as an external-data TensorProto (location / offset / length),
so the ModelProto never holds weight bytes and memory stays flat. Large tensors start at
64 KiB-aligned offsets (the allocation granularity ONNX Runtime needs to mmap external data;
the same rule as onnx's own writer: tensors >= 1 MiB).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch
from onnx import TensorProto

from .options import ONNX_TYPES

INLINE_LIMIT = 1024            # bytes; smaller tensors (shape constants, scalars) stay in the proto
ALIGN_THRESHOLD = 1 << 20
ALIGNMENT = 1 << 16



def as_bytes_view(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A contiguous numpy view of `t` whose bytes are the ONNX raw_data (little-endian)."""
    if isinstance(t, np.ndarray):
        return np.ascontiguousarray(t)
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy()
    return t.numpy()


def onnx_type_of(t: torch.Tensor | np.ndarray) -> int:
    if isinstance(t, np.ndarray):
        return {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
                np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
                np.dtype(np.bool_): TensorProto.BOOL}[t.dtype]
    return ONNX_TYPES[t.dtype]


class ExternalDataWriter:
    """Appends tensor bytes to `data_path`; the TensorProtos reference it as `location`."""

    def __init__(self, data_path: str | os.PathLike, location: str):
        self.location = location
        self._file = open(data_path, "wb")
        self.offset = 0

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def _begin(self, nbytes: int) -> None:
        if nbytes >= ALIGN_THRESHOLD and self.offset % ALIGNMENT:
            pad = ALIGNMENT - self.offset % ALIGNMENT
            self._file.write(b"\0" * pad)
            self.offset += pad

    def _proto(self, name: str, onnx_type: int, dims, start: int, length: int) -> TensorProto:
        proto = TensorProto(name=name, data_type=onnx_type, dims=list(dims),
                            data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.location), ("offset", str(start)),
                           ("length", str(length))):
            entry = proto.external_data.add()
            entry.key, entry.value = key, value
        return proto

    def tensor(self, name: str, value: torch.Tensor | np.ndarray) -> TensorProto:
        """An initializer for `value` (dtype kept): inline when tiny, else appended to the file."""
        arr = as_bytes_view(value)
        onnx_type = onnx_type_of(value)
        if arr.nbytes <= INLINE_LIMIT:
            return TensorProto(name=name, data_type=onnx_type, dims=list(arr.shape),
                               raw_data=arr.tobytes())
        self._begin(arr.nbytes)
        start = self.offset
        self._file.write(memoryview(arr.reshape(-1)).cast("B"))
        self.offset += arr.nbytes
        return self._proto(name, onnx_type, arr.shape, start, arr.nbytes)

    def blocks(self, name: str, blocks: Iterable[torch.Tensor], dims, onnx_type: int,
               nbytes: int) -> TensorProto:
        """An initializer written block by block (leading-dimension slices, already in the final
        dtype); `nbytes` is the total size, known in advance for alignment."""
        self._begin(nbytes)
        start = self.offset
        for block in blocks:
            arr = as_bytes_view(block)
            self._file.write(memoryview(arr.reshape(-1)).cast("B"))
            self.offset += arr.nbytes
        if self.offset - start != nbytes:
            raise RuntimeError(f"initializer {name}: wrote {self.offset - start} bytes, "
                               f"expected {nbytes}")
        return self._proto(name, onnx_type, dims, start, nbytes)
