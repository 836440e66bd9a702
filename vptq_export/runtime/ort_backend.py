"""ONNX Runtime backend for an exported model (CPU or CUDA execution provider, our op library
loaded by `vptq_export.ort_session.create_session`).

Every step runs through IO binding: the KV cache is a list of OrtValues that live on the
execution provider's device; `present.*` outputs are bound to that device and become the next
step's `past_key_values.*` inputs unchanged, so a decode step copies only the token ids /
positions / mask in and the logits out (no host round trip of the cache). Logits are read through
DLPack (`torch.from_dlpack`) and, with `last_only`, sliced on the device before the copy.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..errors import BackendUnavailableError, UnsupportedModelError
from .backend import Backend, KVCache, ModelIO, StepOutput, as_int64, check_step_shapes

_ORT_TYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16,
              "tensor(bfloat16)": torch.bfloat16}
_NP_TYPES = {torch.float32: np.float32, torch.float16: np.float16}
_ONNX_BF16 = 16        # onnx.TensorProto.BFLOAT16
_PAST = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
# backend name -> `providers` argument of vptq_export.ort_session.create_session
PROVIDERS = {"ort-cpu": "cpu", "ort-cuda": "cuda"}


def describe_session(session, source: str = "model") -> tuple[ModelIO, list[str], list[str]]:
    """ModelIO plus the past input names and present output names, in layer order, read from a
    session's inputs/outputs; a model that breaks the I/O contract is reported by name."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    for name in ("input_ids", "attention_mask", "position_ids"):
        if name not in inputs:
            raise UnsupportedModelError(f"{source}: no input {name!r} (inputs: {sorted(inputs)}); "
                                        "expected the KV-cache I/O contract of docs/runtime.md")
    if "logits" not in outputs:
        raise UnsupportedModelError(f"{source}: no output 'logits' (outputs: {sorted(outputs)})")
    layers = sorted({int(m.group(1)) for n in inputs if (m := _PAST.match(n))})
    if not layers or layers != list(range(len(layers))):
        raise UnsupportedModelError(f"{source}: past_key_values.<i>.key|value inputs missing or "
                                    f"not numbered 0..n-1 (found layers {layers})")
    past, present = [], []
    for i in layers:
        for kind in ("key", "value"):
            if f"past_key_values.{i}.{kind}" not in inputs:
                raise UnsupportedModelError(f"{source}: no input past_key_values.{i}.{kind}")
            if f"present.{i}.{kind}" not in outputs:
                raise UnsupportedModelError(f"{source}: no output present.{i}.{kind}")
            past.append(f"past_key_values.{i}.{kind}")
            present.append(f"present.{i}.{kind}")
    first = inputs[past[0]]
    dtype = _ORT_TYPES.get(first.type)
    if dtype is None:
        raise UnsupportedModelError(f"{source}: {first.name} has type {first.type}; expected "
                                    "float, float16 or bfloat16")
    shape = first.shape
    if len(shape) != 4 or not all(isinstance(d, int) for d in (shape[1], shape[3])):
        raise UnsupportedModelError(f"{source}: {first.name} shape {shape}; expected "
                                    "[batch, kv_heads, past_seq, head_dim] with static kv_heads "
                                    "and head_dim")
    vocab = outputs["logits"].shape[-1]
    io = ModelIO(num_layers=len(layers), num_kv_heads=shape[1], head_dim=shape[3],
                 vocab_size=vocab if isinstance(vocab, int) else -1, dtype=dtype)
    return io, past, present


class OrtCache(KVCache):
    def __init__(self, values: list, past_length: int):
        self.values = values                # OrtValue per past input, in `past_names` order
        self._past_length = past_length

    @property
    def past_length(self) -> int:
        return self._past_length

    def to_arrays(self):
        host = [_ortvalue_to_torch(v, to_cpu=True).float().numpy().copy() for v in self.values]
        return list(zip(host[0::2], host[1::2]))


def _ortvalue_to_torch(value, *, to_cpu: bool) -> torch.Tensor:
    """An OrtValue as a torch tensor (zero copy through DLPack where torch can see the device)."""
    try:
        t = torch.from_dlpack(value)
    except (RuntimeError, TypeError, BufferError):
        # e.g. a CUDA OrtValue with a CPU-only torch: copy through numpy
        t = torch.from_numpy(value.numpy())
    return t.cpu() if to_cpu else t


