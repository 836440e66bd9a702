"""`genai_config.json` for onnxruntime-genai, so an exported model (with our `vptq.VPTQGemm` op
library) runs in ORT GenAI's own generation loop.

    write_genai_config("out/", "out/model.onnx", hf_config, "/path/libvptq_ort.so",
                       tokenizer_dir="ckpt/")

The layout follows onnxruntime-genai's model builder (`make_genai_config`): `model.decoder`
names the ONNX file, the I/O names of our contract (`past_key_values.%d.key`, `present.%d.key`,
...), the head geometry, and `session_options.custom_ops_library`, which ORT GenAI registers on
the session before loading the model. Tokenizer files are copied next to it (ORT GenAI reads
`tokenizer.json` / `tokenizer_config.json` from the model directory).

Where the op library goes: onnxruntime-genai >= 0.18 loads a custom-op library only from the
model directory, the EP library directory or the working directory ("custom_ops_library path is
not within an allowed directory" otherwise; `..` is rejected). The default, `library="copy"`,
copies libvptq_ort.so into the model directory and names it by file name, which every version
accepts; `library="absolute"` writes the library's absolute path instead (older versions, or a
library already inside one of those directories).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import VPTQError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                   "generation_config.json", "chat_template.jinja")

# ORT GenAI model types that run a plain decoder-only graph with our I/O names.
GENAI_MODEL_TYPES = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2"}

PROVIDER_NAMES = {"cpu": None, "cuda": "cuda"}


def _first_id(value):
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def write_genai_config(model_dir: str | os.PathLike, onnx_path: str | os.PathLike,
                       hf_config: dict, op_library_path: str | os.PathLike, *,
                       tokenizer_dir: str | os.PathLike | None = None, provider: str = "cpu",
                       context_length: int | None = None, library: str = "copy",
                       generation_config: dict | None = None) -> Path:
    """Write `model_dir/genai_config.json` for `onnx_path` (which must sit in `model_dir`) and
    copy the tokenizer files of `tokenizer_dir` there. `hf_config`: the checkpoint's config.json
    dict (quantization_config is ignored). `library`: "copy" (the op library is copied into
    model_dir, see the module doc) or "absolute". Returns the path of genai_config.json."""
    model_dir = Path(model_dir)
    onnx_path = Path(onnx_path)
    if onnx_path.resolve().parent != model_dir.resolve():
        raise VPTQError(f"{onnx_path} must be inside {model_dir} (ORT GenAI loads the model file "
                        "relative to genai_config.json)")
    if not onnx_path.is_file():
        raise VPTQError(f"{onnx_path}: no such ONNX model file")
    op_library = Path(op_library_path)
    if not op_library.is_file():
        raise VPTQError(f"op library {op_library} does not exist (build it: pip install ., or see "
                        "`vptq-export doctor`)")
    if library not in ("copy", "absolute"):
        raise VPTQError(f"library={library!r}: expected 'copy' or 'absolute'")
    if provider not in PROVIDER_NAMES:
        raise VPTQError(f"provider {provider!r}: expected one of {', '.join(PROVIDER_NAMES)}")
    cfg = hf_config.get("text_config", hf_config) if "num_hidden_layers" not in hf_config \
        else hf_config
    model_type = cfg.get("model_type")
    if model_type not in GENAI_MODEL_TYPES:
        raise VPTQError(f"model_type {model_type!r} has no ORT GenAI mapping (supported: "
                        f"{', '.join(GENAI_MODEL_TYPES)})")
    heads = int(cfg["num_attention_heads"])
    head_size = int(cfg.get("head_dim") or cfg["hidden_size"] // heads)
    context = int(context_length or cfg.get("max_position_embeddings", 2048))
    gen = dict(generation_config or {})
    if tokenizer_dir is not None and not gen:
        gpath = Path(tokenizer_dir) / "generation_config.json"
        if gpath.is_file():
            gen = json.loads(gpath.read_text())
    eos = gen.get("eos_token_id", cfg.get("eos_token_id"))
    pad = gen.get("pad_token_id", cfg.get("pad_token_id"))
    if pad is None:
        pad = _first_id(eos)
    if library == "copy":
        placed = model_dir / op_library.name
        if op_library.resolve() != placed.resolve():
            shutil.copyfile(op_library, placed)
        library_entry = op_library.name
    else:
        library_entry = str(op_library.resolve())
    session_options: dict = {"log_id": "onnxruntime-genai", "provider_options": [],
                             "custom_ops_library": library_entry}
    if PROVIDER_NAMES[provider]:
        session_options["provider_options"].append({PROVIDER_NAMES[provider]: {}})
    config = {
        "model": {
            "bos_token_id": _first_id(gen.get("bos_token_id", cfg.get("bos_token_id"))),
            "context_length": context,
            "decoder": {
                "session_options": session_options,
                "filename": onnx_path.name,
                "head_size": head_size,
                "hidden_size": int(cfg["hidden_size"]),
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "position_ids": "position_ids",
                           "past_key_names": "past_key_values.%d.key",
                           "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "num_attention_heads": heads,
                "num_hidden_layers": int(cfg["num_hidden_layers"]),
                "num_key_value_heads": int(cfg.get("num_key_value_heads") or heads),
            },
            "eos_token_id": eos,
            "pad_token_id": _first_id(pad),
            "type": GENAI_MODEL_TYPES[model_type],
            "vocab_size": int(cfg["vocab_size"]),
        },
        "search": {
            "diversity_penalty": 0.0, "do_sample": False, "early_stopping": True,
            "length_penalty": 1.0, "max_length": context, "min_length": 0,
            "no_repeat_ngram_size": 0, "num_beams": 1, "num_return_sequences": 1,
            # our graph returns present = concat(past, new), not a shared fixed-size buffer
            "past_present_share_buffer": False,
            "repetition_penalty": 1.0, "temperature": 1.0, "top_k": 1, "top_p": 1.0,
        },
    }
    if tokenizer_dir is not None:
        copy_tokenizer_files(tokenizer_dir, model_dir)
    out = model_dir / "genai_config.json"
    out.write_text(json.dumps(config, indent=2))
    return out


def copy_tokenizer_files(src: str | os.PathLike, dst: str | os.PathLike) -> list[str]:
    """Copy the tokenizer files found in `src` to `dst`; returns the names copied."""
    src, dst = Path(src), Path(dst)
    copied = []
    for name in TOKENIZER_FILES:
        if (src / name).is_file() and (src / name).resolve() != (dst / name).resolve():
            shutil.copyfile(src / name, dst / name)
            copied.append(name)
    return copied
