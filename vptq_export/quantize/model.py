"""Quantize a whole Hugging Face causal LM directory into a VPTQ checkpoint directory
(VPTQ-community layout, written by `CheckpointWriter`).

    quantize_model("tiny-llama", "tiny-llama-vptq", QuantizeOptions(vector_len=8, centroids=256))

Every nn.Linear whose module name matches `options.layers` (default: the q/k/v/o and
gate/up/down projections of the decoder layers) becomes a VPTQ layer; everything else (embeddings,
norms, lm_head) is copied from the source safetensors in the checkpoint dtype. Tokenizer and
generation files are copied. Deterministic for `options.seed`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..checkpoint_writer import CheckpointWriter
from .calibration import calibration_batches, collect_hessians
from .linear import LinearQuantization, quantize_linear
from .options import QuantizeError, QuantizeOptions

# Files copied verbatim from the FP model directory when present.
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                "chat_template.jinja", "generation_config.json")

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def quantize_model(model_dir: str | os.PathLike, out_dir: str | os.PathLike,
                   options: QuantizeOptions | None = None, *, overwrite: bool = False,
                   progress: bool = True, calibration_text: str | None = None,
                   results: dict[str, LinearQuantization] | None = None) -> Path:
    """Quantize the HF model in `model_dir` to a VPTQ checkpoint in `out_dir`; returns out_dir.

    `results`, when given, receives each layer's `LinearQuantization` (codes as assigned, the
    quantizer's reconstruction, proxy error)."""
    options = options or QuantizeOptions()
    src = Path(model_dir)
    config = _read_config(src)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise QuantizeError(f"{out} exists (pass --overwrite / overwrite=True to replace it)")
    dtype = _storage_dtype(config, options)

    from transformers import AutoModelForCausalLM
    try:
        model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32,
                                                     attn_implementation="eager")
    except (OSError, ValueError, KeyError) as exc:
        raise QuantizeError(f"{src}: transformers cannot load the model: {exc}") from None
    model.eval()
    pattern = re.compile(options.layers)
    linears = [(name, mod) for name, mod in model.named_modules()
               if isinstance(mod, nn.Linear) and pattern.search(name)]
    if not linears:
        raise QuantizeError(f"{src}: no nn.Linear module name matches --layers {options.layers!r}")

    hessians: dict[str, torch.Tensor] = {}
    if options.calibration_sequences > 0:
        batches = calibration_batches(src, model.config.vocab_size,
                                      num_sequences=options.calibration_sequences,
                                      seq_len=options.calibration_seq_len, seed=options.seed,
                                      text=calibration_text)
        hessians = collect_hessians(model, [n for n, _ in linears], batches)

    hf_config = _output_config(config, dtype)
    extra = {f: (src / f).read_bytes() for f in COPIED_FILES if (src / f).is_file()}
    quantized = set()
    from tqdm.auto import tqdm
    with CheckpointWriter(out, hf_config, overwrite=overwrite, extra_files=extra) as writer:
        bar = tqdm(linears, desc="quantize", unit="layer", disable=not progress)
        for name, mod in bar:
            result = quantize_linear(name, mod.weight, mod.bias, hessians.get(name), options,
                                     dtype)
            writer.add_layer(result.layer)
            quantized.update({f"{name}.weight", f"{name}.bias"})
            bar.set_postfix_str(f"{name} proxy err {result.proxy_error:.2e}", refresh=False)
            if results is not None:
                results[name] = result
        for name, tensor in _source_tensors(src):
            if name not in quantized:
                writer.add_tensor(name, tensor.to(dtype) if tensor.is_floating_point() else tensor)
    return out


def _read_config(src: Path) -> dict:
    path = src / "config.json"
    if not path.is_file():
        raise QuantizeError(f"{path}: no config.json: not a Hugging Face model directory")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QuantizeError(f"{path}: not valid JSON: {exc}") from None
    if "quantization_config" in config:
        raise QuantizeError(f"{path}: the model is already quantized "
                            f"({config['quantization_config'].get('quant_method')!r}); "
                            "give the full-precision model")
    return config


def _storage_dtype(config: dict, options: QuantizeOptions) -> torch.dtype:
    if options.dtype:
        return _DTYPES[options.dtype]
    name = str(config.get("dtype") or config.get("torch_dtype") or "float16")
    return _DTYPES.get(name.replace("torch.", ""), torch.float16)


def _output_config(config: dict, dtype: torch.dtype) -> dict:
    out = dict(config)
    name = str(dtype).replace("torch.", "")
    keys = [k for k in ("dtype", "torch_dtype") if k in out] or ["torch_dtype"]
    for key in keys:
        out[key] = name
    return out


def _source_tensors(src: Path):
    """(name, tensor) of every tensor of the model's safetensors files, in name order."""
    index = src / "model.safetensors.index.json"
    if index.is_file():
        files = sorted({src / f for f in json.loads(index.read_text())["weight_map"].values()})
    else:
        files = sorted(src.glob("*.safetensors"))
    if not files:
        raise QuantizeError(f"{src}: no *.safetensors weights (save the model with "
                            "save_pretrained(..., safe_serialization=True))")
    for f in files:
        with safe_open(str(f), framework="pt") as handle:
            for name in sorted(handle.keys()):
                yield name, handle.get_tensor(name)
