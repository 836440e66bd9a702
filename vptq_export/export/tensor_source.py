"""Read checkpoint tensors with plain `pread`s, one tensor (or a block of rows) at a time.

The checkpoint reader (`VPTQCheckpoint.tensor`) goes through safetensors' mmap: every page it
touches stays mapped, and resident mapped pages count in the process's RSS until the file is
closed, so an 8B export would show the whole checkpoint as resident. The exporter reads through
this module instead: bytes are copied into private buffers that are freed after each tensor is
written, so peak RSS is one layer (or one block of embedding rows) whatever the model size.
`VPTQCheckpoint` still does all indexing and validation (names, shapes, dtypes from headers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import torch

from ..checkpoint import VPTQCheckpoint, check_index_ranges
from ..errors import CheckpointError
from ..quantized_linear import TENSOR_SUFFIXES, QuantizedLinear



class TensorSource:
    """Tensors of `ckpt` by name, read with pread (no mmap). Close it (or use `with`)."""

    def __init__(self, ckpt: VPTQCheckpoint):
        self.ckpt = ckpt
        self._fds: dict[str, int] = {}
        self._offsets: dict[str, dict[str, tuple[int, int]]] = {}

    def __enter__(self) -> "TensorSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _locate(self, name: str) -> tuple[int, int, int]:
        """(fd, absolute byte offset, byte length) of a tensor's data."""
        info = self.ckpt.tensor_info(name)
        if info.file not in self._offsets:
            fd = os.open(info.file, os.O_RDONLY)
            self._fds[info.file] = fd
            n = int.from_bytes(os.pread(fd, 8, 0), "little")
            header = json.loads(os.pread(fd, n, 8))
            self._offsets[info.file] = {
                key: (8 + n + meta["data_offsets"][0], meta["data_offsets"][1] - meta["data_offsets"][0])
                for key, meta in header.items() if key != "__metadata__"}
        start, length = self._offsets[info.file][name]
        return self._fds[info.file], start, length

    def _read(self, fd: int, offset: int, length: int, what: str) -> bytearray:
        buf = bytearray(length)
        view = memoryview(buf)
        done = 0
        while done < length:
            got = os.preadv(fd, [view[done:]], offset + done)
            if got <= 0:
                raise CheckpointError("unexpected end of file while reading tensor data",
                                      tensor=what, expected=f"{length} bytes", found=f"{done} bytes")
            done += got
        return buf

    def tensor(self, name: str) -> torch.Tensor:
        """The whole tensor (a private copy)."""
        info = self.ckpt.tensor_info(name)
        fd, start, length = self._locate(name)
        if length == 0:
            return torch.empty(info.shape, dtype=info.dtype)
        data = self._read(fd, start, length, name)
        return torch.frombuffer(data, dtype=info.dtype).reshape(info.shape)

    def row_blocks(self, name: str, max_bytes: int = 16 << 20) -> Iterator[torch.Tensor]:
        """Consecutive blocks of leading-dimension rows of a tensor, each at most ~max_bytes."""
        info = self.ckpt.tensor_info(name)
        fd, start, length = self._locate(name)
        rows = info.shape[0] if info.shape else 1
        row_bytes = length // rows if rows else 0
        if rows == 0 or row_bytes == 0:
            yield self.tensor(name)
            return
        per_block = max(1, max_bytes // row_bytes)
        for first in range(0, rows, per_block):
            n = min(per_block, rows - first)
            data = self._read(fd, start + first * row_bytes, n * row_bytes, name)
            yield torch.frombuffer(data, dtype=info.dtype).reshape((n,) + tuple(info.shape[1:]))

    def layer(self, name: str, *, check_ranges: bool = False) -> QuantizedLinear:
        """One VPTQ layer, validated by the checkpoint reader (headers), read with pread."""
        spec = self.ckpt.check_layer(name)
        expected = spec.expected_tensors()
        kwargs = {field: self.tensor(f"{name}.{suffix}")
                  for field, suffix in TENSOR_SUFFIXES.items() if suffix in expected}
        layer = QuantizedLinear(spec=spec, **kwargs)
        if check_ranges:
            check_index_ranges(layer, file=self.ckpt.tensor_info(f"{name}.indices").file)
        return layer
