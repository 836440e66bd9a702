"""Reader for VPTQ checkpoints in VPTQ-community / HF layout.

A directory with `config.json` (with `quantization_config`, possibly under `text_config`) and
safetensors weights: `model.safetensors`, several `*.safetensors`, or shards listed in
`model.safetensors.index.json`. Tensors are opened by name (safetensors mmap); the checkpoint is
never read whole.

    ckpt = VPTQCheckpoint("dir")
    for name in ckpt.layer_names():
        layer = ckpt.layer(name)          # LayerSpec + validated tensors, loaded lazily
    ckpt.tensor("model.embed_tokens.weight")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from safetensors import safe_open

from .errors import CheckpointError
from .layer_spec import LayerSpec
from .quantized_linear import TENSOR_SUFFIXES, QuantizedLinear

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_DTYPE_NAMES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
                "I32": torch.int32, "I16": torch.int16, "I64": torch.int64, "U8": torch.uint8,
                "I8": torch.int8, "F64": torch.float64, "BOOL": torch.bool, "U16": torch.uint16,
                "U32": torch.uint32}


@dataclass(frozen=True)
class TensorInfo:
    file: str
    dtype: torch.dtype
    shape: tuple[int, ...]


class VPTQCheckpoint:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise CheckpointError("checkpoint directory does not exist or is not a directory",
                                  file=str(self.path))
        self.config_path = self.path / "config.json"
        if not self.config_path.is_file():
            raise CheckpointError("no config.json: not a Hugging Face / VPTQ checkpoint directory",
                                  file=str(self.config_path))
        try:
            self.config = json.loads(self.config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"config.json is not valid JSON: {exc}",
                                  file=str(self.config_path)) from None
        if not isinstance(self.config, dict):
            raise CheckpointError("config.json must hold a JSON object", file=str(self.config_path))
        self.model_config, self.quant_config = self._find_quant_config()
        self._tensors = self._index_tensors()
        self._handles: dict[str, object] = {}

    # ------------------------------------------------------------------ config
    def _find_quant_config(self) -> tuple[dict, dict]:
        cfg = self.config
        for candidate in (cfg, cfg.get("text_config")):
            if isinstance(candidate, dict) and isinstance(candidate.get("quantization_config"), dict):
                quant = candidate["quantization_config"]
                # VLMs: quantization_config sits in text_config; the architecture is there too.
                model_cfg = candidate if candidate is not cfg else cfg
                break
        else:
            raise CheckpointError("config.json has no quantization_config (top level or under "
                                  "text_config): not a VPTQ checkpoint", file=str(self.config_path))
        method = quant.get("quant_method")
        if method != "vptq":
            raise CheckpointError("quantization_config.quant_method is not 'vptq'",
                                  file=str(self.config_path), expected="'vptq'", found=repr(method))
        for key in ("config_for_layers", "shared_layer_config"):
            if key in quant and quant[key] is not None and not isinstance(quant[key], dict):
                raise CheckpointError(f"quantization_config.{key} must be an object",
                                      file=str(self.config_path))
        return model_cfg, quant

    @property
    def dtype(self) -> torch.dtype:
        name = self.model_config.get("torch_dtype") or self.model_config.get("dtype") or "float16"
        return {"float16": torch.float16, "bfloat16": torch.bfloat16,
                "float32": torch.float32}.get(str(name).replace("torch.", ""), torch.float16)

    # ------------------------------------------------------------------ tensors
    def _index_tensors(self) -> dict[str, TensorInfo]:
        files: list[Path]
        index = self.path / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CheckpointError(f"index is not a safetensors index (weight_map): {exc}",
                                      file=str(index)) from None
            files = sorted({self.path / f for f in weight_map.values()})
            for f in files:
                if not f.is_file():
                    raise CheckpointError("shard listed in model.safetensors.index.json is missing",
                                          file=str(f))
        else:
            files = sorted(self.path.glob("*.safetensors"))
        if not files:
            pickled = sorted(p.name for p in self.path.glob("*.bin")) + \
                sorted(p.name for p in self.path.glob("*.pt"))
            if pickled:
                raise CheckpointError(
                    f"only pickled weights ({', '.join(pickled[:3])}) found: vptq-export reads "
                    "safetensors only, because unpickling runs arbitrary code and cannot be "
                    "memory-mapped; convert with safetensors' convert script or "
                    "save_pretrained(..., safe_serialization=True)", file=str(self.path))
            raise CheckpointError("no *.safetensors weights in the checkpoint directory",
                                  file=str(self.path))
        out: dict[str, TensorInfo] = {}
        for f in files:
            for name, info in _read_header(f).items():
                if name in out:
                    raise CheckpointError("tensor stored in two files", file=str(f), tensor=name,
                                          found=out[name].file)
                out[name] = info
        return out

    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def tensor_info(self, name: str) -> TensorInfo:
        try:
            return self._tensors[name]
        except KeyError:
            raise CheckpointError("tensor is missing from the checkpoint", file=str(self.path),
                                  tensor=name) from None

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def tensor(self, name: str) -> torch.Tensor:
        """Load one tensor (only this tensor is read from disk)."""
        info = self.tensor_info(name)
        handle = self._handles.get(info.file)
        if handle is None:
            handle = safe_open(info.file, framework="pt")
            self._handles[info.file] = handle
        return handle.get_tensor(name)

    # ------------------------------------------------------------------ layers
    @cached_property
    def _layer_configs(self) -> dict[str, dict]:
        per_layer = self.quant_config.get("config_for_layers") or {}
        shared = self.quant_config.get("shared_layer_config") or {}
        names = {n[: -len(".centroids.weight")] for n in self._tensors
                 if n.endswith(".centroids.weight") and not n.endswith(
                     (".res_centroids.weight", ".outlier_centroids.weight"))}
        names |= set(per_layer)
        out = {}
        for name in sorted(names, key=_natural_key):
            if name in per_layer:
                out[name] = per_layer[name]
            elif name.rsplit(".", 1)[-1] in shared:
                out[name] = shared[name.rsplit(".", 1)[-1]]
            else:
                raise CheckpointError("VPTQ tensors found but no layer config in config_for_layers "
                                      "(full name) or shared_layer_config (leaf name)",
                                      file=str(self.config_path), layer=name)
        if not out:
            raise CheckpointError("quantization_config lists no VPTQ layers and no "
                                  "*.centroids.weight tensors exist", file=str(self.config_path))
        return out

    def layer_names(self) -> list[str]:
        return list(self._layer_configs)

    def layer_spec(self, name: str) -> LayerSpec:
        try:
            cfg = self._layer_configs[name]
        except KeyError:
            raise CheckpointError("no such VPTQ layer", file=str(self.config_path), layer=name,
                                  expected=f"one of {self.layer_names()[:4]}...") from None
        return LayerSpec.from_config(name, cfg, file=str(self.config_path))

    def check_layer(self, name: str) -> LayerSpec:
        """Validate one layer's tensors (names, shapes, dtypes) from headers only."""
        spec = self.layer_spec(name)
        for suffix, (shape, kind) in spec.expected_tensors().items():
            full = f"{name}.{suffix}"
            if full not in self._tensors:
                raise CheckpointError("tensor required by the layer config is missing",
                                      file=str(self.path), layer=name, tensor=full,
                                      expected=f"{kind} {list(shape)}", found="nothing")
            info = self._tensors[full]
            if info.shape != tuple(shape):
                raise CheckpointError("wrong shape", file=info.file, layer=name, tensor=full,
                                      expected=list(shape), found=list(info.shape))
            if not _dtype_matches(info.dtype, kind):
                raise CheckpointError("wrong dtype", file=info.file, layer=name, tensor=full,
                                      expected=kind, found=str(info.dtype).replace("torch.", ""))
        return spec

    def layer(self, name: str, *, check_ranges: bool = False) -> QuantizedLinear:
        """Load one layer's tensors, validated. `check_ranges` also checks every index < k and
        that perm is a permutation (reads and decodes all indices: slower)."""
        spec = self.check_layer(name)
        kwargs = {}
        for field_name, suffix in TENSOR_SUFFIXES.items():
            full = f"{name}.{suffix}"
            if suffix in spec.expected_tensors():
                kwargs[field_name] = self.tensor(full)
        layer = QuantizedLinear(spec=spec, **kwargs)
        if check_ranges:
            check_index_ranges(layer, file=self._tensors[f"{name}.indices"].file)
        return layer

    def layers(self, *, check_ranges: bool = False):
        for name in self.layer_names():
            yield self.layer(name, check_ranges=check_ranges)

    def validate(self, *, check_ranges: bool = False) -> list[LayerSpec]:
        """Check every layer (headers; plus index ranges when asked). Raises on the first error."""
        specs = []
        for name in self.layer_names():
            if check_ranges:
                specs.append(self.layer(name, check_ranges=True).spec)
            else:
                specs.append(self.check_layer(name))
        return specs

    def non_vptq_tensor_names(self) -> list[str]:
        """Tensors that do not belong to a VPTQ layer (embeddings, norms, lm_head, ...)."""
        prefixes = tuple(f"{n}." for n in self.layer_names())
        return [n for n in self._tensors if not n.startswith(prefixes)]


