"""Write VPTQ checkpoints in VPTQ-community / HF layout, streaming shard by shard.

    with CheckpointWriter(out_dir, hf_config) as w:     # hf_config: the FP model's config dict
        w.add_tensor("model.embed_tokens.weight", emb)
        w.add_layer(quantized_linear)                 # tensors named <layer>.<suffix>
        w.end_shard()                                 # optional: bound memory (one shard a call)
    # -> config.json (with quantization_config), model-0000x-of-0000N.safetensors (or
    #    model.safetensors when one shard), model.safetensors.index.json when sharded.

The directory appears atomically: everything is written to a temporary sibling directory that is
renamed over `out_dir` at the end; on an exception nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from .quantized_linear import QuantizedLinear


class CheckpointWriter:
    def __init__(self, out_dir: str | os.PathLike, hf_config: dict, *,
                 shared_layer_config: dict | None = None, overwrite: bool = False,
                 extra_files: dict[str, str | bytes] | None = None):
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not overwrite:
            raise FileExistsError(f"{self.out_dir} exists (pass overwrite=True to replace it)")
        self.hf_config = dict(hf_config)
        self.shared_layer_config = shared_layer_config
        self.extra_files = extra_files or {}
        self.config_for_layers: dict[str, dict] = {}
        self._pending: dict[str, torch.Tensor] = {}
        self._shards: list[tuple[str, list[str]]] = []
        self._tmp: Path | None = None
        self._overwrite = overwrite

    def __enter__(self) -> "CheckpointWriter":
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.", dir=self.out_dir.parent))
        return self

    def add_tensor(self, name: str, tensor: torch.Tensor) -> None:
        if name in self._pending or any(name in names for _, names in self._shards):
            raise ValueError(f"tensor {name} written twice")
        self._pending[name] = tensor.detach().contiguous().cpu()

    def add_layer(self, layer: QuantizedLinear, *, record_config: bool = True) -> None:
        for suffix, tensor in layer.tensors().items():
            self.add_tensor(f"{layer.spec.name}.{suffix}", tensor)
        if record_config:
            self.config_for_layers[layer.spec.name] = layer.spec.to_config()

    def end_shard(self) -> None:
        if not self._pending:
            return
        name = f"shard-{len(self._shards):05d}.safetensors"
        save_file(self._pending, str(self._tmp / name), metadata={"format": "pt"})
        self._shards.append((name, list(self._pending)))
        self._pending = {}

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        try:
            self._finish()
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def _finish(self) -> None:
        self.end_shard()
        n = len(self._shards)
        weight_map = {}
        for i, (tmp_name, names) in enumerate(self._shards):
            final = "model.safetensors" if n == 1 else f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.rename(self._tmp / tmp_name, self._tmp / final)
            weight_map.update({t: final for t in names})
        if n > 1:
            total = sum((self._tmp / f).stat().st_size for f in set(weight_map.values()))
            (self._tmp / "model.safetensors.index.json").write_text(json.dumps(
                {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
        quant = {"quant_method": "vptq", "config_for_layers": self.config_for_layers}
        if self.shared_layer_config:
            quant["shared_layer_config"] = self.shared_layer_config
        config = dict(self.hf_config)
        config["quantization_config"] = quant
        (self._tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        for fname, content in self.extra_files.items():
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(self._tmp / fname, mode) as f:
                f.write(content)
        if self.out_dir.exists():
            shutil.rmtree(self.out_dir)
        os.rename(self._tmp, self.out_dir)
