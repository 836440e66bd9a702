"""Random-code VPTQ checkpoints with the shapes of real models (Llama-3.1-8B / 70B, Qwen2.5-7B,
Mistral-7B, or tiny), for scale tests and benchmarks of the exporter and the runtimes.

    generate_checkpoint("ckpt-8b", "llama3-8b", "v8-k65536", layers=None)

Nothing is quantized: codes are random bits and codebooks / embeddings random values, so the
model computes garbage, but every tensor has the format's exact shape, dtype and layout. With
k = 2^index_bits (and k_res = 2^res_index_bits) every bit pattern is a valid code, so the packed
int32 words are drawn directly as random bits; only each row's padding bits are zeroed, as
microsoft/VPTQ's pack_index writes them. One decoder layer per safetensors shard (written with
`CheckpointWriter.end_shard()`), so memory stays at one layer (plus the embedding).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint_writer import CheckpointWriter
from .errors import VPTQError
from .layer_spec import LayerSpec
from .quantized_linear import QuantizedLinear

_LLAMA3_ROPE = dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                    high_freq_factor=4.0, original_max_position_embeddings=8192)

# Architecture presets: HF config.json fields (the published models' values).
PRESETS: dict[str, dict] = {
    "llama3-8b": dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=4096,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                      intermediate_size=14336, vocab_size=128256, rms_norm_eps=1e-5,
                      max_position_embeddings=131072, tie_word_embeddings=False,
                      rope_parameters=_LLAMA3_ROPE, bos_token_id=128000, eos_token_id=128001,
                      hidden_act="silu", attention_bias=False, mlp_bias=False),
    "llama3-70b": dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=8192,
                       num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
                       intermediate_size=28672, vocab_size=128256, rms_norm_eps=1e-5,
                       max_position_embeddings=131072, tie_word_embeddings=False,
                       rope_parameters=_LLAMA3_ROPE, bos_token_id=128000, eos_token_id=128001,
                       hidden_act="silu", attention_bias=False, mlp_bias=False),
    "qwen2.5-7b": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=3584,
                       num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                       intermediate_size=18944, vocab_size=152064, rms_norm_eps=1e-6,
                       max_position_embeddings=32768, tie_word_embeddings=False,
                       use_sliding_window=False, hidden_act="silu",
                       rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
                       bos_token_id=151643, eos_token_id=151645),
    "mistral-7b": dict(model_type="mistral", architectures=["MistralForCausalLM"],
                       hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, intermediate_size=14336, vocab_size=32768,
                       rms_norm_eps=1e-5, max_position_embeddings=32768, sliding_window=None,
                       tie_word_embeddings=False, hidden_act="silu", head_dim=128,
                       rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
                       bos_token_id=1, eos_token_id=2),
    "tiny": dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=256,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=512, vocab_size=1024, rms_norm_eps=1e-5,
                 max_position_embeddings=2048, tie_word_embeddings=True, hidden_act="silu",
                 rope_parameters=dict(rope_type="default", rope_theta=10000.0),
                 bos_token_id=1, eos_token_id=2),
}
# Linears with a bias (Qwen2: q/k/v).
BIASED = {"qwen2": ("q_proj", "k_proj", "v_proj")}

_CODEBOOK = re.compile(r"^v(\d+)-k(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Codebook:
    """VPTQ's naming: v<vector_len>-k<centroids>[-<residual centroids>] (e.g. v8-k65536-256)."""
    vector_len: int
    num_centroids: int
    num_res_centroids: int = 0

    @classmethod
    def parse(cls, text: str) -> "Codebook":
        m = _CODEBOOK.match(text.strip())
        if not m:
            raise VPTQError(f"codebook {text!r}: expected v<len>-k<centroids>[-<res centroids>], "
                            "e.g. v8-k65536 or v8-k65536-256")
        return cls(int(m[1]), int(m[2]), int(m[3] or 0))

    def spec(self, name: str, in_features: int, out_features: int, bias: bool) -> LayerSpec:
        return LayerSpec.from_config(name, {
            "in_features": in_features, "out_features": out_features,
            "vector_lens": [-1, self.vector_len], "num_centroids": [-1, self.num_centroids],
            "num_res_centroids": [-1, self.num_res_centroids or -1], "group_num": 1,
            "group_size": in_features, "outlier_size": 0, "enable_perm": False,
            "enable_norm": False, "bias": bias, "is_indice_packed": True})


def linear_shapes(cfg: dict) -> list[tuple[str, int, int]]:
    """(module suffix, in_features, out_features) of one decoder layer's linears."""
    h, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // heads
    inter = cfg["intermediate_size"]
    return [("self_attn.q_proj", h, heads * hd), ("self_attn.k_proj", h, kv * hd),
            ("self_attn.v_proj", h, kv * hd), ("self_attn.o_proj", heads * hd, h),
            ("mlp.gate_proj", h, inter), ("mlp.up_proj", h, inter), ("mlp.down_proj", inter, h)]


