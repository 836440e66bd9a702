"""Perplexity of a backend over a text, and its agreement with the reference on the same
positions (method in docs/runtime.md, section Evaluation).

The text is tokenized once into a stream of T tokens. Windows of `window` tokens start every
`stride` tokens (the last one is cut at the end of the stream); each window runs as one prefill
with an empty KV cache. A window scores only the tokens that no earlier window scored (its last
`end - previous_end` targets), so every token t ≥ 1 is predicted exactly once, with at least
`window - stride` tokens of context (except near the start). Perplexity = exp(mean NLL); KL is
KL(reference ‖ backend) per scored position, averaged; top-1 = fraction of scored positions
where both pick the same argmax.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .backend import Backend
from .metrics import kl_divergence


@dataclass
class EvalReport:
    backend: str
    reference: str | None
    tokens_scored: int
    windows: int
    window: int
    stride: int
    perplexity: float
    reference_perplexity: float | None
    kl_mean: float | None
    kl_max: float | None
    top1: float | None

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        lines = [f"evaluation: {self.tokens_scored} tokens scored in {self.windows} windows "
                 f"(window {self.window}, stride {self.stride})",
                 f"  perplexity {self.backend:>16}: {self.perplexity:.4f}"]
        if self.reference is not None:
            lines += [f"  perplexity {self.reference:>16}: {self.reference_perplexity:.4f}",
                      f"  KL(reference ‖ backend) mean {self.kl_mean:.3e}  max {self.kl_max:.3e}",
                      f"  top-1 agreement {100 * self.top1:.2f}%"]
        return "\n".join(lines)


def windows(num_tokens: int, window: int, stride: int):
    """(begin, end, n_scored) per window; the scored targets are tokens end-n_scored .. end-1."""
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    if not 1 <= stride <= window:
        raise ValueError(f"stride must be in [1, window], got {stride} (window {window})")
    prev_end = 1                      # token 0 has no prediction
    begin = 0
    while prev_end < num_tokens:
        end = min(begin + window, num_tokens)
        if end > prev_end:
            yield begin, end, end - prev_end
            prev_end = end
        begin += stride


def _window_logits(backend: Backend, ids: torch.Tensor) -> torch.Tensor:
    x = ids[None]
    mask = torch.ones_like(x)
    pos = torch.arange(x.shape[1], dtype=torch.int64)[None]
    return backend.forward(x, mask, pos, backend.new_cache(1)).logits[0]


def evaluate(backend: Backend, tokens: list[int], *, window: int = 128, stride: int = 64,
             reference: Backend | None = None) -> EvalReport:
    ids = torch.as_tensor(tokens, dtype=torch.int64)
    if ids.numel() < 2:
        raise ValueError(f"need at least 2 tokens to evaluate, got {ids.numel()}")
    nll, count, n_windows = 0.0, 0, 0
    ref_nll, kl_sum, kl_max, agree = 0.0, 0.0, 0.0, 0
    for begin, end, n in windows(ids.numel(), window, stride):
        chunk = ids[begin:end]
        # logits at position p predict token p+1; scored targets are the last n of the chunk
        targets = chunk[-n:]
        logits = _window_logits(backend, chunk)[-n - 1:-1].double()
        nll += float(-torch.log_softmax(logits, -1).gather(-1, targets[:, None]).sum())
        if reference is not None:
            ref = _window_logits(reference, chunk)[-n - 1:-1].double()
            ref_nll += float(-torch.log_softmax(ref, -1).gather(-1, targets[:, None]).sum())
            kl = kl_divergence(ref, logits)
            kl_sum += float(kl.sum())
            kl_max = max(kl_max, float(kl.max()))
            agree += int((ref.argmax(-1) == logits.argmax(-1)).sum())
        count += n
        n_windows += 1
    has_ref = reference is not None
    return EvalReport(
        backend=backend.name, reference=reference.name if has_ref else None,
        tokens_scored=count, windows=n_windows, window=window, stride=stride,
        perplexity=math.exp(nll / count),
        reference_perplexity=math.exp(ref_nll / count) if has_ref else None,
        kl_mean=kl_sum / count if has_ref else None, kl_max=kl_max if has_ref else None,
        top1=agree / count if has_ref else None)


def evaluate_file(model, text_file, *, backend: str = "ort-cpu", checkpoint=None, engine=None,
                  tokenizer_dir=None, window: int = 128, stride: int = 64,
                  max_tokens: int | None = None, reference_dtype: torch.dtype = torch.float32,
                  with_reference: bool = True) -> EvalReport:
    """`vptq-export eval`: tokenize `text_file` with the model's tokenizer and `evaluate`."""
    from pathlib import Path

    from ..errors import VPTQError
    from .backends import open_backend
    from .tokenizer import load_tokenizer

    path = Path(text_file)
    if not path.is_file():
        raise VPTQError(f"{path}: no such text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VPTQError(f"{path}: not UTF-8 text ({exc})") from None
    if with_reference and checkpoint is None:
        raise VPTQError("--checkpoint is needed for the reference comparison (or --no-reference)")
    if backend == "reference" and checkpoint is None:
        checkpoint = model
    tokenizer = load_tokenizer(tokenizer_dir, model, checkpoint)
    tokens = list(tokenizer(text).input_ids)
    if max_tokens is not None:
        tokens = tokens[:max_tokens]
    if len(tokens) < 2:
        raise VPTQError(f"{path}: fewer than 2 tokens of text")
    if not 2 <= window or not 1 <= stride <= window:
        raise VPTQError(f"window {window} / stride {stride}: need window >= 2 and "
                        "1 <= stride <= window")
    under_test = open_backend(backend, model=model, checkpoint=checkpoint, engine=engine)
    reference = None
    if with_reference:
        from .reference_backend import ReferenceBackend
        reference = ReferenceBackend(checkpoint, reference_dtype)
    try:
        return evaluate(under_test, tokens, window=window, stride=stride, reference=reference)
    finally:
        under_test.close()
