"""Whole-model PyTorch reference: the checkpoint's HF architecture (built by transformers from
config.json) with every VPTQ linear replaced by `ReferenceVPTQLinear`. Runs on CPU with neither
CUDA nor the `vptq` package.

    model = load_reference_model("ckpt_dir")            # fp32 by default
    logits = model(input_ids).logits
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import VPTQCheckpoint
from ..errors import UnsupportedModelError
from ..quantized_linear import QuantizedLinear
from .dequant import dequantize, vptq_linear

# Architectures the reference (and the exporter) are tested on.
SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "mistral")


class ReferenceVPTQLinear(nn.Module):
    """nn.Linear stand-in computing `vptq_linear` (fp32 accumulation by default)."""

    def __init__(self, layer: QuantizedLinear, compute_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.layer = layer
        self.in_features = layer.spec.in_features
        self.out_features = layer.spec.out_features
        self.compute_dtype = compute_dtype
        self._weight: torch.Tensor | None = None

    @property
    def dequantized_weight(self) -> torch.Tensor:
        """W [O, I] in compute_dtype, decoded once and cached."""
        if self._weight is None:
            self._weight = dequantize(self.layer, self.compute_dtype)
        return self._weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return vptq_linear(x, self.layer, weight=self.dequantized_weight,
                           compute_dtype=self.compute_dtype)

    def extra_repr(self) -> str:
        s = self.layer.spec
        res = f"+{s.num_res_centroids}" if s.has_residual else ""
        return (f"in={s.in_features}, out={s.out_features}, v{s.vector_len}-k{s.num_centroids}"
                f"{res}, groups={s.group_num}")


def hf_config(ckpt: VPTQCheckpoint):
    """The transformers config of a checkpoint, with quantization_config removed (we supply the
    quantized layers ourselves; transformers would otherwise ask for the vptq package)."""
    from transformers import AutoConfig

    model_cfg = copy.deepcopy(ckpt.model_config)
    model_cfg.pop("quantization_config", None)
    model_type = model_cfg.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"{ckpt.config_path}: model_type {model_type!r} is not supported (supported: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)})")
    return AutoConfig.for_model(**model_cfg)


def load_reference_model(path: str | Path | VPTQCheckpoint, dtype: torch.dtype = torch.float32,
                         *, check_ranges: bool = False) -> nn.Module:
    """Build the HF model for a VPTQ checkpoint with reference VPTQ linears, in eval mode.

    Non-VPTQ weights (embeddings, norms, lm_head) are loaded from the checkpoint and cast to
    `dtype`; VPTQ linears dequantize in `dtype` (fp32 accumulation for fp16/bf16)."""
    from transformers import AutoModelForCausalLM

    ckpt = path if isinstance(path, VPTQCheckpoint) else VPTQCheckpoint(path)
    config = hf_config(ckpt)
    compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    torch_state = torch.random.get_rng_state()
    model = AutoModelForCausalLM.from_config(config, dtype=dtype,
                                             attn_implementation="eager")
    torch.random.set_rng_state(torch_state)
    model.eval()

    for layer in ckpt.layers(check_ranges=check_ranges):
        parent_name, _, leaf = layer.spec.name.rpartition(".")
        try:
            parent = model.get_submodule(parent_name)
            old = getattr(parent, leaf)
        except AttributeError:
            raise UnsupportedModelError(
                f"VPTQ layer {layer.spec.name} has no matching module in the "
                f"{config.model_type} architecture") from None
        if not isinstance(old, nn.Linear) or (old.in_features, old.out_features) != (
                layer.spec.in_features, layer.spec.out_features):
            raise UnsupportedModelError(
                f"VPTQ layer {layer.spec.name} ({layer.spec.in_features}->"
                f"{layer.spec.out_features}) does not replace an nn.Linear of that shape")
        setattr(parent, leaf, ReferenceVPTQLinear(layer, compute))

    state = {}
    for name in ckpt.non_vptq_tensor_names():
        state[name] = ckpt.tensor(name).to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise UnsupportedModelError(f"checkpoint tensors with no place in the model: {unexpected[:5]}")
    missing = [m for m in missing if not (m == "lm_head.weight" and config.tie_word_embeddings)]
    if missing:
        raise UnsupportedModelError(f"model weights missing from the checkpoint: {missing[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    return model
