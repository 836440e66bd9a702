"""Text in, text out: `vptq-export generate` as a Python function.

    texts = generate_text("out/model.onnx", ["The quick brown fox"], max_new_tokens=24)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import VPTQError
from .backends import open_backend
from .generate import GenerationResult, generate
from .sampling import SamplingConfig
from .tokenizer import encode, load_tokenizer


@dataclass
class TextGeneration:
    prompts: list[str]
    completions: list[str]
    result: GenerationResult
    backend: str


def special_token_ids(tokenizer, *config_dirs) -> tuple[set[int], int]:
    """(stop tokens, pad token): eos from generation_config.json / config.json / the tokenizer;
    pad from the same places, else the first stop token, else 0."""
    stops: set[int] = set()
    pad = None
    for d in config_dirs:
        if d is None:
            continue
        d = Path(d)
        d = d.parent if d.is_file() else d
        for name in ("generation_config.json", "config.json"):
            f = d / name
            if not f.is_file():
                continue
            cfg = json.loads(f.read_text())
            eos = cfg.get("eos_token_id")
            stops.update(eos if isinstance(eos, list) else [] if eos is None else [eos])
            if pad is None and isinstance(cfg.get("pad_token_id"), int):
                pad = cfg["pad_token_id"]
    if tokenizer is not None:
        if tokenizer.eos_token_id is not None:
            stops.add(int(tokenizer.eos_token_id))
        if pad is None and tokenizer.pad_token_id is not None:
            pad = int(tokenizer.pad_token_id)
    if pad is None:
        pad = min(stops) if stops else 0
    return {int(s) for s in stops}, int(pad)


class TextStreamer:
    """Turns the per-step token callback into text pieces for one prompt (decodes the whole
    continuation each time and emits the new suffix, holding back an incomplete UTF-8 char)."""

    def __init__(self, tokenizer, write: Callable[[str], None], row: int = 0):
        self.tokenizer, self.write, self.row = tokenizer, write, row
        self.tokens: list[int] = []
        self.emitted = ""

    def __call__(self, new_tokens: list[int | None]) -> None:
        tok = new_tokens[self.row]
        if tok is None:
            return
        self.tokens.append(tok)
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return
        if text.startswith(self.emitted):
            self.write(text[len(self.emitted):])
        self.emitted = text


def generate_text(path: str | os.PathLike, prompts: list[str], *, backend: str | None = None,
                  checkpoint: str | os.PathLike | None = None,
                  tokenizer_dir: str | os.PathLike | None = None,
                  engine: str | os.PathLike | None = None, max_new_tokens: int = 32,
                  sampling: SamplingConfig = SamplingConfig(), dtype: torch.dtype = torch.float32,
                  stream: Callable[[str], None] | None = None) -> TextGeneration:
    """Generate from `path`: a checkpoint directory (default backend: the PyTorch reference) or
    model.onnx (default: ort-cpu). The tokenizer comes from `tokenizer_dir`, beside the model,
    or the checkpoint. `stream(text_piece)` receives the first prompt's text as it is made."""
    path = Path(path)
    if not prompts:
        raise VPTQError("no prompt given (--prompt TEXT)")
    is_dir = path.is_dir()
    if not is_dir and not path.is_file():
        raise VPTQError(f"{path}: no such checkpoint directory or model file")
    kind = backend or ("reference" if is_dir else "ort-cpu")
    if is_dir and kind != "reference":
        raise VPTQError(f"{path} is a checkpoint directory; backend {kind} needs the exported "
                        "model.onnx (vptq-export export) as PATH")
    if not is_dir and kind == "reference" and checkpoint is None:
        raise VPTQError("the reference backend runs a checkpoint: give its directory as PATH "
                        "or --checkpoint")
    tokenizer = load_tokenizer(tokenizer_dir, path, checkpoint)
    stops, pad = special_token_ids(tokenizer, checkpoint, path)
    ids = [encode(tokenizer, p) for p in prompts]
    runner = open_backend(kind, model=None if is_dir else path,
                          checkpoint=path if is_dir else checkpoint, engine=engine, dtype=dtype)
    try:
        streamer = TextStreamer(tokenizer, stream) if stream is not None else None
        result = generate(runner, ids, max_new_tokens=max_new_tokens, sampling=sampling,
                          stop_tokens=stops, pad_token_id=pad, streamer=streamer)
    finally:
        runner.close()
    completions = [tokenizer.decode(t, skip_special_tokens=True) for t in result.tokens]
    return TextGeneration(list(prompts), completions, result, runner.name)
