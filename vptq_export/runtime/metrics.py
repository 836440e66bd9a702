"""Logit-level agreement between a reference and a backend (definitions in docs/runtime.md).

For reference logits `r` and backend logits `b`, rows = positions, columns = vocabulary:
- max_abs  = max |b - r|
- max_rel  = max_abs / max |r|   (error relative to the logit scale, not element-wise: element-wise
             relative error is unbounded for logits near zero and says nothing about decoding)
- kl       = KL(softmax(r) ‖ softmax(b)) per row, in nats, computed in float64 (llama.cpp's
             `--kl-divergence` convention: reference distribution first)
- top1     = fraction of rows where argmax b == argmax r
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class LogitErrors:
    max_abs: float
    max_rel: float
    kl_max: float
    kl_mean: float
    top1: float             # agreement fraction in [0, 1]
    rows: int

    def as_dict(self) -> dict:
        return asdict(self)


def kl_divergence(ref_logits: torch.Tensor, test_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(ref) ‖ softmax(test)) over the last dimension, float64, one value per row."""
    lp = torch.log_softmax(ref_logits.double(), dim=-1)
    lq = torch.log_softmax(test_logits.double(), dim=-1)
    return (lp.exp() * (lp - lq)).sum(-1).clamp_min(0.0)


def logit_errors(ref_logits: torch.Tensor, test_logits: torch.Tensor) -> LogitErrors:
    """Metrics over all rows of [..., vocab] logits (any leading shape, same for both)."""
    if ref_logits.shape != test_logits.shape:
        raise ValueError(f"logit shapes differ: reference {tuple(ref_logits.shape)}, backend "
                         f"{tuple(test_logits.shape)}")
    r = ref_logits.reshape(-1, ref_logits.shape[-1]).double()
    b = test_logits.reshape(-1, test_logits.shape[-1]).double()
    finite = torch.isfinite(b).all()
    diff = (b - r).abs()
    max_abs = float(diff.max()) if finite else float("inf")
    scale = float(r.abs().max())
    kl = kl_divergence(r, b) if finite else torch.full((r.shape[0],), float("inf"))
    return LogitErrors(max_abs=max_abs, max_rel=max_abs / scale if scale > 0 else max_abs,
                       kl_max=float(kl.max()), kl_mean=float(kl.mean()),
                       top1=float((r.argmax(-1) == b.argmax(-1)).double().mean()),
                       rows=int(r.shape[0]))


def top1_margin(logits: torch.Tensor) -> torch.Tensor:
    """Gap between the largest and second-largest logit per row (how close greedy is to a tie)."""
    top2 = torch.topk(logits.float(), 2, dim=-1).values
    return top2[..., 0] - top2[..., 1]