def random_packed_layer(spec: LayerSpec, dtype: torch.dtype, rng: np.random.Generator,
                        *, scale: float = 0.02) -> QuantizedLinear:
    """A packed VPTQ layer of random bits (valid for power-of-two codebooks) and random
    codebooks, generated without materialising unpacked indices."""
    G, NI, W = spec.group_num, spec.num_index_rows, spec.packed_words_per_row
    words = rng.integers(0, 1 << 32, size=(G, NI, W), dtype=np.uint32)
    pad = 32 * W - spec.group_size * spec.total_index_bits
    if pad:
        words[..., -1] &= np.uint32((1 << (32 - pad)) - 1)

    def floats(shape, s):
        return torch.from_numpy(((rng.random(shape, dtype=np.float32) - 0.5) * (2 * s))).to(dtype)

    return QuantizedLinear(
        spec=spec, indices=torch.from_numpy(words.view(np.int32)),
        centroids=floats((G, spec.num_centroids * spec.vector_len), scale),
        res_centroids=floats((G, spec.num_res_centroids * spec.vector_len), scale / 4)
        if spec.has_residual else None,
        bias=floats((spec.out_features,), scale) if spec.bias else None)


def _random_matrix(rows: int, cols: int, dtype: torch.dtype, rng: np.random.Generator,
                   scale: float = 0.02, block: int = 8192) -> torch.Tensor:
    out = torch.empty(rows, cols, dtype=dtype)
    for start in range(0, rows, block):
        n = min(block, rows - start)
        chunk = (rng.random((n, cols), dtype=np.float32) - 0.5) * (2 * scale)
        out[start:start + n] = torch.from_numpy(chunk).to(dtype)
    return out


def _norm_weight(size: int, dtype: torch.dtype, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(1.0 + 0.1 * (rng.random(size, dtype=np.float32) - 0.5)).to(dtype)


def generate_checkpoint(out_dir: str | os.PathLike, preset: str, codebook: str | Codebook, *,
                        layers: int | None = None, dtype: torch.dtype = torch.float16,
                        seed: int = 0, progress: bool = True, overwrite: bool = False) -> Path:
    """Write a random-code VPTQ checkpoint of `preset`'s shapes (capped at `layers` decoder
    layers) with every decoder linear quantized as `codebook`. Returns out_dir."""
    if preset not in PRESETS:
        raise VPTQError(f"preset {preset!r} is not one of {', '.join(PRESETS)}")
    book = codebook if isinstance(codebook, Codebook) else Codebook.parse(codebook)
    cfg = copy.deepcopy(PRESETS[preset])
    if layers is not None:
        if layers < 1:
            raise VPTQError(f"--layers must be >= 1, got {layers}")
        cfg["num_hidden_layers"] = min(layers, cfg["num_hidden_layers"])
    cfg["torch_dtype"] = str(dtype).replace("torch.", "")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise VPTQError(f"{out} exists (pass --overwrite to replace it)")
    h, vocab, n = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    biased = BIASED.get(cfg["model_type"], ())
    shapes = linear_shapes(cfg)
    for suffix, i, o in shapes:                       # validate the codebook for every shape
        book.spec(suffix, i, o, False)
    with CheckpointWriter(out, cfg, overwrite=overwrite) as w:
        rng = np.random.default_rng([seed, 0])
        w.add_tensor("model.embed_tokens.weight", _random_matrix(vocab, h, dtype, rng))
        w.end_shard()
        for li in tqdm(range(n), desc="gen-checkpoint", unit="layer", disable=not progress):
            rng = np.random.default_rng([seed, 1 + li])
            prefix = f"model.layers.{li}"
            for suffix, i, o in shapes:
                spec = book.spec(f"{prefix}.{suffix}", i, o, suffix.rsplit(".", 1)[1] in biased)
                w.add_layer(random_packed_layer(spec, dtype, rng))
            w.add_tensor(f"{prefix}.input_layernorm.weight", _norm_weight(h, dtype, rng))
            w.add_tensor(f"{prefix}.post_attention_layernorm.weight", _norm_weight(h, dtype, rng))
            w.end_shard()
        rng = np.random.default_rng([seed, 1 + n])
        w.add_tensor("model.norm.weight", _norm_weight(h, dtype, rng))
        if not cfg.get("tie_word_embeddings", False):
            w.add_tensor("lm_head.weight", _random_matrix(vocab, h, dtype, rng))
    return out
