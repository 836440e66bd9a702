"""`DecoderConfig`: what the graph builder needs to know about a checkpoint's architecture,
taken from the transformers config of the checkpoint (the same config the PyTorch reference is
built from), validated against what the exporter supports.

RoPE inverse frequencies come from the architecture's own transformers rotary-embedding module
(which applies `ROPE_INIT_FUNCTIONS`: default, linear, llama3, yarn, ...), so the exported
constants are bit-identical to the reference's.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from ..checkpoint import VPTQCheckpoint
from ..errors import UnsupportedModelError

# model_type -> (transformers module, rotary embedding class)
ARCHITECTURES = {
    "llama": ("transformers.models.llama.modeling_llama", "LlamaRotaryEmbedding"),
    "qwen2": ("transformers.models.qwen2.modeling_qwen2", "Qwen2RotaryEmbedding"),
    "mistral": ("transformers.models.mistral.modeling_mistral", "MistralRotaryEmbedding"),
}
# RoPE variants whose inverse frequencies do not depend on the sequence length at run time.
STATIC_ROPE_TYPES = ("default", "linear", "llama3", "yarn")
ACTIVATIONS = ("silu",)


@dataclass(frozen=True)
class DecoderConfig:
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    rms_norm_eps: float
    tie_word_embeddings: bool
    inv_freq: np.ndarray                     # float32 [head_dim / 2]
    attention_scaling: float                 # cos/sin multiplier (1 except yarn-like RoPE)
    sliding_windows: tuple                   # per layer: window length or None
    rope_type: str = "default"

    @property
    def kv_groups(self) -> int:
        return self.num_heads // self.num_kv_heads

    def layer_prefix(self, i: int) -> str:
        return f"model.layers.{i}"

    @classmethod
    def from_checkpoint(cls, ckpt: VPTQCheckpoint) -> "DecoderConfig":
        from ..reference.model import hf_config      # raises UnsupportedModelError for others
        config = hf_config(ckpt)
        return cls.from_hf_config(config, source=str(ckpt.config_path))

    @classmethod
    def from_hf_config(cls, config, *, source: str = "config.json") -> "DecoderConfig":
        model_type = config.model_type
        if model_type not in ARCHITECTURES:
            raise UnsupportedModelError(f"{source}: model_type {model_type!r} cannot be exported "
                                        f"(supported: {', '.join(ARCHITECTURES)})")

        def fail(what):
            return UnsupportedModelError(f"{source}: {model_type} with {what} cannot be exported")

        act = getattr(config, "hidden_act", "silu")
        if act not in ACTIVATIONS:
            raise fail(f"hidden_act {act!r} (supported: {', '.join(ACTIVATIONS)})")
        heads = int(config.num_attention_heads)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        if heads % kv_heads:
            raise fail(f"{heads} attention heads not a multiple of {kv_heads} KV heads")
        head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
        rope = dict(getattr(config, "rope_parameters", None) or {})
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in STATIC_ROPE_TYPES:
            raise fail(f"rope_type {rope_type!r} (its frequencies change with the sequence length "
                       f"at run time; supported: {', '.join(STATIC_ROPE_TYPES)})")
        module_name, class_name = ARCHITECTURES[model_type]
        rotary = getattr(importlib.import_module(module_name), class_name)(config)
        inv_freq = rotary.inv_freq.detach().float().numpy().copy()
        if inv_freq.shape != (head_dim // 2,):
            raise fail(f"partial rotary embedding ({2 * inv_freq.shape[0]} of {head_dim} dims)")
        n = int(config.num_hidden_layers)
        window = getattr(config, "sliding_window", None)
        layer_types = getattr(config, "layer_types", None)
        if model_type == "mistral":
            windows = tuple(window for _ in range(n))       # Mistral: every layer when set
        elif layer_types:
            windows = tuple(window if t == "sliding_attention" else None for t in layer_types[:n])
        else:
            windows = tuple(None for _ in range(n))
        return cls(
            model_type=model_type, num_layers=n, hidden_size=int(config.hidden_size),
            num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim,
            vocab_size=int(config.vocab_size), rms_norm_eps=float(config.rms_norm_eps),
            tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            inv_freq=inv_freq, attention_scaling=float(rotary.attention_scaling),
            sliding_windows=tuple(int(w) if w else None for w in windows), rope_type=rope_type)
