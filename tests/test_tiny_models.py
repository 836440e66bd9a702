"""Tiny trained models: family features present, tokenizer loads offline, logits peaked,
deterministic for a seed."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from vptq_export.errors import VPTQError
from vptq_export.tiny_models import FAMILIES, VOCAB_SIZE, make_tiny_model
from vptq_export.tiny_text import builtin_text


def _tensor_names(d):
    with safe_open(str(d / "model.safetensors"), framework="pt") as f:
        return set(f.keys())


@pytest.mark.parametrize("family", FAMILIES)
def test_family_features(tiny_fp_model, family):
    d = tiny_fp_model(family)
    cfg = json.loads((d / "config.json").read_text())
    names = _tensor_names(d)
    assert cfg["model_type"] == family
    assert cfg["num_hidden_layers"] == 2 and cfg["vocab_size"] == VOCAB_SIZE
    assert cfg["num_key_value_heads"] < cfg["num_attention_heads"]          # GQA everywhere
    assert (d / "model.safetensors").stat().st_size < 4 * 1024 * 1024
    with safe_open(str(d / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("model.embed_tokens.weight").dtype == torch.float16
    if family == "llama":
        rope = cfg.get("rope_parameters") or cfg.get("rope_scaling")
        assert rope["rope_type"] == "llama3" and rope["factor"] > 1
        assert "lm_head.weight" in names and not cfg["tie_word_embeddings"]
    if family == "qwen2":
        assert cfg["tie_word_embeddings"] and "lm_head.weight" not in names
        for proj in ("q_proj", "k_proj", "v_proj"):
            assert f"model.layers.0.self_attn.{proj}.bias" in names
        assert "model.layers.0.self_attn.o_proj.bias" not in names
        assert cfg["intermediate_size"] % 8 != 0
    if family == "mistral":
        assert "lm_head.weight" in names and not cfg["tie_word_embeddings"]
        assert cfg["head_dim"] * cfg["num_attention_heads"] != cfg["hidden_size"]


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_and_peaked_logits(tiny_fp_model, family, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = tiny_fp_model(family)
    tok = AutoTokenizer.from_pretrained(str(d))
    text = builtin_text()[:400]
    ids = tok(text, return_tensors="pt").input_ids
    assert int(ids.max()) < VOCAB_SIZE
    assert tok.decode(ids[0]) == text                       # byte-level BPE is lossless
    assert tok.eos_token == "</s>" and tok.eos_token_id == 2 and tok.pad_token_id == 3

    model = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32)
    with torch.no_grad():
        probs = model(ids).logits.softmax(-1)
    # Random init gives max prob ~1/384; the trained model is confident on its training text.
    assert probs.max(-1).values.mean() > 0.5
    prompt = tok("On Monday the weather", return_tensors="pt").input_ids
    out = model.generate(prompt, max_new_tokens=6, do_sample=False)
    assert tok.decode(out[0, prompt.shape[1]:]).startswith(" was")


def test_deterministic_for_seed(tmp_path):
    a = make_tiny_model("llama", tmp_path / "a", seed=3, train_steps=5)
    b = make_tiny_model("llama", tmp_path / "b", seed=3, train_steps=5)
    c = make_tiny_model("llama", tmp_path / "c", seed=4, train_steps=5)
    for f in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_errors(tmp_path):
    with pytest.raises(VPTQError, match="unknown tiny-model family 'gpt2'"):
        make_tiny_model("gpt2", tmp_path / "x")
    (tmp_path / "exists").mkdir()
    with pytest.raises(VPTQError, match="exists"):
        make_tiny_model("llama", tmp_path / "exists", train_steps=0)
    out = make_tiny_model("qwen2", tmp_path / "exists", train_steps=0, overwrite=True)
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()


def test_llama3_rope_hits_all_three_bands(tiny_fp_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_fp_model("llama")), dtype=torch.float32)
    rotary = model.model.rotary_emb
    assert rotary.rope_type == "llama3"
    default = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    ratio = rotary.inv_freq.double() / default
    assert ratio[0] == pytest.approx(1.0)                   # high frequency: kept
    assert ((ratio[1:3] > 1 / 8 + 1e-3) & (ratio[1:3] < 1 - 1e-3)).all()   # smoothed band
    assert ratio[3:].tolist() == pytest.approx([1 / 8] * 5)  # low frequency: divided by factor
