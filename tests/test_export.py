"""ONNX export of whole decoders: logits and KV cache from the exported graph (onnx's
ReferenceEvaluator with our VPTQGemm) against the PyTorch reference model, for each family and
the format options; graph structure (one VPTQGemm per VPTQ linear, no dequantized weight),
onnx.checker, errors, atomic output.

The checkpoints here are built independently of the quantizer: a tiny transformers config with
random FP weights, every decoder linear replaced by `synthetic.random_layer` (random codes),
written with CheckpointWriter. ReferenceEvaluator is slow, so the shapes are tiny.
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from vptq_export.errors import CheckpointError, UnsupportedModelError, VPTQError
from vptq_export.export import ExportOptions, export_layer, export_model, io_summary
from vptq_export.onnx_op import VPTQGemm
from vptq_export.op_spec import OP_TYPE

# fp32 exports against the fp32 reference: same math, different summation order / libm.
RTOL_FP32 = 1e-5

_ROPE_LLAMA3 = dict(rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0,
                    high_freq_factor=4.0, original_max_position_embeddings=8)

FAMILY_CONFIGS = {
    # GQA 4/2, llama3 RoPE scaling with all three bands hit (head_dim 8), untied lm_head
    "llama": dict(model_type="llama", hidden_size=32, intermediate_size=48,
                  num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                  vocab_size=64, max_position_embeddings=64, rms_norm_eps=1e-5,
                  tie_word_embeddings=False, rope_parameters=_ROPE_LLAMA3),
    # q/k/v bias (inside the VPTQ layers), tied embeddings, 3 query heads per KV head, eps 1e-6
    "qwen2": dict(model_type="qwen2", hidden_size=48, intermediate_size=40,
                  num_attention_heads=6, num_key_value_heads=2, num_hidden_layers=2,
                  vocab_size=80, max_position_embeddings=64, rms_norm_eps=1e-6,
                  tie_word_embeddings=True, use_sliding_window=False,
                  rope_parameters=dict(rope_type="default", rope_theta=1e6)),
    # explicit head_dim (16) != hidden/heads (8), a sliding window shorter than the test's
    # sequences, untied
    "mistral": dict(model_type="mistral", hidden_size=32, intermediate_size=40,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    num_hidden_layers=2, vocab_size=72, max_position_embeddings=64,
                    rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=4,
                    rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
}

# Per-checkpoint layer options (make_spec keywords), chosen per module leaf name; `in_features`
# divisibility for group_num / outliers is checked when applied.
FORMATS = {
    "plain": {},
    "residual_perm_norm": {"*": dict(k_res=4, perm=True, norm=True)},
    "outliers_groups": {"*": dict(outlier_size=8, v_o=4, k_o=16, group_num=2)},
    "unpacked_g2_bias": {"q_proj": dict(packed=False, group_num=2, k_res=8),
                         "o_proj": dict(bias=True), "down_proj": dict(packed=False, perm=True)},
}

CASES = [("llama", "plain"), ("llama", "residual_perm_norm"), ("llama", "outliers_groups"),
         ("qwen2", "plain"), ("qwen2", "unpacked_g2_bias"), ("mistral", "residual_perm_norm"),
         ("mistral", "outliers_groups")]


def _layer_options(fmt: str, leaf: str, in_features: int) -> dict:
    table = FORMATS[fmt]
    opts = dict(table.get(leaf, table.get("*", {})))
    g = opts.get("group_num", 1)
    if (in_features - opts.get("outlier_size", 0)) % g:
        opts["group_num"] = 1
    return opts


def build_checkpoint(out: Path, family: str, fmt: str = "plain", *, seed: int = 0,
                     dtype=torch.float16, hf_overrides: dict | None = None,
                     keep_fp: tuple[str, ...] = ()) -> Path:
    """A VPTQ checkpoint of a tiny `family` model: random FP weights, random VPTQ layers for
    every decoder linear except modules whose name ends with one of `keep_fp` (kept FP)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from vptq_export.checkpoint_writer import CheckpointWriter
    from vptq_export.synthetic import make_spec, random_layer

    cfg_dict = dict(FAMILY_CONFIGS[family], **(hf_overrides or {}))
    config = AutoConfig.for_model(**cfg_dict)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    linears = {name: mod for name, mod in model.named_modules()
               if isinstance(mod, torch.nn.Linear) and name.startswith("model.layers.")
               and not name.endswith(keep_fp)}
    hf = {**config.to_dict(), "torch_dtype": str(dtype)[6:]}
    with CheckpointWriter(out, hf, overwrite=True) as w:
        for i, (name, mod) in enumerate(sorted(linears.items())):
            leaf = name.rsplit(".", 1)[1]
            opts = _layer_options(fmt, leaf, mod.in_features)
            if mod.bias is not None:          # qwen2 q/k/v: the bias is part of the VPTQ layer
                opts["bias"] = True
            spec = make_spec(name, mod.in_features, mod.out_features, v=4, k=16, **opts)
            w.add_layer(random_layer(spec, dtype, seed * 1000 + i, codebook_scale=0.2))
        for key, value in model.state_dict().items():
            module = key.rsplit(".", 1)[0]
            if module in linears or (config.tie_word_embeddings and key == "lm_head.weight"):
                continue
            w.add_tensor(key, value.to(dtype))
    return out


