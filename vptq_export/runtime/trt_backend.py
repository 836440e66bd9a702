"""TensorRT backend over `vptq_export.tensorrt.runner.EngineRunner`; importable only where
TensorRT (or TensorRT-RTX) is installed.

The KV cache is a list of torch CUDA tensors: the `present.*` outputs of one step (allocated by
the runner on the GPU) are the `past_key_values.*` inputs of the next, without a host round
trip; only the logits rows the caller needs are copied to the host.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import BackendUnavailableError
from .backend import Backend, KVCache, ModelIO, StepOutput, as_int64, check_step_shapes


class TrtCache(KVCache):
    def __init__(self, tensors: list[torch.Tensor], past_length: int):
        self.tensors = tensors          # per past input: layer 0 key, layer 0 value, layer 1 key...
        self._past_length = past_length

    @property
    def past_length(self) -> int:
        return self._past_length

    def to_arrays(self):
        host = [t.float().cpu().numpy().copy() for t in self.tensors]
        return list(zip(host[0::2], host[1::2]))


class TrtBackend(Backend):
    """`TrtBackend(engine="model.engine")`; with only `model` (model.onnx), an engine is built
    next to it first (`model.engine`, reused when newer than the model)."""

    name = "tensorrt"

    def __init__(self, engine=None, model=None, *, runner=None):
        if runner is None:
            try:
                from ..tensorrt.runner import EngineRunner
            except ImportError as exc:
                raise BackendUnavailableError(f"TensorRT backend unavailable: {exc}") from None
            if engine is None:
                if model is None:
                    raise BackendUnavailableError("the tensorrt backend needs --engine PATH (or "
                                                  "a model.onnx to build one from)")
                engine = _engine_for(Path(model))
            runner = EngineRunner(engine)
        self.runner = runner
        self.device = runner.device
        io = runner.model_io()
        self.io = ModelIO(num_layers=io["num_layers"], num_kv_heads=io["num_kv_heads"],
                          head_dim=io["head_dim"], vocab_size=io["vocab_size"],
                          dtype=io["dtype"])
        self.past_names = [f"past_key_values.{i}.{k}" for i in range(self.io.num_layers)
                           for k in ("key", "value")]
        self.present_names = [f"present.{i}.{k}" for i in range(self.io.num_layers)
                              for k in ("key", "value")]

    def new_cache(self, batch_size: int) -> TrtCache:
        shape = (batch_size, self.io.num_kv_heads, 0, self.io.head_dim)
        return TrtCache([torch.empty(shape, dtype=self.io.dtype, device=self.device)
                         for _ in self.past_names], 0)

    def cache_from_arrays(self, arrays) -> TrtCache:
        tensors = [torch.as_tensor(np.asarray(a, np.float32)).to(self.device, self.io.dtype)
                   for kv in arrays for a in kv]
        return TrtCache(tensors, int(np.asarray(arrays[0][0]).shape[2]))

    def forward(self, input_ids, attention_mask, position_ids, cache: TrtCache, *,
                last_only: bool = False) -> StepOutput:
        ids = as_int64(input_ids, "input_ids")
        mask = as_int64(attention_mask, "attention_mask")
        pos = as_int64(position_ids, "position_ids")
        check_step_shapes(ids, mask, pos, cache.past_length)
        feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
        feeds.update(zip(self.past_names, cache.tensors))
        feeds = {n: t for n, t in feeds.items() if n in self.runner.tensors}
        outputs = self.runner.run(feeds)
        logits = outputs["logits"]
        if last_only:
            logits = logits[:, -1:, :]
        return StepOutput(logits=logits.float().cpu(),
                          cache=TrtCache([outputs[n] for n in self.present_names],
                                         cache.past_length + ids.shape[1]))

    def close(self) -> None:
        self.runner.close()


def _engine_for(model: Path) -> Path:
    from ..tensorrt.builder import build_engine
    engine = model.with_suffix(".engine")
    if not engine.is_file() or engine.stat().st_mtime < model.stat().st_mtime:
        build_engine(model, engine)
    return engine
