"""A batch of prompts of different lengths as one left-padded batch.

Left padding keeps every row's last prompt token in the last column, so one decode step appends
one column for all rows. `attention_mask` marks real tokens (1) and padding (0); `position_ids`
count real tokens only (`cumsum(mask) - 1`), so a padded row sees the same positions, hence the
same RoPE angles, as the prompt alone. Padding positions get position 0 (their outputs are never
used and they are masked out as keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class PaddedBatch:
    input_ids: torch.Tensor         # int64 [batch, max_len]
    attention_mask: torch.Tensor    # int64 [batch, max_len]
    position_ids: torch.Tensor      # int64 [batch, max_len]
    lengths: list[int]              # real tokens per row


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """position_ids for a (left-)padded mask: number of real tokens before each one."""
    mask = attention_mask.to(torch.int64)
    return ((mask.cumsum(-1) - 1) * mask).clamp_(min=0)


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int = 0) -> PaddedBatch:
    if not prompts:
        raise ValueError("no prompts")
    lengths = [len(p) for p in prompts]
    if min(lengths) == 0:
        raise ValueError(f"prompt {lengths.index(0)} is empty (every prompt needs at least one token)")
    width = max(lengths)
    ids = torch.full((len(prompts), width), int(pad_token_id), dtype=torch.int64)
    mask = torch.zeros((len(prompts), width), dtype=torch.int64)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.as_tensor(list(prompt), dtype=torch.int64)
        mask[row, width - len(prompt):] = 1
    return PaddedBatch(ids, mask, positions_from_mask(mask), lengths)
