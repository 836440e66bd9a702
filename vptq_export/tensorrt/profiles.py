"""Optimization-profile shapes for an exported decoder's inputs (io_spec names):

    input_ids, position_ids          [batch, seq]
    attention_mask                   [batch, past + seq]
    past_key_values.{i}.key|value    [batch, kv_heads, past, head_dim]

Fixed dimensions (kv_heads, head_dim) come from the network; the dynamic ones from the limits.
Any other input with a dynamic dimension is an error that names it (we would have to guess).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import VPTQError
from ..export.io_spec import ATTENTION_MASK, INPUT_IDS, POSITION_IDS

_PAST = re.compile(r"^past_key_values\.\d+\.(key|value)$")

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ProfileLimits:
    max_batch: int = 1
    max_seq: int = 512        # new tokens per step (prefill length)
    max_past: int = 512       # cached positions
    opt_batch: int = 1
    opt_seq: int = 1          # tune for decode, the step that runs most often
    opt_past: int | None = None  # default: max_past // 2

    def check(self) -> None:
        for name in ("max_batch", "max_seq", "opt_batch", "opt_seq"):
            if getattr(self, name) < 1:
                raise VPTQError(f"profile: {name} must be >= 1, found {getattr(self, name)}")
        if self.max_past < 0:
            raise VPTQError(f"profile: max_past must be >= 0, found {self.max_past}")
        if self.opt_batch > self.max_batch or self.opt_seq > self.max_seq:
            raise VPTQError("profile: opt_batch / opt_seq must not exceed max_batch / max_seq")


def input_profile(name: str, shape: Shape, limits: ProfileLimits) -> tuple[Shape, Shape, Shape]:
    """(min, opt, max) for network input `name` whose declared shape is `shape` (-1 = dynamic)."""
    lim = limits
    opt_past = lim.max_past // 2 if lim.opt_past is None else lim.opt_past
    if name in (INPUT_IDS, POSITION_IDS):
        dims = [(1, lim.opt_batch, lim.max_batch), (1, lim.opt_seq, lim.max_seq)]
    elif name == ATTENTION_MASK:
        dims = [(1, lim.opt_batch, lim.max_batch), (1, opt_past + lim.opt_seq, lim.max_past + lim.max_seq)]
    elif _PAST.match(name):
        if len(shape) != 4:
            raise VPTQError(f"input {name}: expected [batch, kv_heads, past, head_dim], found shape {shape}")
        dims = [(1, lim.opt_batch, lim.max_batch), None, (0, opt_past, lim.max_past), None]
    elif all(d >= 0 for d in shape):
        return tuple(shape), tuple(shape), tuple(shape)
    else:
        raise VPTQError(f"input {name} has dynamic shape {shape} and is not one of the exported decoder "
                        f"inputs ({INPUT_IDS}, {ATTENTION_MASK}, {POSITION_IDS}, past_key_values.N.key|value); "
                        f"no optimization profile can be chosen for it")
    if len(shape) != len(dims):
        raise VPTQError(f"input {name}: expected rank {len(dims)}, found shape {shape}")
    lo, opt, hi = [], [], []
    for axis, (d, rule) in enumerate(zip(shape, dims)):
        if rule is None or d >= 0:
            if d < 0:
                raise VPTQError(f"input {name}: dimension {axis} must be fixed in the model, found dynamic")
            lo.append(d), opt.append(d), hi.append(d)
        else:
            lo.append(rule[0]), opt.append(rule[1]), hi.append(rule[2])
    return tuple(lo), tuple(opt), tuple(hi)
