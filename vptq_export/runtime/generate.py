"""The generation loop, the same for every backend: left-padded batch prefill, then one token per
step with the KV cache kept by the backend (on its device) between steps.

    result = generate(backend, [[1, 5, 9], [1, 7]], max_new_tokens=16,
                      sampling=SamplingConfig(temperature=0.8, top_p=0.9, seed=0),
                      stop_tokens={2}, streamer=lambda tokens: print(tokens))
    result.tokens      # new tokens per prompt (a stop token, when hit, is the last one)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from .backend import Backend
from .batching import left_pad
from .sampling import SamplingConfig, select_next

# streamer(new_tokens): one entry per prompt, None for a prompt that had already finished.
Streamer = Callable[[list[int | None]], None]


@dataclass
class GenerationResult:
    tokens: list[list[int]]             # generated tokens per prompt
    finish_reasons: list[str]           # "stop" (a stop token) or "length" (max_new_tokens)
    prompt_lengths: list[int]
    ttft_s: float                       # prefill + first token selection
    step_times_s: list[float] = field(default_factory=list)   # each later decode step
    step_logits: list[torch.Tensor] | None = None   # [batch, vocab] float32 per step, if recorded

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens per second per sequence over the decode steps (after the first token)."""
        total = sum(self.step_times_s)
        return len(self.step_times_s) / total if total > 0 else float("nan")


def generate(backend: Backend, prompts: Sequence[Sequence[int]], *, max_new_tokens: int = 32,
             sampling: SamplingConfig = SamplingConfig(), stop_tokens: Iterable[int] = (),
             pad_token_id: int = 0, streamer: Streamer | None = None,
             record_logits: bool = False) -> GenerationResult:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    batch = left_pad(prompts, pad_token_id)
    n = len(batch.lengths)
    stop = torch.tensor(sorted({int(t) for t in stop_tokens}), dtype=torch.int64)
    generator = sampling.generator()

    tokens: list[list[int]] = [[] for _ in range(n)]
    reasons = ["length"] * n
    finished = torch.zeros(n, dtype=torch.bool)
    recorded: list[torch.Tensor] | None = [] if record_logits else None
    step_times: list[float] = []

    t0 = time.perf_counter()
    mask = batch.attention_mask
    out = backend.forward(batch.input_ids, mask, batch.position_ids, backend.new_cache(n),
                          last_only=True)
    next_pos = batch.position_ids[:, -1:] + 1
    ttft = None
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :]
        if recorded is not None:
            recorded.append(logits.clone())
        new = select_next(logits, sampling, generator)
        new = torch.where(finished, torch.full_like(new, pad_token_id), new)
        emitted: list[int | None] = []
        for row in range(n):
            if finished[row]:
                emitted.append(None)
                continue
            tok = int(new[row])
            tokens[row].append(tok)
            emitted.append(tok)
            if stop.numel() and bool((stop == tok).any()):
                finished[row] = True
                reasons[row] = "stop"
        now = time.perf_counter()
        if ttft is None:
            ttft = now - t0
        else:
            step_times.append(now - t0)
        if streamer is not None:
            streamer(emitted)
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        t0 = time.perf_counter()
        mask = torch.cat([mask, torch.ones((n, 1), dtype=torch.int64)], dim=1)
        out = backend.forward(new.unsqueeze(1), mask, next_pos, out.cache, last_only=True)
        next_pos = next_pos + 1
    return GenerationResult(tokens=tokens, finish_reasons=reasons, prompt_lengths=batch.lengths,
                            ttft_s=float(ttft), step_times_s=step_times, step_logits=recorded)