# ------------------------------------------------------------------------------------ helpers
def _cache_kwarg(model) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def run_steps(onnx_path: Path, ckpt: Path, *, steps: int = 3, batch: int = 2, prompt: int = 6,
              dtype=torch.float32, seed: int = 0):
    """Prefill (batch 2, row 1 left-padded by 2) then decode steps feeding present -> past.
    Yields (step, onnx outputs dict, reference logits, reference cache, valid query mask)."""
    from onnx.reference import ReferenceEvaluator
    from transformers import DynamicCache

    from vptq_export.reference.model import load_reference_model

    model = load_reference_model(ckpt, dtype)
    cfg = model.config
    sess = ReferenceEvaluator(str(onnx_path), new_ops=[VPTQGemm])
    summary = io_summary(ckpt, str(dtype)[6:])
    np_dtype = {torch.float32: np.float32, torch.float16: np.float16}[dtype]
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, prompt), np.int64)
    mask[1, :2] = 0
    feed = {"input_ids": rng.integers(0, cfg.vocab_size, (batch, prompt)),
            "attention_mask": mask,
            "position_ids": np.clip(np.cumsum(mask, 1) - 1, 0, None)}
    for i in range(summary["num_layers"]):
        for kind in ("key", "value"):
            feed[f"past_key_values.{i}.{kind}"] = np.zeros(
                (batch, summary["num_key_value_heads"], 0, summary["head_dim"]), np_dtype)
    cache = DynamicCache(config=cfg)
    for step in range(steps):
        outs = dict(zip(sess.output_names, sess.run(None, feed)))
        with torch.no_grad():
            ref = model(input_ids=torch.from_numpy(feed["input_ids"]),
                        attention_mask=torch.from_numpy(feed["attention_mask"]),
                        position_ids=torch.from_numpy(feed["position_ids"]),
                        use_cache=True, **{_cache_kwarg(model): cache})
        seq = feed["input_ids"].shape[1]
        valid = feed["attention_mask"][:, -seq:].astype(bool)
        yield step, outs, ref.logits.float().numpy(), cache, feed["attention_mask"].astype(bool), valid
        feed = dict(feed)
        feed["input_ids"] = rng.integers(0, cfg.vocab_size, (batch, 1))
        feed["attention_mask"] = np.concatenate([feed["attention_mask"],
                                                 np.ones((batch, 1), np.int64)], 1)
        feed["position_ids"] = feed["position_ids"][:, -1:] + 1
        for i in range(summary["num_layers"]):
            for kind in ("key", "value"):
                feed[f"past_key_values.{i}.{kind}"] = outs[f"present.{i}.{kind}"]


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported(family, fmt) -> (ckpt dir, model.onnx), built once per module."""
    memo = {}

    def make(family, fmt="plain", dtype="float32", **kw):
        key = (family, fmt, dtype, json.dumps(kw, sort_keys=True, default=str))
        if key not in memo:
            root = tmp_path_factory.mktemp(f"{family}-{fmt}")
            ckpt = build_checkpoint(root / "ckpt", family, fmt, **kw)
            onnx_path = export_model(ckpt, root / "onnx" / "model.onnx",
                                     ExportOptions(dtype=dtype, progress=False,
                                                   check_indices=True))
            memo[key] = (ckpt, onnx_path)
        return memo[key]

    return make


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("family,fmt", CASES)
def test_logits_and_cache_match_reference(exported, family, fmt):
    ckpt, onnx_path = exported(family, fmt)
    for step, outs, ref_logits, cache, kv_valid, valid in run_steps(onnx_path, ckpt):
        assert outs["logits"].shape == ref_logits.shape
        err = rel_err(outs["logits"][valid], ref_logits[valid])
        assert err <= RTOL_FP32, f"{family}/{fmt} step {step}: logits rel err {err:.2e}"
        layer0 = cache.layers[0]
        ref_k = layer0.keys.numpy()
        ours_k = outs["present.0.key"][:, :, -ref_k.shape[2]:]   # sliding caches keep a suffix
        cols = kv_valid[:, -ref_k.shape[2]:]
        for b in range(ref_k.shape[0]):
            assert rel_err(ours_k[b][:, cols[b]], ref_k[b][:, cols[b]]) <= RTOL_FP32
    assert step == 2


def test_fp16_export_close_to_fp16_reference(exported):
    ckpt, onnx_path = exported("llama", "residual_perm_norm", dtype="float16")
    model = onnx.load(str(onnx_path), load_external_data=False)
    assert model.graph.input[3].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    for step, outs, ref_logits, _, _, valid in run_steps(onnx_path, ckpt, steps=2,
                                                         dtype=torch.float16):
        assert outs["logits"].dtype == np.float16
        # fp16 activations (~1e-3 relative per op), fp32 softmax / norms / VPTQ accumulation
        assert rel_err(outs["logits"][valid], ref_logits[valid]) <= 2e-2


# ------------------------------------------------------------------------------------ structure
def _vptq_shapes(ckpt: Path) -> dict[str, tuple[int, int]]:
    from vptq_export.checkpoint import VPTQCheckpoint

    c = VPTQCheckpoint(ckpt)
    return {n: (c.layer_spec(n).out_features, c.layer_spec(n).in_features) for n in c.layer_names()}


@pytest.mark.parametrize("family,fmt", [("llama", "outliers_groups"), ("qwen2", "unpacked_g2_bias")])
def test_graph_structure(exported, family, fmt):
    ckpt, onnx_path = exported(family, fmt)
    model = onnx.load(str(onnx_path), load_external_data=False)
    layers = _vptq_shapes(ckpt)
    nodes = [n for n in model.graph.node if n.op_type == OP_TYPE]
    assert len(nodes) == len(layers) == 7 * FAMILY_CONFIGS[family]["num_hidden_layers"]
    assert all(n.domain == "vptq" for n in nodes)
    # each VPTQ layer feeds exactly one node, through its own initializers
    fed = sorted({i.rsplit(".", 1)[0] for n in nodes for i in n.input[1:]})
    assert fed == sorted(layers)
    # no dequantized weight: no float initializer shaped like any VPTQ layer's W or W^T, and
    # the only rank-2 float initializers are the embedding and (untied) lm_head
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    forbidden = set(layers.values()) | {(i, o) for o, i in layers.values()}
    for init in model.graph.initializer:
        if init.data_type in floats:
            assert tuple(init.dims) not in forbidden, init.name
            if len(init.dims) == 2:
                assert init.name in ("model.embed_tokens.weight", "lm_head.weight"), init.name
    assert {o.domain: o.version for o in model.opset_import} == {"": 17, "vptq": 1}
    # tied: lm_head is a Gemm(transB=1) reading the embedding itself
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    want = "model.embed_tokens.weight" if FAMILY_CONFIGS[family]["tie_word_embeddings"] \
        else "lm_head.weight"
    assert [n.input[1] for n in gemms] == [want]
    assert [a.i for a in gemms[0].attribute if a.name == "transB"] == [1]
    # weights live in the external data file; only tiny constants stay in the proto
    by_name = {i.name: i for i in model.graph.initializer}
    assert by_name["model.embed_tokens.weight"].data_location == onnx.TensorProto.EXTERNAL
    assert max(len(i.raw_data) for i in model.graph.initializer) <= 1024


def test_checker_and_strict_shape_inference(exported):
    _, onnx_path = exported("mistral", "outliers_groups")
    onnx.checker.check_model(str(onnx_path), full_check=True)
    model = onnx.load(str(onnx_path), load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    vi = {v.name: v for v in inferred.graph.value_info}
    node = next(n for n in inferred.graph.node if n.op_type == OP_TYPE)
    dims = vi[node.output[0]].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims][-1] == 64   # q_proj: 4 heads x 16


def test_io_names_follow_genai_contract(exported):
    ckpt, onnx_path = exported("llama", "plain")
    model = onnx.load(str(onnx_path), load_external_data=False)
    summary = io_summary(ckpt)
    assert [i.name for i in model.graph.input] == [s["name"] for s in summary["inputs"]]
    assert [o.name for o in model.graph.output] == [s["name"] for s in summary["outputs"]]
    assert [i.name for i in model.graph.input][:5] == [
        "input_ids", "attention_mask", "position_ids", "past_key_values.0.key",
        "past_key_values.0.value"]
    past = model.graph.input[3].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in past] == ["batch_size", 2, "past_sequence_length", 8]
    logits = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in logits] == ["batch_size", "sequence_length", 64]


def test_fp_linears_kept_outside_vptq(tmp_path):
    """A checkpoint whose o_proj stayed full precision: Gemm(transB=1) on the stored weight."""
    ckpt = build_checkpoint(tmp_path / "ckpt", "llama", keep_fp=("o_proj",))
    out = export_model(ckpt, tmp_path / "m.onnx", ExportOptions(progress=False))
    model = onnx.load(str(out), load_external_data=False)
    assert sum(n.op_type == OP_TYPE for n in model.graph.node) == 2 * 6
    for step, outs, ref, _, _, valid in run_steps(out, ckpt, steps=1):
        assert rel_err(outs["logits"][valid], ref[valid]) <= RTOL_FP32


# ------------------------------------------------------------------------------------ one layer
def test_export_layer(tmp_path, exported):
    from onnx.reference import ReferenceEvaluator

    from vptq_export.checkpoint import VPTQCheckpoint
    from vptq_export.reference import vptq_linear

    ckpt, _ = exported("llama", "residual_perm_norm")
    name = "model.layers.1.mlp.down_proj"
    out = export_layer(ckpt, name, tmp_path / "layer.onnx", ExportOptions(progress=False))
    model = onnx.load(str(out))
    assert [n.op_type for n in model.graph.node] == [OP_TYPE]
    x_dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert x_dims == ["batch_size", "sequence_length", 48]
    x = np.random.default_rng(0).standard_normal((2, 3, 48)).astype(np.float32)
    (y,) = ReferenceEvaluator(str(out), new_ops=[VPTQGemm]).run(None, {"X": x})
    layer = VPTQCheckpoint(ckpt).layer(name)
    np.testing.assert_allclose(y, vptq_linear(torch.from_numpy(x), layer).numpy(), rtol=1e-6,
                               atol=1e-6)


# ------------------------------------------------------------------------------------ errors
def test_not_a_vptq_checkpoint(tmp_path):
    d = tmp_path / "fp"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="quantization_config"):
        export_model(d, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_architecture(tmp_path, exported):
    ckpt, _ = exported("llama", "plain")
    bad = tmp_path / "ckpt"
    shutil.copytree(ckpt, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_type"] = "gpt_neox"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedModelError, match="gpt_neox"):
        export_model(bad, tmp_path / "m.onnx")
    # the CLI prints one line and exits 2
    proc = subprocess.run([sys.executable, "-m", "vptq_export", "export", str(bad), "-o",
                           str(tmp_path / "m.onnx"), "--no-progress"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "gpt_neox" in proc.stderr
    assert list(tmp_path.glob("m.onnx*")) == []


def test_unsupported_rope_and_activation(tmp_path):
    from vptq_export.export.decoder_config import DecoderConfig
    from transformers import AutoConfig

    cfg = AutoConfig.for_model(**dict(FAMILY_CONFIGS["llama"], rope_parameters=dict(
        rope_type="dynamic", rope_theta=10000.0, factor=2.0)))
    with pytest.raises(UnsupportedModelError, match="dynamic"):
        DecoderConfig.from_hf_config(cfg)
    cfg = AutoConfig.for_model(**dict(FAMILY_CONFIGS["llama"], hidden_act="gelu"))
    with pytest.raises(UnsupportedModelError, match="gelu"):
        DecoderConfig.from_hf_config(cfg)


def test_unknown_tensor_is_an_error(tmp_path):
    ckpt = build_checkpoint(tmp_path / "ckpt", "llama")
    from safetensors.torch import save_file
    save_file({"model.layers.0.extra_gate.weight": torch.zeros(4, 4, dtype=torch.float16)},
              str(ckpt / "extra.safetensors"))
    with pytest.raises(UnsupportedModelError, match="extra_gate"):
        export_model(ckpt, tmp_path / "m.onnx", ExportOptions(progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_bad_dtype():
    with pytest.raises(VPTQError, match="float64"):
        ExportOptions(dtype="float64").torch_dtype


# ------------------------------------------------------------------------------------ atomicity
def test_failure_leaves_nothing_and_keeps_previous_model(tmp_path, monkeypatch, exported):
    ckpt, good = exported("llama", "plain")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    shutil.copy(good, out_dir / "model.onnx")
    shutil.copy(str(good) + ".data", out_dir / "model.onnx.data")
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}

    from vptq_export.export import decoder

    calls = []
    original = decoder.DecoderGraph.layer

    def failing_layer(self, i, x):
        calls.append(i)
        if i == 1:                                  # after layer 0's weights were written
            raise RuntimeError("disk on fire")
        return original(self, i, x)

    monkeypatch.setattr(decoder.DecoderGraph, "layer", failing_layer)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_model(ckpt, out_dir / "model.onnx", ExportOptions(progress=False))
    assert calls == [0, 1]
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before   # no temp dirs either
    with pytest.raises(RuntimeError):
        export_model(ckpt, tmp_path / "new" / "model.onnx", ExportOptions(progress=False))
    assert list((tmp_path / "new").iterdir()) == []


def test_cli_export_and_layer(tmp_path, exported):
    ckpt, _ = exported("qwen2", "plain")
    from vptq_export.cli import main

    assert main(["export", str(ckpt), "-o", str(tmp_path / "a" / "model.onnx"), "--dtype",
                 "float16", "--no-progress"]) == 0
    m = onnx.load(str(tmp_path / "a" / "model.onnx"), load_external_data=False)
    assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert (tmp_path / "a" / "model.onnx.data").stat().st_size > 0
    assert main(["export", str(ckpt), "-o", str(tmp_path / "q.onnx"), "--layer",
                 "model.layers.0.self_attn.q_proj", "--no-progress"]) == 0
    m = onnx.load(str(tmp_path / "q.onnx"))
    (node,) = m.graph.node
    assert {a.name: a.i for a in node.attribute if a.type == onnx.AttributeProto.INT}["has_bias"] == 1


# ------------------------------------------------------------------------------------ ORT
def _with_dequantized_gemms(model: onnx.ModelProto) -> onnx.ModelProto:
    """A test-only copy where each VPTQGemm is MatMul(X, W^T) (+ bias) with W dequantized by the
    reference: runs the standard-op part of the graph in ONNX Runtime without our op library."""
    from onnx import helper, numpy_helper

    from vptq_export.op_spec import OpAttributes, layer_from_op
    from vptq_export.reference import dequantize

    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    for n in model.graph.node:
        if n.op_type != OP_TYPE:
            nodes.append(n)
            continue
        attrs = OpAttributes.from_dict({a.name: helper.get_attribute_value(a) for a in n.attribute})
        weights = {k: numpy_helper.to_array(inits[i]).copy()
                   for k, i in zip(attrs.input_names()[1:], n.input[1:])}
        layer = layer_from_op(attrs, weights, name=n.name)
        wt = dequantize(layer).T.contiguous().numpy()
        wname = n.name + "/W_T"
        model.graph.initializer.append(numpy_helper.from_array(wt, wname))
        mm_out = n.output[0] + "/mm" if attrs.has_bias else n.output[0]
        nodes.append(helper.make_node("MatMul", [n.input[0], wname], [mm_out]))
        if attrs.has_bias:
            nodes.append(helper.make_node("Add", [mm_out, n.input[-1]], [n.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_onnxruntime_cpu_runs_the_graph(exported, family):
    """ORT's CPU EP loads the exported graph and, with VPTQGemm swapped for MatMul on the
    reference-dequantized weight, its logits match the reference model through the KV cache."""
    import onnxruntime as ort

    ckpt, onnx_path = exported(family, "residual_perm_norm")
    model = onnx.load(str(onnx_path))
    with pytest.raises(Exception, match="VPTQGemm"):   # without our op library: only our op fails
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    swapped = _with_dequantized_gemms(model)
    sess = ort.InferenceSession(swapped.SerializeToString(), providers=["CPUExecutionProvider"])
    _compare_session(sess, onnx_path, ckpt, tol=RTOL_FP32)


def _compare_session(sess, onnx_path, ckpt, *, tol):
    """Drive `sess` with the same inputs as run_steps and compare with the reference logits."""
    from transformers import DynamicCache

    from vptq_export.reference.model import load_reference_model

    model = load_reference_model(ckpt)
    cfg = model.config
    summary = io_summary(ckpt)
    rng = np.random.default_rng(7)
    b, s = 2, 6
    mask = np.ones((b, s), np.int64)
    mask[1, :2] = 0
    feed = {"input_ids": rng.integers(0, cfg.vocab_size, (b, s)), "attention_mask": mask,
            "position_ids": np.clip(np.cumsum(mask, 1) - 1, 0, None)}
    for i in range(summary["num_layers"]):
        for kind in ("key", "value"):
            feed[f"past_key_values.{i}.{kind}"] = np.zeros(
                (b, summary["num_key_value_heads"], 0, summary["head_dim"]), np.float32)
    cache = DynamicCache(config=cfg)
    names = [o.name for o in sess.get_outputs()]
    for _ in range(3):
        outs = dict(zip(names, sess.run(None, feed)))
        with torch.no_grad():
            ref = model(input_ids=torch.from_numpy(feed["input_ids"]),
                        attention_mask=torch.from_numpy(feed["attention_mask"]),
                        position_ids=torch.from_numpy(feed["position_ids"]), use_cache=True,
                        **{_cache_kwarg(model): cache}).logits.numpy()
        valid = feed["attention_mask"][:, -feed["input_ids"].shape[1]:].astype(bool)
        assert rel_err(outs["logits"][valid], ref[valid]) <= tol
        feed = dict(feed, input_ids=rng.integers(0, cfg.vocab_size, (b, 1)),
                    attention_mask=np.concatenate([feed["attention_mask"],
                                                   np.ones((b, 1), np.int64)], 1),
                    position_ids=feed["position_ids"][:, -1:] + 1)
        for i in range(summary["num_layers"]):
            for kind in ("key", "value"):
                feed[f"past_key_values.{i}.{kind}"] = outs[f"present.{i}.{kind}"]


def test_onnxruntime_with_op_library(exported):
    """End to end in ORT CPU with engineer C's libvptq_ort (skips when it is not built)."""
    from vptq_export.errors import BackendUnavailableError

    try:
        from vptq_export.native import ort_library_path
        from vptq_export.ort_session import create_session
        ort_library_path()
    except (ImportError, BackendUnavailableError) as exc:
        pytest.skip(f"ORT op library unavailable: {exc}")
    ckpt, onnx_path = exported("mistral", "outliers_groups")
    sess = create_session(onnx_path, providers="cpu")
    # the op library's CPU kernel accumulates in fp32 like the reference; allow 1e-4 for its
    # different summation order over 2 layers of fp32 activations
    _compare_session(sess, onnx_path, ckpt, tol=1e-4)


