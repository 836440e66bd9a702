"""The runtime's backend interface: one forward step of a causal LM with a KV cache, in the
exported model's I/O contract (ORT GenAI naming, see docs/runtime.md).

    cache = backend.new_cache(batch)
    step = backend.forward(input_ids, attention_mask, position_ids, cache)
    step.logits        # torch.float32 on the CPU, [batch, seq, vocab] (or [batch, 1, vocab])
    cache = step.cache  # the KV cache after this step (past + seq positions), owned by the backend

`input_ids` and `position_ids` are int64 [batch, seq]; `attention_mask` is int64
[batch, past + seq] (1 = real token, 0 = padding). The cache is opaque to the caller: each backend
keeps it where it computes (a DynamicCache for PyTorch, OrtValues on the execution provider's
device for ONNX Runtime), so a decode step moves only token ids in and one row of logits out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ModelIO:
    """What a backend's model looks like from outside."""
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    dtype: torch.dtype          # dtype of the KV cache and logits (the export dtype)


class KVCache(ABC):
    """A backend's KV cache after some steps."""

    @property
    @abstractmethod
    def past_length(self) -> int:
        """Positions held (the `past_seq` dimension)."""

    @abstractmethod
    def to_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(key, value) per layer as float32 host arrays [batch, kv_heads, past, head_dim]
        (a copy; for comparisons and tests, not for the decode loop)."""


@dataclass
class StepOutput:
    logits: torch.Tensor        # float32, CPU
    cache: KVCache


class Backend(ABC):
    """One model on one execution target."""

    name: str = "backend"
    io: ModelIO

    @abstractmethod
    def new_cache(self, batch_size: int) -> KVCache:
        """An empty cache (past_length 0) for `batch_size` sequences."""

    @abstractmethod
    def cache_from_arrays(self, arrays: list[tuple[np.ndarray, np.ndarray]]) -> KVCache:
        """A cache holding the given (key, value) per layer (any float dtype; cast to the
        backend's). Lets two backends start a step from identical state."""

    @abstractmethod
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor, cache: KVCache, *,
                last_only: bool = False) -> StepOutput:
        """Run `seq` new positions. `last_only=True` returns logits of the last position only
        ([batch, 1, vocab]), which saves copying [batch, seq, vocab] to the host on prefill."""

    def close(self) -> None:
        """Release sessions / engines (optional)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def as_int64(x, name: str) -> torch.Tensor:
    """Token ids / masks / positions as a contiguous int64 CPU tensor [batch, n]."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D [batch, n], got shape {tuple(t.shape)}")
    return t.to(device="cpu", dtype=torch.int64).contiguous()


def check_step_shapes(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      position_ids: torch.Tensor, past_length: int) -> None:
    b, s = input_ids.shape
    if tuple(position_ids.shape) != (b, s):
        raise ValueError(f"position_ids shape {tuple(position_ids.shape)} != input_ids shape {(b, s)}")
    if tuple(attention_mask.shape) != (b, past_length + s):
        raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)}, expected "
                         f"[batch, past + seq] = {(b, past_length + s)}")
