"""Quantizer: k-means, layout decisions (outliers, perm, norm), stored layer == what the quantizer
assigned (dequantized through the reference), whole-model output in VPTQ-community layout,
determinism, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open

from vptq_export.checkpoint import VPTQCheckpoint
from vptq_export.cli import main as cli_main
from vptq_export.quantize import (QuantizeError, QuantizeOptions, nearest, quantize_linear,
                                  quantize_model, weighted_kmeans)
from vptq_export.reference.dequant import dequantize

# -------------------------------------------------------------------------------- k-means


def test_kmeans_recovers_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = (centers[:, None, :] + 0.1 * torch.randn(4, 50, 2, generator=gen)).reshape(-1, 2)
    book, assign = weighted_kmeans(x, 4, seed=1)
    found = sorted(map(tuple, book.round().tolist()))
    assert found == sorted(map(tuple, centers.tolist()))
    assert torch.equal(assign, nearest(x, book))


def test_kmeans_weighted_mean():
    x = torch.tensor([[0.0], [4.0]])
    book, _ = weighted_kmeans(torch.cat([x, x + 100]), 2, torch.tensor([3.0, 1.0, 1.0, 1.0]))
    assert sorted(book.flatten().tolist()) == pytest.approx([1.0, 102.0])   # (3*0 + 1*4) / 4


def test_kmeans_fewer_points_than_centroids_and_determinism():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    book, assign = weighted_kmeans(x, 16, seed=3)
    assert book.shape == (16, 3)
    assert torch.equal(book[assign], x)                # every point is exactly a centroid
    y = torch.randn(300, 4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(weighted_kmeans(y, 8, seed=5)[0], weighted_kmeans(y, 8, seed=5)[0])
    assert not torch.equal(weighted_kmeans(y, 8, seed=5)[0], weighted_kmeans(y, 8, seed=6)[0])


# -------------------------------------------------------------------------------- one linear


def _problem(O=45, I=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(O, I, generator=gen) * 0.1
    x = torch.randn(512, I, generator=gen) * torch.linspace(0.2, 3.0, I)   # uneven input scales
    return w, x.T @ x / x.shape[0]


LINEAR_OPTIONS = {
    "plain": dict(),
    "residual": dict(res_centroids=16),
    "outliers": dict(outlier_fraction=0.1, outlier_vector_len=3, outlier_centroids=16),
    "perm": dict(perm=True),
    "norm": dict(norm=True),
    "groups": dict(group_num=2),
    "unpacked": dict(packed=False, res_centroids=4),
    "indices_as_float": dict(packed=False, indices_as_float=True),
    "first_order": dict(second_order=False),
    "all": dict(vector_len=4, centroids=64, res_centroids=8, group_num=3, outlier_fraction=0.05,
                outlier_vector_len=2, outlier_centroids=8, perm=True, norm=True),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(LINEAR_OPTIONS))
def test_stored_layer_reproduces_assigned_codes(name, dtype):
    w, h = _problem()
    bias = torch.randn(45) * 0.01
    opts = QuantizeOptions(**{"centroids": 32, "seed": 1, **LINEAR_OPTIONS[name]})
    r = quantize_linear("model.layers.0.mlp.up_proj", w, bias, h, opts, dtype)
    spec = r.layer.spec
    # the stored (possibly packed) indices decode to exactly the codes the quantizer assigned
    main, res = r.layer.decoded_indices()
    assert np.array_equal(main, r.indices)
    assert (res is None) == (r.res_indices is None)
    if res is not None:
        assert np.array_equal(res, r.res_indices)
    if spec.has_outliers:
        assert np.array_equal(r.layer.decoded_outlier_indices(), r.outlier_indices)
    if spec.enable_perm:
        assert np.array_equal(r.layer.decoded_perm(), r.perm)
    # ... and the reference dequantization of the stored layer is the quantizer's own
    # reconstruction (fp32 rounding: both sum the same fp16/bf16 codebook values)
    torch.testing.assert_close(dequantize(r.layer), r.weight, rtol=1e-6, atol=1e-7)
    assert torch.equal(r.layer.bias, bias.to(dtype))
    for tensor in (r.layer.centroids, r.layer.res_centroids, r.layer.outlier_centroids):
        assert tensor is None or tensor.dtype == dtype
    assert r.layer.indices.dtype == (torch.int32 if spec.is_indice_packed else
                                     torch.float16 if spec.indices_as_float else torch.int16)
    # quantization error is bounded: much less than the weight itself
    assert 0 < r.proxy_error < 0.5


def test_lossless_when_codebook_holds_every_vector():
    # O=16, I=8, v=8: 16 vectors <= k=16 -> every vector is a centroid; error = fp16 rounding
    w, h = _problem(16, 8)
    r = quantize_linear("l", w, None, h, QuantizeOptions(centroids=16))
    torch.testing.assert_close(r.weight, w.half().float(), rtol=0, atol=0)


def test_outlier_layout_follows_vptq_group_setting():
    opts = QuantizeOptions(outlier_fraction=0.05, group_num=2)
    assert opts.outlier_size(96) == 6       # ceil(4.8) = 5, (96 - 5) mod 2 = 1
    assert opts.outlier_size(180) == 10     # ceil(9) = 9, (180 - 9) mod 2 = 1
    assert QuantizeOptions(group_num=3).outlier_size(64) == 1     # 64 mod 3 needs one outlier
    assert QuantizeOptions().outlier_size(64) == 0
    spec = opts.layer_spec("l", 96, 32, False)
    assert (spec.outlier_size, spec.group_size, spec.group_num) == (6, 45, 2)


def test_perm_is_descending_hessian_diagonal():
    w, _ = _problem(16, 32)
    diag = torch.tensor([float((7 * i) % 32) + 1 for i in range(32)])
    r = quantize_linear("l", w, None, torch.diag(diag), QuantizeOptions(perm=True, centroids=16))
    assert r.perm.tolist() == torch.argsort(diag, descending=True).tolist()
    assert r.layer.perm.dtype == torch.int16


def test_perm_puts_largest_hessian_columns_into_outliers():
    w, _ = _problem(16, 40)
    diag = torch.ones(40)
    diag[[3, 17, 30, 35]] = 100.0
    r = quantize_linear("l", w, None, torch.diag(diag), QuantizeOptions(
        perm=True, outlier_fraction=0.1, centroids=16, outlier_centroids=16))
    assert r.layer.spec.outlier_size == 4
    assert sorted(r.perm[:4].tolist()) == [3, 17, 30, 35]


def test_norm_is_column_min_max():
    w, h = _problem(24, 16)
    r = quantize_linear("l", w, None, h, QuantizeOptions(norm=True, centroids=16))
    assert torch.equal(r.layer.weight_bias, w.min(0).values.half())
    assert torch.equal(r.layer.weight_scale, (w.max(0).values - w.min(0).values).half())


def test_residual_and_second_order_reduce_error():
    w, h = _problem(64, 64, seed=3)
    base = quantize_linear("l", w, None, h, QuantizeOptions(centroids=32, second_order=False))
    res = quantize_linear("l", w, None, h, QuantizeOptions(centroids=32, res_centroids=16,
                                                           second_order=False))
    gptq = quantize_linear("l", w, None, h, QuantizeOptions(centroids=32))
    assert res.proxy_error < 0.8 * base.proxy_error
    assert gptq.proxy_error < base.proxy_error


@pytest.mark.parametrize("kwargs, message", [
    (dict(centroids=100), "centroids must be a power of two"),
    (dict(res_centroids=3), "res_centroids must be a power of two or 0"),
    (dict(centroids=2 ** 20, res_centroids=2 ** 16), "exceeds the 32 bits"),
    (dict(outlier_fraction=1.0), "outlier_fraction must be in [0, 1)"),
    (dict(indices_as_float=True), "unpacked indices only"),
    (dict(layers="("), "not a regular expression"),
    (dict(group_num=0), "group_num must be >= 1"),
])
def test_invalid_options(kwargs, message):
    with pytest.raises(QuantizeError) as info:
        QuantizeOptions(**kwargs)
    assert message in str(info.value)


# -------------------------------------------------------------------------------- whole model


def test_model_checkpoint_layout(tiny_fp_model, tiny_vptq_checkpoint):
    fp = tiny_fp_model("qwen2")
    d = tiny_vptq_checkpoint("qwen2")
    cfg = json.loads((d / "config.json").read_text())
    q = cfg["quantization_config"]
    assert q["quant_method"] == "vptq"
    names = sorted(q["config_for_layers"])
    assert len(names) == 14 and all(".layers." in n for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"q_proj", "k_proj", "v_proj", "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"}
    layer_cfg = q["config_for_layers"]["model.layers.0.self_attn.q_proj"]
    assert layer_cfg == {"bias": True, "enable_norm": False, "enable_perm": False, "group_num": 1,
                         "group_size": 96, "in_features": 96, "indices_as_float": False,
                         "is_indice_packed": True, "num_centroids": [-1, 256],
                         "num_res_centroids": [-1, -1], "out_features": 96, "outlier_size": 0,
                         "vector_lens": [-1, 8]}
    with safe_open(str(d / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("model.layers.0.self_attn.q_proj.indices").dtype == torch.int32
        assert f.get_tensor("model.layers.0.self_attn.q_proj.centroids.weight").dtype == torch.float16
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.float16
    assert "model.layers.0.self_attn.q_proj.weight" not in keys
    assert "model.layers.0.self_attn.q_proj.bias" in keys
    assert "lm_head.weight" not in keys                           # tied, as in the FP model
    assert "model.norm.weight" in keys and "model.embed_tokens.weight" in keys
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (d / f).read_bytes() == (fp / f).read_bytes()
    ckpt = VPTQCheckpoint(d)
    assert len(ckpt.validate(check_ranges=True)) == 14
    for k, v in cfg.items():                                      # architecture unchanged
        if k != "quantization_config":
            assert json.loads((fp / "config.json").read_text()).get(k) == v, k


def test_unpacked_model_layout(tiny_vptq_checkpoint):
    d = tiny_vptq_checkpoint("llama", packed=False, res_centroids=16, perm=True, vector_len=4)
    ckpt = VPTQCheckpoint(d)
    layer = ckpt.layer("model.layers.1.mlp.down_proj", check_ranges=True)
    assert not layer.spec.is_indice_packed
    assert layer.indices.dtype == torch.int16 and layer.res_indices.dtype == torch.int16
    assert layer.perm.dtype == torch.int64
    assert layer.indices.shape == (1, 16, 192)


def test_layers_regex_and_deterministic_bytes(tiny_fp_model, tmp_path):
    fp = tiny_fp_model("mistral")
    opts = QuantizeOptions(layers=r"mlp\.(gate|up)_proj$", vector_len=4, centroids=64,
                           res_centroids=4, perm=True, norm=True, calibration_sequences=2)
    a = quantize_model(fp, tmp_path / "a", opts, progress=False)
    b = quantize_model(fp, tmp_path / "b", opts, progress=False)
    c = quantize_model(fp, tmp_path / "c", QuantizeOptions(**{**opts.__dict__, "seed": 1}),
                       progress=False)
    names = VPTQCheckpoint(a).layer_names()
    assert names == [f"model.layers.{i}.mlp.{p}" for i in (0, 1) for p in ("gate_proj", "up_proj")]
    for f in ("model.safetensors", "config.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    # unquantized projections keep their fp16 weights, bit for bit
    with safe_open(str(a / "model.safetensors"), framework="pt") as fa, \
            safe_open(str(fp / "model.safetensors"), framework="pt") as ff:
        name = "model.layers.0.self_attn.q_proj.weight"
        assert torch.equal(fa.get_tensor(name), ff.get_tensor(name))


def test_quantized_model_stays_close_to_fp(tiny_fp_model, tiny_vptq_checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vptq_export.reference.model import load_reference_model
    from vptq_export.tiny_text import builtin_text

    fp_dir = tiny_fp_model("llama")
    d = tiny_vptq_checkpoint("llama", vector_len=4, res_centroids=16)     # 3 bits per weight
    tok = AutoTokenizer.from_pretrained(str(fp_dir))
    ids = tok(builtin_text()[:600], return_tensors="pt").input_ids
    with torch.no_grad():
        ref = load_reference_model(d)(ids).logits
        fp = AutoModelForCausalLM.from_pretrained(str(fp_dir), dtype=torch.float32)(ids).logits
    agree = (ref.argmax(-1) == fp.argmax(-1)).float().mean().item()
    assert agree > 0.6, agree        # measured ~0.85 for this model; 1 bit/weight gives ~0.5


def test_quantize_errors(tiny_fp_model, tiny_vptq_checkpoint, tmp_path):
    with pytest.raises(QuantizeError, match="already quantized"):
        quantize_model(tiny_vptq_checkpoint("llama"), tmp_path / "x")
    with pytest.raises(QuantizeError, match="no config.json"):
        quantize_model(tmp_path, tmp_path / "y")
    with pytest.raises(QuantizeError, match="no nn.Linear module name matches"):
        quantize_model(tiny_fp_model("llama"), tmp_path / "z", QuantizeOptions(layers="nothing"))
    (tmp_path / "exists").mkdir()
    with pytest.raises(QuantizeError, match="exists"):
        quantize_model(tiny_fp_model("llama"), tmp_path / "exists")


# -------------------------------------------------------------------------------- CLI


def test_cli_quantize_and_inspect(tiny_fp_model, tmp_path, capsys):
    fp = tiny_fp_model("llama")
    out = tmp_path / "q"
    rc = cli_main(["quantize", str(fp), "-o", str(out), "--vector-len", "4", "--centroids", "64",
                   "--res-centroids", "4", "--group-num", "2", "--outlier-fraction", "0.1",
                   "--outlier-vector-len", "2", "--outlier-centroids", "16", "--perm", "--norm",
                   "--unpacked", "--seed", "3", "--layers", r"layers\.0\.self_attn\.o_proj$",
                   "--quiet"])
    assert rc == 0
    assert "1 VPTQ layers" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())["quantization_config"]
    layer = cfg["config_for_layers"]["model.layers.0.self_attn.o_proj"]
    assert layer["vector_lens"] == [2, 4] and layer["num_centroids"] == [16, 64]
    assert layer["num_res_centroids"] == [-1, 4] and layer["group_num"] == 2
    assert layer["outlier_size"] == 8 and layer["group_size"] == 28      # ceil(6.4)=7, +57 mod 2
    assert layer["enable_perm"] and layer["enable_norm"] and not layer["is_indice_packed"]

    assert cli_main(["inspect", str(out), "--check-indices"]) == 0
    text = capsys.readouterr().out
    assert "model.layers.0.self_attn.o_proj" in text and "v4 k64 k_res4 G2x28" in text
    assert "outliers 8 (v2 k16)" in text and "perm+norm+unpacked" in text and "valid" in text
    assert cli_main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    expected_bpw = (56 / 64) * (6 + 2) / 4 + (8 / 64) * math.log2(16) / 2
    assert info["layers"][0]["bits_per_weight"] == pytest.approx(expected_bpw)
    assert info["num_layers"] == 1 and info["model_type"] == "llama"


def test_cli_make_tiny_and_errors(tmp_path, capsys):
    assert cli_main(["make-tiny", "mistral", "-o", str(tmp_path / "m"), "--train-steps", "2",
                     "--seed", "1"]) == 0
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    capsys.readouterr()
    assert cli_main(["make-tiny", "mistral", "-o", str(tmp_path / "m"), "--train-steps", "0"]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli_main(["quantize", str(tmp_path / "m"), "-o", str(tmp_path / "q"),
                     "--centroids", "100"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("vptq-export quantize: error: centroids must be a power of two, "
                           "got 100")


@pytest.mark.parametrize("command", ["quantize", "make-tiny", "inspect"])
def test_cli_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli_main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"vptq-export {command}" in text
