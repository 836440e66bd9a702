"""The checkpoint's tokenizer, offline: `tokenizer.json` (+ `tokenizer_config.json`) through
`transformers.AutoTokenizer` with `local_files_only`; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import VPTQError

TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer.model", "vocab.json")


class TokenizerNotFoundError(VPTQError):
    """No tokenizer files where one was looked for."""


def find_tokenizer_dir(*candidates: str | os.PathLike | None) -> Path:
    """The first candidate directory holding tokenizer files (a file candidate means its
    directory, e.g. model.onnx -> the directory beside it)."""
    looked = []
    for c in candidates:
        if c is None:
            continue
        d = Path(c)
        if d.is_file():
            d = d.parent
        looked.append(str(d))
        if any((d / m).is_file() for m in TOKENIZER_MARKERS):
            return d
    raise TokenizerNotFoundError(
        "no tokenizer found (looked for " + ", ".join(TOKENIZER_MARKERS) + " in: "
        + (", ".join(looked) or "nowhere") + "); pass --tokenizer DIR with the checkpoint's "
        "tokenizer files")


def load_tokenizer(*candidates: str | os.PathLike | None):
    """A transformers tokenizer from the first candidate directory that has one."""
    directory = find_tokenizer_dir(*candidates)
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TokenizerNotFoundError(f"{directory}: tokenizer files present but transformers "
                                     f"cannot load them: {exc}") from None


def encode(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text).input_ids
    if not ids:
        raise VPTQError(f"prompt {text!r} encodes to no tokens")
    return list(ids)
