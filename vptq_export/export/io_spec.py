"""Names, dtypes and shapes of the exported decoder's inputs and outputs (ORT GenAI / Optimum
naming). The graph builder declares its I/O from `decoder_io`, and `io_summary` hands the same
description to whoever writes `genai_config.json` or binds buffers, so the contract has one
source.

Dimension names: batch_size, sequence_length (new tokens), past_sequence_length (cached),
total_sequence_length (= past + new).
"""

from __future__ import annotations

import os

from ..checkpoint import VPTQCheckpoint
from .decoder_config import DecoderConfig
from .options import parse_dtype

BATCH, SEQ, PAST, TOTAL = "batch_size", "sequence_length", "past_sequence_length", \
    "total_sequence_length"

INPUT_IDS, ATTENTION_MASK, POSITION_IDS, LOGITS = "input_ids", "attention_mask", "position_ids", \
    "logits"
PAST_KEY, PAST_VALUE = "past_key_values.{}.key", "past_key_values.{}.value"
PRESENT_KEY, PRESENT_VALUE = "present.{}.key", "present.{}.value"


def decoder_io(cfg: DecoderConfig, dtype: str = "float32") -> dict:
    """{"inputs": [{"name", "dtype", "shape"}...], "outputs": [...], plus the geometry}; dtype
    names are numpy-style strings ("int64", "float32", "float16", "bfloat16"), shapes mix ints
    and dimension names."""
    dt = str(parse_dtype(dtype)).replace("torch.", "")
    kv = cfg.num_kv_heads
    hd = cfg.head_dim
    inputs = [
        {"name": INPUT_IDS, "dtype": "int64", "shape": [BATCH, SEQ]},
        {"name": ATTENTION_MASK, "dtype": "int64", "shape": [BATCH, TOTAL]},
        {"name": POSITION_IDS, "dtype": "int64", "shape": [BATCH, SEQ]},
    ]
    outputs = [{"name": LOGITS, "dtype": dt, "shape": [BATCH, SEQ, cfg.vocab_size]}]
    for i in range(cfg.num_layers):
        for past, present in ((PAST_KEY, PRESENT_KEY), (PAST_VALUE, PRESENT_VALUE)):
            inputs.append({"name": past.format(i), "dtype": dt, "shape": [BATCH, kv, PAST, hd]})
            outputs.append({"name": present.format(i), "dtype": dt,
                            "shape": [BATCH, kv, TOTAL, hd]})
    return {
        "inputs": inputs, "outputs": outputs, "dtype": dt, "model_type": cfg.model_type,
        "num_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": kv, "head_dim": hd, "hidden_size": cfg.hidden_size,
        "vocab_size": cfg.vocab_size,
        "past_key_names": PAST_KEY.replace("{}", "%d"),
        "past_value_names": PAST_VALUE.replace("{}", "%d"),
        "present_key_names": PRESENT_KEY.replace("{}", "%d"),
        "present_value_names": PRESENT_VALUE.replace("{}", "%d"),
    }


def io_summary(ckpt_dir: str | os.PathLike | VPTQCheckpoint, dtype: str = "float32") -> dict:
    """`decoder_io` for a checkpoint directory: what `export_model(ckpt_dir, ...)` will declare."""
    ckpt = ckpt_dir if isinstance(ckpt_dir, VPTQCheckpoint) else VPTQCheckpoint(ckpt_dir)
    return decoder_io(DecoderConfig.from_checkpoint(ckpt), dtype)
