"""Calibration for the quantizer: token batches from a text, and the second moment of every
quantized linear's input, H = E[x x^T] (the "Hessian" of VPTQ / GPTQ), from forward hooks on the
full-precision model (vptq-reference.md section 3.1: every layer sees FP inputs)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..tiny_text import builtin_text


def calibration_batches(model_dir: str | Path, vocab_size: int, *, num_sequences: int,
                        seq_len: int, seed: int = 0, text: str | None = None) -> torch.Tensor:
    """[num_sequences, seq_len] token ids: `text` (default: the built-in text) tokenized by the
    model's own tokenizer, cut into evenly spaced windows (the text repeats when too short).
    Without a loadable tokenizer, seeded random ids in [0, vocab_size)."""
    ids = None
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(model_dir))
        ids = tok(text or builtin_text(), add_special_tokens=False, verbose=False)["input_ids"]
        ids = [i for i in ids if 0 <= i < vocab_size]
    except Exception:       # no tokenizer files, or one transformers cannot build: fall back
        ids = None
    if not ids:
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, vocab_size, (num_sequences, seq_len), generator=gen)
    stream = torch.tensor(ids, dtype=torch.long)
    need = num_sequences * seq_len
    if len(stream) < need:
        stream = stream.repeat(need // len(stream) + 1)
    starts = torch.linspace(0, len(stream) - seq_len, num_sequences).long()
    return torch.stack([stream[s:s + seq_len] for s in starts.tolist()])


@torch.no_grad()
def collect_hessians(model: nn.Module, names: list[str], batches: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
    """E[x x^T] (fp64 [I, I]) of the input of each named nn.Linear over all tokens of `batches`."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []

    def hook_for(name):
        def hook(module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            if name not in sums:
                sums[name] = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
                counts[name] = 0
            sums[name] += x.T @ x
            counts[name] += x.shape[0]
        return hook

    for name in names:
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook_for(name)))
    try:
        for row in batches:
            model(input_ids=row[None])
    finally:
        for h in hooks:
            h.remove()
    return {name: sums[name] / counts[name] for name in sums}
