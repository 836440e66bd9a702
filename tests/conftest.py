"""Shared fixtures: tiny trained HF models and VPTQ checkpoints quantized from them.

    def test_something(tiny_fp_model, tiny_vptq_checkpoint):
        fp_dir = tiny_fp_model("qwen2")                       # HF fp16 model dir (+ tokenizer)
        ckpt = tiny_vptq_checkpoint("llama", vector_len=4, res_centroids=16, perm=True)

Both are session-scoped factories, cached per argument set. Built directories are also kept in
pytest's cache (`.pytest_cache/d/vptq-models`, cleared by `pytest --cache-clear`), keyed by a hash
of the code that makes them and the torch/transformers versions, so repeated runs on one machine
do not retrain. Set VPTQ_TEST_NO_DISK_CACHE=1 to build everything fresh in tmp dirs.
Treat the returned directories as read-only: copy them before modifying anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

# Sources whose change invalidates the cached directories of each kind.
_FP_SOURCES = ("tiny_models.py", "tiny_text.py")
_VPTQ_SOURCES = _FP_SOURCES + ("checkpoint_writer.py", "layer_spec.py", "packing.py",
                               "quantized_linear.py", "quantize/__init__.py",
                               "quantize/calibration.py", "quantize/kmeans.py",
                               "quantize/linear.py", "quantize/model.py", "quantize/options.py")


def _code_fingerprint(sources) -> str:
    import torch
    import transformers

    import vptq_export

    root = Path(vptq_export.__file__).parent
    h = hashlib.sha256(f"{torch.__version__} {transformers.__version__}".encode())
    for rel in sources:
        path = root / rel
        h.update(rel.encode())
        h.update(path.read_bytes() if path.is_file() else b"-")
    return h.hexdigest()[:16]


class _ModelStore:
    """Builds directories once per key: in pytest's cache when allowed, else in tmp."""

    def __init__(self, tmp_factory, cache_root: Path | None):
        self.tmp_factory = tmp_factory
        self.cache_root = cache_root
        self.memo: dict[str, Path] = {}

    def get(self, key: str, build) -> Path:
        if key in self.memo:
            return self.memo[key]
        name = hashlib.sha256(key.encode()).hexdigest()[:24]
        if self.cache_root is not None:
            final = self.cache_root / name
            if not (final / "config.json").is_file():
                staging = self.tmp_factory.mktemp("build") / name
                build(staging)
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copytree(staging, final.with_name(final.name + f".tmp{os.getpid()}"))
                    os.rename(final.with_name(final.name + f".tmp{os.getpid()}"), final)
                except OSError:     # another pytest process finished first: use its copy
                    shutil.rmtree(final.with_name(final.name + f".tmp{os.getpid()}"),
                                  ignore_errors=True)
        else:
            final = self.tmp_factory.mktemp("models") / name
            build(final)
        self.memo[key] = final
        return final


@pytest.fixture(scope="session")
def _model_store(tmp_path_factory, pytestconfig) -> _ModelStore:
    cache_root = None
    # getattr: with `-p no:cacheprovider` the config has no cache attribute at all
    if not os.environ.get("VPTQ_TEST_NO_DISK_CACHE") and getattr(pytestconfig, "cache", None) is not None:
        cache_root = Path(pytestconfig.cache.mkdir("vptq-models"))
    return _ModelStore(tmp_path_factory, cache_root)


@pytest.fixture(scope="session")
def tiny_fp_model(_model_store):
    """Factory: tiny_fp_model(family="llama", seed=0) -> Path of a trained fp16 HF model dir
    (families: llama, qwen2, mistral; see vptq_export.tiny_models)."""
    from vptq_export.tiny_models import make_tiny_model

    def make(family: str = "llama", seed: int = 0) -> Path:
        key = json.dumps(["fp", family, seed, _code_fingerprint(_FP_SOURCES)])
        return _model_store.get(key, lambda d: make_tiny_model(family, d, seed=seed))

    return make


@pytest.fixture(scope="session")
def tiny_vptq_checkpoint(_model_store, tiny_fp_model):
    """Factory: tiny_vptq_checkpoint(family="llama", seed=0, **QuantizeOptions fields) -> Path of
    a VPTQ checkpoint quantized from tiny_fp_model(family) (defaults: v8 k256, packed)."""
    from vptq_export.quantize import QuantizeOptions, quantize_model

    def make(family: str = "llama", **options) -> Path:
        opts = QuantizeOptions(**options)            # validates the option names
        fp = tiny_fp_model(family)
        key = json.dumps(["vptq", family, sorted(opts.__dict__.items()),
                          _code_fingerprint(_VPTQ_SOURCES)], default=str)
        return _model_store.get(key, lambda d: quantize_model(fp, d, opts, progress=False))

    return make


@pytest.fixture(scope="session")
def make_ckpt(tiny_vptq_checkpoint):
    """Alias of tiny_vptq_checkpoint: make_ckpt(family="llama", **quantize_options) -> Path."""
    return tiny_vptq_checkpoint


@pytest.fixture(scope="session")
def synthetic_checkpoint(tmp_path_factory):
    """Factory: synthetic_checkpoint(layers, *, dtype=torch.float16, extra_tensors=None,
    hf_config=None, shard_every=0, seed=0) -> Path.

    `layers`: LayerSpecs (filled with `synthetic.random_layer`) or QuantizedLinears, written with
    CheckpointWriter (plus `extra_tensors` {name: tensor}; default a small embedding) under a
    fresh tmp dir. `shard_every=n` ends a shard after every n layers (sharded layout). Returns the
    directory; tests may modify it (each call makes a new one)."""
    import torch

    from vptq_export.checkpoint_writer import CheckpointWriter
    from vptq_export.layer_spec import LayerSpec
    from vptq_export.synthetic import random_layer

    def make(layers, *, dtype=torch.float16, extra_tensors=None, hf_config=None,
             shard_every: int = 0, seed: int = 0) -> Path:
        out = tmp_path_factory.mktemp("synthetic") / "ckpt"
        cfg = hf_config or {"model_type": "llama", "torch_dtype": str(dtype).replace("torch.", "")}
        extra = extra_tensors if extra_tensors is not None else {
            "model.embed_tokens.weight": torch.zeros(16, 8, dtype=dtype)}
        with CheckpointWriter(out, cfg) as w:
            for i, layer in enumerate(layers):
                if isinstance(layer, LayerSpec):
                    layer = random_layer(layer, dtype, seed + i)
                w.add_layer(layer)
                if shard_every and (i + 1) % shard_every == 0:
                    w.end_shard()
            for name, tensor in extra.items():
                w.add_tensor(name, tensor)
        return out

    return make
