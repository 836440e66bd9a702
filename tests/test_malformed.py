"""Malformed checkpoints: each gives its own CheckpointError (naming file / layer / tensor), and
`vptq-export inspect` exits 2 with that one line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vptq_export.checkpoint import VPTQCheckpoint
from vptq_export.cli import main as cli_main
from vptq_export.errors import CheckpointError
from vptq_export.synthetic import make_spec

L0 = "model.layers.0.self_attn.q_proj"
L1 = "model.layers.0.mlp.down_proj"


def _base(synthetic_checkpoint):
    return synthetic_checkpoint([
        make_spec(L0, in_features=64, out_features=48, k_res=16, perm=True, norm=True),
        make_spec(L1, in_features=64, out_features=40, outlier_size=8, v_o=4, k_o=16,
                  packed=False, bias=True),
    ])


def _edit_config(d, fn):
    cfg = json.loads((d / "config.json").read_text())
    fn(cfg)
    (d / "config.json").write_text(json.dumps(cfg))


def _layer_cfg(d, name, **changes):
    def fn(cfg):
        cfg["quantization_config"]["config_for_layers"][name].update(changes)
    _edit_config(d, fn)


def _edit_tensors(d, fn):
    path = d / "model.safetensors"
    tensors = load_file(str(path))
    fn(tensors)
    save_file(tensors, str(path))


def _set(name, value):
    return lambda t: t.__setitem__(name, value)


def missing_config(d):
    (d / "config.json").unlink()


def config_not_json(d):
    (d / "config.json").write_text("{\"quantization_config\": ")


def no_quantization_config(d):
    _edit_config(d, lambda c: c.pop("quantization_config"))


def wrong_quant_method(d):
    _edit_config(d, lambda c: c["quantization_config"].update(quant_method="gptq"))


def bin_only(d):
    (d / "model.safetensors").rename(d / "pytorch_model.bin")


def truncated_safetensors(d):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) - 100])


def missing_tensor(d):
    _edit_tensors(d, lambda t: t.pop(f"{L0}.res_centroids.weight"))


def wrong_shape(d):
    _edit_tensors(d, _set(f"{L0}.indices", torch.zeros(1, 6, 31, dtype=torch.int32)))


def wrong_dtype(d):
    _edit_tensors(d, _set(f"{L0}.indices", torch.zeros(1, 6, 24, dtype=torch.int64)))


def k_not_power_of_two(d):
    _layer_cfg(d, L0, num_centroids=[-1, 200])


def groups_do_not_cover_in_features(d):
    _layer_cfg(d, L0, group_num=2, group_size=30)


def total_bits_over_32(d):
    _layer_cfg(d, L0, num_centroids=[-1, 2 ** 20], num_res_centroids=[-1, 2 ** 16])


def perm_wrong_length(d):
    _edit_tensors(d, _set(f"{L0}.perm", torch.arange(63, dtype=torch.int16)))


def perm_not_a_permutation(d):
    _edit_tensors(d, _set(f"{L0}.perm", torch.zeros(64, dtype=torch.int16)))


def index_out_of_range(d):
    # unpacked int16 indices hold 300 for a 256-entry codebook
    def fn(t):
        idx = t[f"{L1}.indices"].clone()
        idx[0, 0, 0] = 300
        t[f"{L1}.indices"] = idx
    _edit_tensors(d, fn)


def outlier_index_out_of_range(d):
    def fn(t):
        idx = t[f"{L1}.outlier_indices"].clone()
        idx[0, 1, 2] = 16
        t[f"{L1}.outlier_indices"] = idx
    _edit_tensors(d, fn)


def residual_on_outliers(d):
    _layer_cfg(d, L1, num_res_centroids=[16, -1])


def vector_quant_dim_in(d):
    _layer_cfg(d, L0, vector_quant_dim="in")


def missing_layer_config(d):
    _edit_config(d, lambda c: c["quantization_config"]["config_for_layers"].pop(L1))


def shard_index_points_at_missing_file(d):
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {f"{L0}.indices": "model-00001-of-00002.safetensors"}}))


def layer_config_lacks_key(d):
    def fn(cfg):
        cfg["quantization_config"]["config_for_layers"][L0].pop("in_features")
    _edit_config(d, fn)


def vector_lens_not_a_pair(d):
    _layer_cfg(d, L0, vector_lens=8)


def no_layers_at_all(d):
    _edit_config(d, lambda c: c["quantization_config"].update(config_for_layers={}))
    _edit_tensors(d, lambda t: [t.pop(k) for k in list(t) if k.startswith("model.layers.")])


def tensor_in_two_files(d):
    t = load_file(str(d / "model.safetensors"))
    save_file({f"{L0}.perm": t[f"{L0}.perm"]}, str(d / "extra.safetensors"))


def config_is_a_list(d):
    (d / "config.json").write_text("[1, 2]")


CASES = [
    # (mutation, message, needs --check-indices, names in the message)
    (missing_config, "no config.json", False, ["config.json"]),
    (config_not_json, "config.json is not valid JSON", False, ["config.json"]),
    (config_is_a_list, "config.json must hold a JSON object", False, ["config.json"]),
    (no_quantization_config, "has no quantization_config", False, ["config.json"]),
    (wrong_quant_method, "quant_method is not 'vptq' (expected 'vptq', found 'gptq')", False, []),
    (bin_only, "only pickled weights (pytorch_model.bin) found", False, []),
    (truncated_safetensors, "safetensors file is truncated", False, ["model.safetensors"]),
    (missing_tensor, "tensor required by the layer config is missing", False,
     [L0, f"{L0}.res_centroids.weight"]),
    (wrong_shape, "wrong shape (expected [1, 6, 24], found [1, 6, 31])", False, [f"{L0}.indices"]),
    (wrong_dtype, "wrong dtype (expected int32, found int64)", False, [f"{L0}.indices"]),
    (k_not_power_of_two, "num_centroids[1] must be a power of two", False, [L0]),
    (groups_do_not_cover_in_features, "outlier_size + group_num * group_size must equal "
     "in_features (expected 64, found 0 + 2 * 30 = 60)", False, [L0]),
    (total_bits_over_32, "index bits + residual index bits must be <= 32", False, [L0]),
    (perm_wrong_length, "wrong shape (expected [64], found [63])", False, [f"{L0}.perm"]),
    (perm_not_a_permutation, "perm is not a permutation", True, [f"{L0}.perm"]),
    (index_out_of_range, "index out of codebook range (expected < 256, found 300)", True,
     [f"{L1}.indices"]),
    (outlier_index_out_of_range, "index out of codebook range (expected < 16, found 16)", True,
     [f"{L1}.outlier_indices"]),
    (residual_on_outliers, "residual codebooks on the outlier part", False, [L1]),
    (vector_quant_dim_in, "only vector_quant_dim 'out'", False, [L0]),
    (missing_layer_config, "no layer config in config_for_layers", False, [L1]),
    (shard_index_points_at_missing_file, "shard listed in model.safetensors.index.json is missing",
     False, ["model-00001-of-00002.safetensors"]),
    (layer_config_lacks_key, "layer config lacks 'in_features'", False, [L0]),
    (vector_lens_not_a_pair, "'vector_lens' must be a list of two integers", False, [L0]),
    (no_layers_at_all, "lists no VPTQ layers", False, []),
    (tensor_in_two_files, "tensor stored in two files", False, [f"{L0}.perm"]),
]


def _validate(d, check):
    VPTQCheckpoint(d).validate(check_ranges=check)


def test_base_checkpoint_is_valid(synthetic_checkpoint):
    d = _base(synthetic_checkpoint)
    assert len(VPTQCheckpoint(d).validate(check_ranges=True)) == 2
    assert cli_main(["inspect", str(d), "--check-indices"]) == 0


@pytest.mark.parametrize("mutate, message, check, names", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_malformed(synthetic_checkpoint, capsys, mutate, message, check, names):
    d = _base(synthetic_checkpoint)
    mutate(d)
    with pytest.raises(CheckpointError) as info:
        _validate(d, check)
    text = str(info.value)
    assert message in text
    for name in names:
        assert name in text
    if check:   # only the index scan finds it
        _validate(d, False)
    capsys.readouterr()
    args = ["inspect", str(d)] + (["--check-indices"] if check else [])
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vptq-export inspect: error: {text}"
    assert "\n" not in err and "Traceback" not in err


def test_nonzero_padding_bits(synthetic_checkpoint):
    # 60 codes of 8 bits = 480 bits = 15 words exactly; 61 codes -> 488 bits, 16 words with 24
    # padding bits at the top of the last word. Set one of them.
    spec = make_spec(L0, in_features=61, out_features=8, k=256)
    d = synthetic_checkpoint([spec])

    def fn(t):
        idx = t[f"{L0}.indices"].clone()
        idx[0, 0, -1] |= 1 << 30
        t[f"{L0}.indices"] = idx
    _edit_tensors(d, fn)
    VPTQCheckpoint(d).validate()                     # headers are fine
    with pytest.raises(CheckpointError, match="packed index rows have non-zero padding bits"):
        VPTQCheckpoint(d).validate(check_ranges=True)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist or is not a directory"):
        VPTQCheckpoint(tmp_path / "nope")


def test_cli_subprocess_no_traceback(synthetic_checkpoint):
    d = _base(synthetic_checkpoint)
    wrong_shape(d)
    proc = subprocess.run([sys.executable, "-m", "vptq_export", "inspect", str(d)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "wrong shape" in lines[0] and f"{L0}.indices" in lines[0]
