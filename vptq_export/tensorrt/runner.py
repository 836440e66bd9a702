"""`EngineRunner`: run a serialized engine on torch CUDA tensors, by tensor name.

    runner = EngineRunner("out/model.engine")
    out = runner.run({"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                      "past_key_values.0.key": k0, ...})     # -> {"logits": ..., "present.0.key": ...}

One execution context and one CUDA stream per runner; inputs are cast to the engine's dtypes
and moved to the runner's device; outputs are freshly allocated torch CUDA tensors sized from
the context's resolved shapes (so a KV cache can be fed back as the next step's past).
`run` synchronizes its stream with the caller's current stream on both sides.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import VPTQError
from ..export.io_spec import LOGITS
from .backend import load_backend
from .builder import CapturingLogger, load_plugin_library


class EngineRunError(VPTQError):
    """The engine could not be loaded or run (the message holds TensorRT's errors)."""


_PAST = re.compile(r"^past_key_values\.(\d+)\.key$")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    is_input: bool
    dtype: object       # torch.dtype
    shape: tuple        # as declared by the engine (-1 = dynamic)


def _torch_dtype(trt, dt):
    import torch
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.bool: torch.bool, trt.int8: torch.int8, trt.uint8: torch.uint8}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dt not in table:
        raise EngineRunError(f"engine tensor type {dt} has no torch equivalent")
    return table[dt]


class EngineRunner:
    def __init__(self, engine_path: str | os.PathLike, *, backend: str | None = None,
                 plugin_library: str | os.PathLike | None = None, device: str = "cuda",
                 verbose: bool = False):
        import torch
        if not torch.cuda.is_available():
            raise EngineRunError("running a TensorRT engine needs a CUDA GPU and torch with CUDA")
        self.engine_path = Path(engine_path)
        if not self.engine_path.is_file():
            raise EngineRunError(f"{self.engine_path}: no such engine file")
        self.backend = load_backend(backend)
        trt = self.trt = self.backend.module
        self.device = torch.device(device)
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.logger = CapturingLogger(trt, verbose)
        load_plugin_library(self.backend, plugin_library)
        with torch.cuda.device(self.device):
            self.runtime = trt.Runtime(self.logger)
            if hasattr(self.runtime, "engine_host_code_allowed"):
                self.runtime.engine_host_code_allowed = True   # version-compatible plans embed the plugin
            self.engine = self.runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self.engine is None:
                raise EngineRunError(self._failure(f"{self.backend.describe()} could not deserialize "
                                                   f"{self.engine_path}"))
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise EngineRunError(self._failure(f"{self.backend.describe()} could not create an execution "
                                                   f"context for {self.engine_path}"))
            self.stream = torch.cuda.Stream(self.device)
        self.tensors: dict[str, TensorInfo] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            self.tensors[name] = TensorInfo(
                name=name, is_input=self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                dtype=_torch_dtype(trt, self.engine.get_tensor_dtype(name)),
                shape=tuple(self.engine.get_tensor_shape(name)))
        self._dummy = torch.empty(1, dtype=torch.uint8, device=self.device)

    def _failure(self, what: str) -> str:
        errors = self.logger.errors()
        return what + (":\n" + "\n".join(errors) if errors else " (TensorRT logged no error)")

    @property
    def input_names(self) -> list[str]:
        return [n for n, t in self.tensors.items() if t.is_input]

    @property
    def output_names(self) -> list[str]:
        return [n for n, t in self.tensors.items() if not t.is_input]

    def model_io(self) -> dict:
        """Geometry of the decoder: num_layers, num_kv_heads, head_dim, vocab_size, dtype (the KV
        cache's torch dtype), from the engine's tensor shapes."""
        layers = sorted(int(m.group(1)) for n in self.tensors if (m := _PAST.match(n)))
        if not layers or LOGITS not in self.tensors:
            raise EngineRunError(f"{self.engine_path} has no KV-cache decoder I/O (past_key_values.N.key, logits)")
        past = self.tensors["past_key_values.0.key"]
        return {"num_layers": len(layers), "num_kv_heads": past.shape[1], "head_dim": past.shape[3],
                "vocab_size": self.tensors[LOGITS].shape[-1], "dtype": past.dtype,
                "logits_dtype": self.tensors[LOGITS].dtype}

    def profile_shapes(self, name: str) -> tuple:
        """(min, opt, max) of input `name` in the engine's optimization profile 0."""
        return tuple(tuple(s) for s in self.engine.get_tensor_profile_shape(name, 0))

    def run(self, inputs: dict) -> dict:
        """Runs one inference. `inputs`: {name: torch tensor (any device; cast to the engine's dtype)};
        every engine input must be given. Returns {output name: torch CUDA tensor}."""
        import torch
        missing = [n for n in self.input_names if n not in inputs]
        unknown = [n for n in inputs if n not in self.tensors or not self.tensors[n].is_input]
        if missing or unknown:
            raise EngineRunError(f"engine inputs: missing {missing}, unknown {unknown} (expected {self.input_names})")
        caller = torch.cuda.current_stream(self.device)
        keep = []
        with torch.cuda.device(self.device):
            for name in self.input_names:
                info = self.tensors[name]
                t = torch.as_tensor(inputs[name]).to(device=self.device, dtype=info.dtype).contiguous()
                keep.append(t)
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    lo, _, hi = self.profile_shapes(name)
                    raise EngineRunError(self._failure(f"input {name}: shape {tuple(t.shape)} is outside the "
                                                       f"engine's profile (min {lo}, max {hi})"))
                self.context.set_tensor_address(name, t.data_ptr() if t.numel() else self._dummy.data_ptr())
            outputs = {}
            for name in self.output_names:
                shape = tuple(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise EngineRunError(f"output {name}: shape {shape} is not resolved by the given inputs")
                t = torch.empty(shape, dtype=self.tensors[name].dtype, device=self.device)
                outputs[name] = t
                self.context.set_tensor_address(name, t.data_ptr() if t.numel() else self._dummy.data_ptr())
            self.stream.wait_stream(caller)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise EngineRunError(self._failure(f"execute_async_v3 failed for {self.engine_path}"))
            caller.wait_stream(self.stream)
            for t in keep + list(outputs.values()):
                t.record_stream(self.stream)
        return outputs

    def step(self, input_ids, attention_mask, position_ids, past: list[tuple] | None = None):
        """One decoder step with a KV cache: `past` is [(key, value)] per layer ([batch, kv_heads,
        past, head_dim]; None = empty). Returns (logits, present) with present in the same form."""
        import torch
        io = self.model_io()
        batch = input_ids.shape[0]
        if past is None:
            empty = torch.empty((batch, io["num_kv_heads"], 0, io["head_dim"]), dtype=io["dtype"], device=self.device)
            past = [(empty, empty)] * io["num_layers"]
        if len(past) != io["num_layers"]:
            raise EngineRunError(f"past has {len(past)} layers, the engine {io['num_layers']}")
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
        for i, (k, v) in enumerate(past):
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = k, v
        feeds = {n: t for n, t in feeds.items() if n in self.tensors}
        out = self.run(feeds)
        present = [(out[f"present.{i}.key"], out[f"present.{i}.value"]) for i in range(io["num_layers"])]
        return out[LOGITS], present

    def close(self) -> None:
        self.context = None
        self.engine = None
        self.runtime = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