class OrtBackend(Backend):
    """`OrtBackend("model.onnx", "ort-cpu" | "ort-cuda")`, or over an existing `session`."""

    def __init__(self, model_path: str | Path | None = None, kind: str = "ort-cpu", *,
                 session=None, threads: int | None = None):
        if session is None:
            if model_path is None:
                raise ValueError("OrtBackend needs a model path or a session")
            if kind not in PROVIDERS:
                raise ValueError(f"unknown ONNX Runtime backend {kind!r} (choose from "
                                 f"{', '.join(PROVIDERS)})")
            session = open_session(model_path, PROVIDERS[kind], threads)
        self.session = session
        self.model_path = model_path
        active = session.get_providers()
        if kind == "ort-cuda" and "CUDAExecutionProvider" not in active:
            raise BackendUnavailableError(
                f"{model_path}: the session has no CUDA execution provider (active: {active}); "
                "install onnxruntime-gpu and build the op library with CUDA")
        if "CUDAExecutionProvider" in active:
            options = session.get_provider_options().get("CUDAExecutionProvider", {})
            self.device, self.device_id = "cuda", int(options.get("device_id", 0))
        else:
            self.device, self.device_id = "cpu", 0
        self.name = "ort-cuda" if self.device == "cuda" else "ort-cpu"
        self.io, self.past_names, self.present_names = describe_session(
            session, str(model_path or "session"))

    # -------------------------------------------------------------- cache
    def _ortvalue(self, array: np.ndarray):
        """A cache tensor as an OrtValue on the session's device. bfloat16 (no numpy dtype) is
        made on the host; ORT copies it to the device when it is bound, once."""
        import onnxruntime as ort
        if self.io.dtype == torch.bfloat16:
            bits = torch.as_tensor(np.asarray(array, np.float32)).to(torch.bfloat16)
            return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                np.ascontiguousarray(bits.view(torch.int16).numpy().view(np.uint16)), _ONNX_BF16)
        host = np.ascontiguousarray(np.asarray(array, dtype=_NP_TYPES[self.io.dtype]))
        return ort.OrtValue.ortvalue_from_numpy(host, self.device, self.device_id)

    def new_cache(self, batch_size: int) -> OrtCache:
        empty = np.zeros((batch_size, self.io.num_kv_heads, 0, self.io.head_dim), np.float32)
        return OrtCache([self._ortvalue(empty) for _ in self.past_names], 0)

    def cache_from_arrays(self, arrays) -> OrtCache:
        if len(arrays) != self.io.num_layers:
            raise ValueError(f"{len(arrays)} layers of KV given, the model has {self.io.num_layers}")
        values = [self._ortvalue(np.asarray(a, np.float32)) for kv in arrays for a in kv]
        return OrtCache(values, int(np.asarray(arrays[0][0]).shape[2]))

    # -------------------------------------------------------------- step
    def forward(self, input_ids, attention_mask, position_ids, cache: OrtCache, *,
                last_only: bool = False) -> StepOutput:
        ids = as_int64(input_ids, "input_ids")
        mask = as_int64(attention_mask, "attention_mask")
        pos = as_int64(position_ids, "position_ids")
        check_step_shapes(ids, mask, pos, cache.past_length)
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", ids.numpy())
        binding.bind_cpu_input("attention_mask", mask.numpy())
        binding.bind_cpu_input("position_ids", pos.numpy())
        for name, value in zip(self.past_names, cache.values):
            binding.bind_ortvalue_input(name, value)
        binding.bind_output("logits", self.device, self.device_id)
        for name in self.present_names:
            binding.bind_output(name, self.device, self.device_id)
        self.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        logits = _ortvalue_to_torch(outputs[0], to_cpu=False)
        if last_only:
            logits = logits[:, -1:, :]
        logits = logits.float().cpu()
        if logits.data_ptr() == _data_ptr(outputs[0]):
            logits = logits.clone()         # don't alias ORT's buffer past this step
        return StepOutput(logits=logits,
                          cache=OrtCache(list(outputs[1:]), cache.past_length + ids.shape[1]))

    def close(self) -> None:
        self.session = None


def _data_ptr(value) -> int:
    try:
        return int(value.data_ptr())
    except Exception:       # noqa: BLE001 - only used to decide whether to copy
        return -1


def open_session(model_path: str | Path, providers: str, threads: int | None = None):
    """An InferenceSession with our op library registered (`ort_session.create_session`)."""
    path = Path(model_path)
    if not path.is_file():
        raise UnsupportedModelError(f"{path}: no such ONNX model file")
    from ..ort_session import create_session
    return create_session(path, providers, threads)