def test_stray_bias_outside_layer_config_is_ignored_like_upstream(tmp_path, exported):
    """bias tensor present but the layer config says bias=false: microsoft/VPTQ and the
    reference ignore it; the export does too, with a warning, and still matches."""
    ckpt, _ = exported("qwen2", "plain")
    bad = tmp_path / "ckpt"
    shutil.copytree(ckpt, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["quantization_config"]["config_for_layers"]["model.layers.0.self_attn.q_proj"]["bias"] = False
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="q_proj.bias"):
        out = export_model(bad, tmp_path / "m.onnx", ExportOptions(progress=False))
    for step, outs, ref, _, _, valid in run_steps(out, bad, steps=1):
        assert rel_err(outs["logits"][valid], ref[valid]) <= RTOL_FP32


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_quantized_tiny_models_match_reference(tiny_vptq_checkpoint, tmp_path, family):
    """The trained tiny models quantized by vptq_export.quantize (conftest fixtures) export and
    match the reference through prefill + 2 decode steps."""
    ckpt = tiny_vptq_checkpoint(family)
    out = export_model(ckpt, tmp_path / "model.onnx", ExportOptions(progress=False))
    model = onnx.load(str(out), load_external_data=False)
    assert sum(n.op_type == OP_TYPE for n in model.graph.node) == len(_vptq_shapes(ckpt))
    for step, outs, ref, _, _, valid in run_steps(out, ckpt):
        assert rel_err(outs["logits"][valid], ref[valid]) <= RTOL_FP32, f"step {step}"
