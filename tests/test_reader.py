"""Checkpoint reader round trip: every format option alone and combined is written with
CheckpointWriter and read back bit-exactly; config variants (shared_layer_config, text_config,
extra keys, mis-serialised bias, shards) are read correctly."""

from __future__ import annotations

import json

import pytest
import torch

from vptq_export.checkpoint import VPTQCheckpoint
from vptq_export.reference.dequant import dequantize
from vptq_export.synthetic import make_spec, random_layer

NAME = "model.layers.0.mlp.up_proj"

# Each format option alone, then combinations (make_spec keywords; I=64, O=48, v=8, k=256).
OPTION_SETS = {
    "plain": {},
    "residual": {"k_res": 16},
    "outliers": {"outlier_size": 8},
    "perm": {"perm": True},
    "norm": {"norm": True},
    "groups": {"group_num": 2},
    "bias": {"bias": True},
    "unpacked": {"packed": False},
    "unpacked_residual": {"packed": False, "k_res": 16},
    "indices_as_float": {"packed": False, "indices_as_float": True, "k_res": 16},
    "out_not_multiple_of_v": {"out_features": 45},
    "v12_k4096_res256": {"v": 12, "k": 4096, "k_res": 256, "out_features": 50},
    "big_codes_k65536": {"k": 65536, "k_res": 65536, "in_features": 16, "out_features": 16},
    "combined": {"k_res": 16, "outlier_size": 8, "perm": True, "norm": True, "group_num": 2,
                 "bias": True, "out_features": 45},
    "combined_unpacked": {"k_res": 4, "outlier_size": 4, "perm": True, "norm": True,
                          "group_num": 4, "bias": True, "out_features": 45, "packed": False},
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("option_set", list(OPTION_SETS))
def test_round_trip(synthetic_checkpoint, option_set, dtype):
    spec = make_spec(NAME, **OPTION_SETS[option_set])
    layer = random_layer(spec, dtype, seed=11)
    emb = torch.randn(16, 8).to(dtype)
    d = synthetic_checkpoint([layer], dtype=dtype, extra_tensors={"model.embed_tokens.weight": emb})

    ckpt = VPTQCheckpoint(d)
    assert ckpt.layer_names() == [NAME]
    assert ckpt.dtype == dtype
    assert ckpt.non_vptq_tensor_names() == ["model.embed_tokens.weight"]
    assert torch.equal(ckpt.tensor("model.embed_tokens.weight"), emb)
    read = ckpt.layer(NAME, check_ranges=True)
    assert read.spec == spec
    written, loaded = layer.tensors(), read.tensors()
    assert set(loaded) == set(written) == set(spec.expected_tensors())
    for suffix, tensor in written.items():
        assert loaded[suffix].dtype == tensor.dtype, suffix
        assert torch.equal(loaded[suffix].view(torch.uint8) if tensor.dtype.is_floating_point
                           else loaded[suffix], tensor.view(torch.uint8)
                           if tensor.dtype.is_floating_point else tensor), suffix
    assert torch.equal(dequantize(read), dequantize(layer))
    if spec.enable_perm:
        expected = torch.int16 if spec.is_indice_packed else torch.int64
        assert read.perm.dtype == expected


def test_values_above_32767_survive(synthetic_checkpoint):
    # k = 65536: indices >= 32768 have the int16 sign bit set; they must read back unsigned.
    spec = make_spec(NAME, in_features=64, out_features=16, k=65536, packed=False, perm=True)
    layer = random_layer(spec, torch.float16, seed=5)
    ckpt = VPTQCheckpoint(synthetic_checkpoint([layer]))
    main, _ = ckpt.layer(NAME).decoded_indices()
    assert main.min() >= 0 and main.max() >= 32768 and main.max() < 65536


def _rewrite_config(d, edit):
    path = d / "config.json"
    cfg = json.loads(path.read_text())
    cfg = edit(cfg) or cfg
    path.write_text(json.dumps(cfg))


def test_shared_layer_config(synthetic_checkpoint):
    specs = [make_spec(f"model.layers.{i}.mlp.{leaf}", k_res=16)
             for i in range(2) for leaf in ("up_proj", "down_proj")]
    d = synthetic_checkpoint(specs)

    def to_shared(cfg):
        per = cfg["quantization_config"].pop("config_for_layers")
        cfg["quantization_config"]["shared_layer_config"] = {
            "up_proj": per["model.layers.0.mlp.up_proj"],
            "down_proj": per["model.layers.0.mlp.down_proj"]}
    _rewrite_config(d, to_shared)
    ckpt = VPTQCheckpoint(d)
    assert ckpt.layer_names() == [s.name for s in sorted(specs, key=lambda s: s.name)]
    for spec in specs:
        assert ckpt.layer(spec.name, check_ranges=True).spec == spec


def test_full_name_config_wins_over_shared(synthetic_checkpoint):
    spec = make_spec(NAME, k=256)
    d = synthetic_checkpoint([spec])
    wrong = make_spec(NAME, k=16).to_config()
    _rewrite_config(d, lambda c: c["quantization_config"].update(
        shared_layer_config={"up_proj": wrong}))
    assert VPTQCheckpoint(d).layer(NAME).spec.num_centroids == 256


def test_text_config_nesting(synthetic_checkpoint):
    spec = make_spec(NAME, bias=True)
    d = synthetic_checkpoint([spec])

    def nest(cfg):
        return {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"],
                "text_config": {"model_type": "llama", "torch_dtype": "bfloat16",
                                "quantization_config": cfg["quantization_config"]}}
    _rewrite_config(d, nest)
    ckpt = VPTQCheckpoint(d)
    assert ckpt.model_config["model_type"] == "llama"
    assert ckpt.dtype == torch.bfloat16
    assert ckpt.layer(NAME).spec == spec


def test_extra_keys_and_misserialized_bias(synthetic_checkpoint):
    spec = make_spec(NAME, bias=True, norm=True)
    d = synthetic_checkpoint([spec])

    def edit(cfg):
        layer_cfg = cfg["quantization_config"]["config_for_layers"][NAME]
        layer_cfg.update(norm_dim=0, enable_proxy_error=False, bias=[0.01] * 48)
        cfg["quantization_config"]["enable_proxy_error"] = False
        cfg["quantization_config"]["modules_to_not_convert"] = ["lm_head"]
    _rewrite_config(d, edit)
    read = VPTQCheckpoint(d).layer(NAME, check_ranges=True)
    assert read.spec.bias and read.bias.shape == (48,)
    assert read.spec.extra == {"norm_dim": 0, "enable_proxy_error": False}
    assert read.spec == spec                      # extra keys do not take part in equality


def test_sharded_checkpoint(synthetic_checkpoint):
    specs = [make_spec(f"model.layers.{i}.self_attn.q_proj", perm=True) for i in range(3)]
    d = synthetic_checkpoint(specs, shard_every=1)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 4          # 3 layers + the embedding
    ckpt = VPTQCheckpoint(d)
    assert ckpt.layer_names() == [s.name for s in specs]
    assert [ckpt.layer(s.name).spec for s in specs] == specs


def test_natural_layer_order(synthetic_checkpoint):
    specs = [make_spec(f"model.layers.{i}.mlp.up_proj") for i in (10, 2, 1)]
    ckpt = VPTQCheckpoint(synthetic_checkpoint(specs))
    assert ckpt.layer_names() == [f"model.layers.{i}.mlp.up_proj" for i in (1, 2, 10)]
