"""Next-token selection: greedy, or sampling with temperature, top-k and top-p (nucleus),
reproducible through a seeded torch.Generator.

Order of operations (the same as transformers' `generate`): logits / temperature, then top-k,
then top-p on the tempered distribution, then one multinomial draw per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.0        # 0 = greedy (argmax)
    top_k: int = 0                  # 0 = no top-k filter
    top_p: float = 1.0              # 1 = no nucleus filter
    seed: int | None = None         # seeds the generator when sampling

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def generator(self) -> torch.Generator | None:
        if self.greedy:
            return None
        g = torch.Generator(device="cpu")
        if self.seed is None:
            g.seed()
        else:
            g.manual_seed(int(self.seed))
        return g


def filter_logits(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """[batch, vocab] float32 logits -> tempered logits with filtered entries at -inf."""
    x = logits.float() / config.temperature
    vocab = x.shape[-1]
    if 0 < config.top_k < vocab:
        kth = torch.topk(x, config.top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_x, order = torch.sort(x, dim=-1, descending=True)
        probs = torch.softmax(sorted_x, dim=-1)
        # drop a token when the tokens ranked before it already reach top_p (the top one stays)
        drop_sorted = (probs.cumsum(-1) - probs) >= config.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        x = x.masked_fill(drop, float("-inf"))
    return x


def select_next(logits: torch.Tensor, config: SamplingConfig,
                generator: torch.Generator | None) -> torch.Tensor:
    """Next token per row, int64 [batch], from last-position logits [batch, vocab]."""
    if config.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, config), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
