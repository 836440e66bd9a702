"""Random-code checkpoints of real model shapes: valid VPTQ format (reader validation with index
ranges and zero padding bits), published shapes, one shard per decoder layer, exportable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vptq_export.checkpoint import VPTQCheckpoint
from vptq_export.errors import VPTQError
from vptq_export.gen_checkpoint import (PRESETS, Codebook, generate_checkpoint, linear_shapes,
                                        random_packed_layer)
from vptq_export.packing import unpack_indices


def test_published_shapes():
    # Llama-3.1-8B: hidden 4096, 32 heads / 8 KV heads (head_dim 128), intermediate 14336
    assert linear_shapes(PRESETS["llama3-8b"]) == [
        ("self_attn.q_proj", 4096, 4096), ("self_attn.k_proj", 4096, 1024),
        ("self_attn.v_proj", 4096, 1024), ("self_attn.o_proj", 4096, 4096),
        ("mlp.gate_proj", 4096, 14336), ("mlp.up_proj", 4096, 14336),
        ("mlp.down_proj", 14336, 4096)]
    p70 = PRESETS["llama3-70b"]
    assert (p70["hidden_size"], p70["num_hidden_layers"], p70["num_attention_heads"],
            p70["num_key_value_heads"], p70["intermediate_size"], p70["vocab_size"]) == \
        (8192, 80, 64, 8, 28672, 128256)
    assert PRESETS["llama3-8b"]["vocab_size"] == 128256


def test_codebook_names():
    assert Codebook.parse("v8-k65536") == Codebook(8, 65536, 0)
    assert Codebook.parse("v12-k4096-256") == Codebook(12, 4096, 256)
    with pytest.raises(VPTQError, match="v<len>"):
        Codebook.parse("k65536")
    with pytest.raises(VPTQError, match="power of two"):
        Codebook.parse("v8-k1000").spec("x", 64, 64, False)


@pytest.mark.parametrize("book,in_features", [("v8-k65536", 4096), ("v6-k1024-32", 100),
                                              ("v4-k8", 33)])
def test_random_packed_layer_is_valid(book, in_features):
    spec = Codebook.parse(book).spec("l", in_features, 70, False)
    layer = random_packed_layer(spec, torch.float16, np.random.default_rng(0))
    idx, ridx = unpack_indices(layer.indices.numpy(), spec.group_size, spec.index_bits,
                               spec.res_index_bits)
    assert idx.max() < spec.num_centroids
    # uniform random codes: the mean code is (k - 1) / 2 (tolerance >= 4 standard errors)
    assert abs(idx.mean() - (spec.num_centroids - 1) / 2) < 0.05 * spec.num_centroids
    from vptq_export.checkpoint import check_index_ranges
    check_index_ranges(layer)            # includes "padding bits are zero"


def test_tiny_checkpoint_layout_and_export(tmp_path):
    out = generate_checkpoint(tmp_path / "ckpt", "tiny", "v8-k256-16", progress=False)
    ckpt = VPTQCheckpoint(out)
    specs = ckpt.validate(check_ranges=True)
    assert len(specs) == 7 * PRESETS["tiny"]["num_hidden_layers"]
    assert {(s.num_centroids, s.num_res_centroids, s.vector_len) for s in specs} == {(256, 16, 8)}
    # one shard per decoder layer (+ embedding shard + final shard)
    weight_map = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    shard_of_layer = {}
    for name, shard in weight_map.items():
        if name.startswith("model.layers."):
            shard_of_layer.setdefault(int(name.split(".")[2]), set()).add(shard)
    assert all(len(s) == 1 for s in shard_of_layer.values())
    assert len({next(iter(s)) for s in shard_of_layer.values()}) == len(shard_of_layer)

    from vptq_export.export import ExportOptions, export_model
    import onnx
    model_path = export_model(out, tmp_path / "m.onnx", ExportOptions(progress=False))
    model = onnx.load(str(model_path), load_external_data=False)
    assert sum(n.op_type == "VPTQGemm" for n in model.graph.node) == len(specs)


def test_layers_cap_and_overwrite(tmp_path, monkeypatch):
    # 8B linears, but a small vocabulary: the 2 x 1 GB embeddings are not what this tests
    monkeypatch.setitem(PRESETS, "llama3-8b", dict(PRESETS["llama3-8b"], vocab_size=256))
    out = generate_checkpoint(tmp_path / "c", "llama3-8b", "v8-k65536", layers=1, progress=False)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 1 and cfg["hidden_size"] == 4096
    ckpt = VPTQCheckpoint(out)
    assert len(ckpt.layer_names()) == 7
    spec = ckpt.layer_spec("model.layers.0.mlp.gate_proj")
    assert (spec.in_features, spec.out_features, spec.total_index_bits) == (4096, 14336, 16)
    assert ckpt.tensor_info("model.layers.0.mlp.gate_proj.indices").shape == (1, 1792, 2048)
    with pytest.raises(VPTQError, match="exists"):
        generate_checkpoint(out, "tiny", "v8-k256", progress=False)


def test_cli(tmp_path):
    from vptq_export.cli import main

    assert main(["gen-checkpoint", "--preset", "tiny", "--codebook", "v4-k16", "-o",
                 str(tmp_path / "g"), "--no-progress"]) == 0
    assert VPTQCheckpoint(tmp_path / "g").layer_spec("model.layers.1.mlp.up_proj").vector_len == 4
    assert main(["gen-checkpoint", "--preset", "tiny", "--codebook", "bogus", "-o",
                 str(tmp_path / "h"), "--no-progress"]) == 2
    assert not (tmp_path / "h").exists()