def check_index_ranges(layer: QuantizedLinear, *, file: str | None = None) -> None:
    s = layer.spec
    idx, ridx = layer.decoded_indices()
    checks = [("indices", idx, s.num_centroids)]
    if ridx is not None:
        checks.append(("res_indices", ridx, s.num_res_centroids))
    if s.has_outliers:
        checks.append(("outlier_indices", layer.decoded_outlier_indices(), s.outlier_num_centroids))
    for what, values, limit in checks:
        if values.size and int(values.max()) >= limit:
            raise CheckpointError("index out of codebook range", file=file, layer=s.name,
                                  tensor=f"{s.name}.{what}", expected=f"< {limit}",
                                  found=int(values.max()))
    if s.is_indice_packed and s.packed_words_per_row * 32 > s.group_size * s.total_index_bits:
        # Padding bits at the end of each row must be zero (pack_index writes zeros).
        from .packing import pack_indices
        repacked = pack_indices(idx, ridx, s.index_bits, s.res_index_bits)
        if not (repacked == layer.indices.numpy()).all():
            raise CheckpointError("packed index rows have non-zero padding bits", file=file,
                                  layer=s.name, tensor=f"{s.name}.indices")
    if s.enable_perm:
        perm = layer.decoded_perm()
        if sorted(perm.tolist()) != list(range(s.in_features)):
            raise CheckpointError("perm is not a permutation of the input columns", file=file,
                                  layer=s.name, tensor=f"{s.name}.perm",
                                  expected=f"each of 0..{s.in_features - 1} once",
                                  found="repeated or out-of-range values")


