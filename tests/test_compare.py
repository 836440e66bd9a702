"""Parity (`vptq-export compare`) and evaluation on exported tiny models: a correct export passes,
a deliberately perturbed one fails with exit status 1; onnxruntime-genai runs the export with our
op library and produces the runtime's greedy tokens."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from test_generate import exported_onnx  # noqa: F401  (session fixture shared by the files)
from vptq_export.cli import main as cli_main
from vptq_export.runtime.compare import compare_backends
from vptq_export.runtime.reference_backend import ReferenceBackend

PROMPTS = [[55, 260, 224, 84, 88], [100, 101, 102]]


def perturbed_copy(ckpt, dst, layer: str, how: str):
    """Copy of `ckpt` with one codebook of `layer` changed: `roll` shifts its entries by one
    (every index decodes to its neighbour's vector: an off-by-one decoding bug), `scale`
    multiplies it by 1.01 (a 1 % codebook error)."""
    shutil.copytree(ckpt, dst)
    files = sorted(dst.glob("*.safetensors"))
    name = f"{layer}.centroids.weight"
    for f in files:
        tensors = load_file(f)
        if name in tensors:
            c = tensors[name]                           # [G, k * v]
            if how == "roll":
                G, kv = c.shape
                v = kv // _num_centroids(ckpt, layer)
                tensors[name] = c.view(G, -1, v).roll(1, dims=1).reshape(G, kv).contiguous()
            else:
                tensors[name] = (c.float() * 1.01).to(c.dtype)
            save_file(tensors, f, metadata={"format": "pt"})
            return dst
    raise AssertionError(f"{name} not found in {ckpt}")


def _num_centroids(ckpt, layer):
    from vptq_export.checkpoint import VPTQCheckpoint
    return VPTQCheckpoint(ckpt).layer_spec(layer).num_centroids


@pytest.fixture(scope="module")
def llama_ckpt(tiny_vptq_checkpoint):
    return tiny_vptq_checkpoint("llama", vector_len=4, centroids=64, res_centroids=16)


def test_compare_passes_on_faithful_export(llama_ckpt, exported_onnx, capsys):
    model = exported_onnx(llama_ckpt)
    rc = cli_main([
        "compare", str(model), "--checkpoint", str(llama_ckpt), "--backend", "ort-cpu",
        "--steps", "6", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0, report["failures"]
    assert report["passed"] and report["dtype"] == "float32"
    s = report["summary"]
    assert s["max_rel"] <= 1e-4 and s["kl_max"] <= 1e-6 and s["top1"] == 1.0
    assert s["greedy_identical"] == s["prompts"] == 3
    # the per-output check covered logits and every present tensor (2 layers x key/value)
    outputs = {c["output"] for c in report["output_checks"]}
    assert outputs == {"logits"} | {f"present.{i}.{k}" for i in range(2) for k in ("key", "value")}


@pytest.mark.parametrize("how", ["roll", "scale"])
def test_compare_fails_on_perturbed_codebook(llama_ckpt, exported_onnx, tmp_path, capsys, how):
    bad_ckpt = perturbed_copy(llama_ckpt, tmp_path / "bad", "model.layers.0.mlp.down_proj", how)
    bad_model = exported_onnx(bad_ckpt)
    rc = cli_main(["compare", str(bad_model), "--checkpoint", str(llama_ckpt),
                   "--steps", "4", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert not report["passed"] and report["failures"]
    assert report["summary"]["max_rel"] > 1e-4
    assert any(not c["passed"] for c in report["output_checks"])


def test_compare_table_and_reference_self_parity(llama_ckpt):
    """The fp16 reference against the fp32 reference: within the fp16 tolerance (the
    derivation in docs/runtime.md) and visibly non-zero."""
    ref = ReferenceBackend(llama_ckpt, torch.float32)
    half = ReferenceBackend(llama_ckpt, torch.float16)
    report = compare_backends(ref, half, PROMPTS, steps=4)
    assert report.passed, report.failures
    s = report.summary()
    assert 0 < s["max_rel"] <= 2e-2
    text = report.table()
    assert "PASS" in text and "step" in text


def test_eval_perplexity_agrees_with_reference(llama_ckpt, exported_onnx, tmp_path, capsys):
    from vptq_export.tiny_text import builtin_text

    text = tmp_path / "text.txt"
    text.write_text(builtin_text()[:1200])
    rc = cli_main(["eval", str(exported_onnx(llama_ckpt)), "--checkpoint", str(llama_ckpt),
                   "--text", str(text), "--window", "64", "--stride", "32", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert r["perplexity"] == pytest.approx(r["reference_perplexity"], rel=1e-4)
    assert r["kl_mean"] <= 1e-7 and r["top1"] == 1.0
    assert 1.0 < r["perplexity"] < 50      # trained on this text: far below the vocab size 384


def test_compare_reports_missing_model(llama_ckpt, tmp_path, capsys):
    rc = cli_main(["compare", str(tmp_path / "none.onnx"), "--checkpoint", str(llama_ckpt)])
    assert rc == 2
    assert "none.onnx" in capsys.readouterr().err


# ----------------------------------------------------------------------------- ORT GenAI
def test_ort_genai_greedy_equals_runtime(llama_ckpt, exported_onnx, tmp_path):
    og = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed")
    from vptq_export.checkpoint import VPTQCheckpoint
    from vptq_export.native import ort_library_path
    from vptq_export.runtime.genai_config import write_genai_config
    from vptq_export.runtime.generate import generate
    from vptq_export.runtime.ort_backend import OrtBackend

    src = exported_onnx(llama_ckpt)
    model_dir = tmp_path / "genai"
    model_dir.mkdir()
    for f in src.parent.iterdir():                     # model.onnx (+ external data)
        shutil.copy(f, model_dir / f.name)
    write_genai_config(model_dir, model_dir / "model.onnx",
                       VPTQCheckpoint(llama_ckpt).model_config, ort_library_path(),
                       tokenizer_dir=llama_ckpt)
    n = 12
    with OrtBackend(src, "ort-cpu") as backend:
        for prompt in PROMPTS:
            ours = generate(backend, [prompt], max_new_tokens=n, stop_tokens=[2]).tokens[0]
            model = og.Model(str(model_dir))
            params = og.GeneratorParams(model)
            params.set_search_options(max_length=len(prompt) + n, do_sample=False)
            gen = og.Generator(model, params)
            gen.append_tokens([prompt])
            while not gen.is_done():
                gen.generate_next_token()
            theirs = list(gen.get_sequence(0))[len(prompt):]
            assert theirs == ours
