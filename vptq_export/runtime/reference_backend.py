"""The PyTorch reference as a runtime backend: the checkpoint's HF model with reference VPTQ
linears (`vptq_export.reference.model.load_reference_model`) and transformers' own DynamicCache."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch

from .backend import Backend, KVCache, ModelIO, StepOutput, as_int64, check_step_shapes


class ReferenceCache(KVCache):
    def __init__(self, cache, batch_size: int):
        self.cache = cache                  # transformers DynamicCache
        self.batch_size = batch_size

    @property
    def past_length(self) -> int:
        return int(self.cache.get_seq_length())

    def to_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(layer.keys.detach().float().cpu().numpy().copy(),
                 layer.values.detach().float().cpu().numpy().copy())
                for layer in self.cache.layers]


class ReferenceBackend(Backend):
    """`ReferenceBackend(ckpt_dir, dtype)`; `device="cuda"` runs the reference on a GPU."""

    def __init__(self, checkpoint: str | Path | None = None, dtype: torch.dtype = torch.float32, *,
                 model: torch.nn.Module | None = None, device: str | torch.device = "cpu"):
        if model is None:
            if checkpoint is None:
                raise ValueError("ReferenceBackend needs a checkpoint directory or a model")
            from ..reference.model import load_reference_model
            model = load_reference_model(checkpoint, dtype)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type != "cpu":
            _move_dequantized_weights(self.model, self.device)
        self.name = f"reference-{str(dtype).removeprefix('torch.')}"
        cfg = model.config
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        self.io = ModelIO(num_layers=cfg.num_hidden_layers,
                          num_kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
                          head_dim=head_dim, vocab_size=cfg.vocab_size, dtype=dtype)
        params = inspect.signature(self.model.forward).parameters
        # transformers >= 5.2x calls it `cache`; older releases `past_key_values`.
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def new_cache(self, batch_size: int) -> ReferenceCache:
        from transformers import DynamicCache
        return ReferenceCache(DynamicCache(config=self.model.config), batch_size)

    def cache_from_arrays(self, arrays) -> ReferenceCache:
        from transformers import DynamicCache
        data = [(torch.as_tensor(np.asarray(k)).to(self.device, self.io.dtype),
                 torch.as_tensor(np.asarray(v)).to(self.device, self.io.dtype)) for k, v in arrays]
        batch = data[0][0].shape[0] if data else 1
        return ReferenceCache(DynamicCache(ddp_cache_data=data, config=self.model.config), batch)

    @torch.no_grad()
    def forward(self, input_ids, attention_mask, position_ids, cache: ReferenceCache, *,
                last_only: bool = False) -> StepOutput:
        ids = as_int64(input_ids, "input_ids")
        mask = as_int64(attention_mask, "attention_mask")
        pos = as_int64(position_ids, "position_ids")
        check_step_shapes(ids, mask, pos, cache.past_length)
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), use_cache=True,
                         logits_to_keep=1 if last_only else 0,
                         **{self._cache_kwarg: cache.cache})
        new = getattr(out, "cache", None) or getattr(out, "past_key_values", None) or cache.cache
        return StepOutput(logits=out.logits.float().cpu(), cache=ReferenceCache(new, ids.shape[0]))


def _move_dequantized_weights(model: torch.nn.Module, device: torch.device) -> None:
    """Reference VPTQ linears keep their checkpoint tensors on the host (they are not module
    parameters); off the CPU, decode each weight once and keep the cached weight on `device`."""
    from ..reference.model import ReferenceVPTQLinear
    for module in model.modules():
        if isinstance(module, ReferenceVPTQLinear):
            module._weight = module.dequantized_weight.to(device)