def _dtype_matches(dtype: torch.dtype, kind: str) -> bool:
    if kind == "float":
        return dtype in _FLOAT_DTYPES
    allowed = {"int32": (torch.int32,), "int16": (torch.int16,), "float16": (torch.float16,),
               "int16|int64": (torch.int16, torch.int64)}[kind]
    return dtype in allowed


def _read_header(path: Path) -> dict[str, TensorInfo]:
    """Parse a safetensors header (8-byte length + JSON) without touching tensor data."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError("file shorter than the 8-byte header length")
            n = int.from_bytes(raw, "little")
            if n > 100 * 1024 * 1024:
                raise ValueError(f"header length {n} is implausible")
            header = json.loads(f.read(n))
        size = path.stat().st_size
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"not a readable safetensors file: {exc}", file=str(path)) from None
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _DTYPE_NAMES[meta["dtype"]]
            shape = tuple(int(d) for d in meta["shape"])
            start, end = meta["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError("malformed safetensors header entry", file=str(path),
                                  tensor=name) from None
        if 8 + n + end > size:
            raise CheckpointError("safetensors file is truncated", file=str(path), tensor=name,
                                  expected=f">= {8 + n + end} bytes", found=f"{size} bytes")
        out[name] = TensorInfo(file=str(path), dtype=dtype, shape=shape)
    return out


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p for p in name.split(".")]
