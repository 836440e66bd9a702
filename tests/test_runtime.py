"""Runtime building blocks: left padding, sampling filters, logit metrics, perplexity windows,
the ORT backend's IO binding (on a toy graph of the I/O contract), genai_config.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vptq_export.runtime.batching import left_pad, positions_from_mask
from vptq_export.runtime.evaluate import windows
from vptq_export.runtime.metrics import kl_divergence, logit_errors
from vptq_export.runtime.sampling import SamplingConfig, filter_logits, select_next


# ----------------------------------------------------------------------------- batching
def test_left_pad_masks_and_positions():
    b = left_pad([[5, 6, 7], [8]], pad_token_id=3)
    assert b.input_ids.tolist() == [[5, 6, 7], [3, 3, 8]]
    assert b.attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    # positions count real tokens only: the padded row's token sits at position 0
    assert b.position_ids.tolist() == [[0, 1, 2], [0, 0, 0]]
    assert b.lengths == [3, 1]


def test_positions_continue_after_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1]])
    assert positions_from_mask(mask).tolist() == [[0, 0, 0, 1, 2]]


def test_left_pad_rejects_empty_prompt():
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        left_pad([[1], []])


# ----------------------------------------------------------------------------- sampling
def test_top_k_keeps_k_largest():
    x = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    out = filter_logits(x, SamplingConfig(temperature=1.0, top_k=2))
    assert torch.isfinite(out).tolist() == [[False, True, True, False]]


def test_top_p_keeps_smallest_nucleus():
    # probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.75 needs the first two (0.5 < 0.75 <= 0.8)
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]])
    out = filter_logits(probs.log(), SamplingConfig(temperature=1.0, top_p=0.75))
    assert torch.isfinite(out).tolist() == [[False, True, False, True]]
    # top_p at exactly the first mass keeps only the first
    out = filter_logits(probs.log(), SamplingConfig(temperature=1.0, top_p=0.5))
    assert torch.isfinite(out).tolist() == [[False, True, False, False]]


def test_temperature_scales_logits():
    x = torch.tensor([[1.0, 2.0]])
    assert torch.allclose(filter_logits(x, SamplingConfig(temperature=0.5)), x * 2)


def test_sampling_is_reproducible_and_seed_dependent():
    logits = torch.zeros(4, 50)             # uniform: every draw is pure generator output
    cfg = SamplingConfig(temperature=1.0, seed=7)

    def draw(c):
        g = c.generator()
        return torch.stack([select_next(logits, c, g) for _ in range(10)]).tolist()

    assert draw(cfg) == draw(cfg)
    assert draw(cfg) != draw(SamplingConfig(temperature=1.0, seed=8))


def test_greedy_is_argmax():
    x = torch.tensor([[0.1, 0.9, 0.3], [2.0, -1.0, 0.0]])
    assert select_next(x, SamplingConfig(), None).tolist() == [1, 0]


def test_sampling_config_validates():
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0.0)
    with pytest.raises(ValueError):
        SamplingConfig(temperature=-1.0)


# ----------------------------------------------------------------------------- metrics
def test_kl_matches_hand_computation():
    p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    q = torch.tensor([0.25, 0.75], dtype=torch.float64)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert float(kl_divergence(p.log(), q.log())) == pytest.approx(expected, rel=1e-12)


def test_logit_errors():
    ref = torch.tensor([[1.0, -4.0, 2.0], [0.0, 1.0, 0.5]])
    test = ref.clone()
    test[1, 1] = 0.25                      # flips row 1's argmax to column 2
    e = logit_errors(ref, test)
    assert e.max_abs == pytest.approx(0.75)
    assert e.max_rel == pytest.approx(0.75 / 4.0)
    assert e.top1 == pytest.approx(0.5)
    assert e.kl_max > 0 and e.rows == 2
    assert logit_errors(ref, ref).kl_max == 0.0


def test_logit_errors_non_finite_backend_fails_loudly():
    ref = torch.zeros(1, 4)
    bad = torch.tensor([[0.0, float("nan"), 0.0, 0.0]])
    e = logit_errors(ref, bad)
    assert e.max_abs == float("inf") and e.kl_max == float("inf")


# ----------------------------------------------------------------------------- eval windows
@pytest.mark.parametrize("n,window,stride", [(10, 4, 2), (10, 4, 4), (3, 8, 4), (100, 16, 5)])
def test_windows_score_every_token_once(n, window, stride):
    scored = []
    for begin, end, k in windows(n, window, stride):
        assert end - begin <= window and 1 <= k <= end - begin
        scored += list(range(end - k, end))
    assert scored == list(range(1, n))     # token 0 has no prediction


# ----------------------------------------------------------------------------- ORT IO binding
def _toy_contract_model(path, V=7, D=3, L=2, dtype=np.float32):
    """A graph with the exported model's I/O names whose outputs depend on the past KV cache:
    present.i.key = concat(past, E[ids] * (i + 1)), present.i.value = concat(past, -E[ids]),
    logits = W[ids] + (sum over heads/positions of present.0.key) @ P + position_ids."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    E, W, P = (rng.normal(size=s).astype(dtype) for s in ((V, D), (V, V), (D, V)))
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes = [helper.make_node("Gather", ["E", "input_ids"], ["emb"]),        # [B,S,D]
             helper.make_node("Unsqueeze", ["emb", "ax1"], ["kv_new"])]       # [B,1,S,D]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["b", "s"])]
    outputs = [helper.make_tensor_value_info("logits", elem, ["b", "s", V])]
    inits = [numpy_helper.from_array(E, "E"), numpy_helper.from_array(W, "W"),
             numpy_helper.from_array(P, "P"), numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             numpy_helper.from_array(np.array([1, 2], np.int64), "ax12")]
    for i in range(L):
        inits.append(numpy_helper.from_array(np.array(i + 1, dtype), f"scale{i}"))
        nodes += [helper.make_node("Mul", ["kv_new", f"scale{i}"], [f"k_new{i}"]),
                  helper.make_node("Neg", ["kv_new"], [f"v_new{i}"]),
                  helper.make_node("Concat", [f"past_key_values.{i}.key", f"k_new{i}"],
                                   [f"present.{i}.key"], axis=2),
                  helper.make_node("Concat", [f"past_key_values.{i}.value", f"v_new{i}"],
                                   [f"present.{i}.value"], axis=2)]
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", elem,
                                                        ["b", 1, "p", D]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", elem,
                                                         ["b", 1, "t", D]))
    nodes += [helper.make_node("Gather", ["W", "input_ids"], ["w_rows"]),
              helper.make_node("ReduceSum", ["present.0.key", "ax12"], ["ksum"], keepdims=0),
              helper.make_node("MatMul", ["ksum", "P"], ["kp"]),
              helper.make_node("Unsqueeze", ["kp", "ax1"], ["kp3"]),
              helper.make_node("Cast", ["position_ids"], ["posf"], to=elem),
              helper.make_node("Unsqueeze", ["posf", "ax_last"], ["pos3"]),
              helper.make_node("Add", ["w_rows", "kp3"], ["l0"]),
              helper.make_node("Add", ["l0", "pos3"], ["logits"])]
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "ax_last"))
    graph = helper.make_graph(nodes, "toy", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return E, W, P


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_ort_backend_keeps_cache_between_steps(tmp_path, dtype):
    import onnxruntime as ort

    from vptq_export.runtime.ort_backend import OrtBackend

    E, W, P = (a.astype(np.float64) for a in _toy_contract_model(tmp_path / "toy.onnx",
                                                                dtype=dtype))
    session = ort.InferenceSession(str(tmp_path / "toy.onnx"), providers=["CPUExecutionProvider"])
    backend = OrtBackend(session=session, model_path=tmp_path / "toy.onnx")
    assert (backend.io.num_layers, backend.io.num_kv_heads, backend.io.head_dim,
            backend.io.vocab_size) == (2, 1, 3, 7)
    assert backend.io.dtype == (torch.float16 if dtype == np.float16 else torch.float32)

    steps = [np.array([[1, 4, 2], [0, 5, 6]]), np.array([[3], [2]]), np.array([[6], [1]])]
    cache = backend.new_cache(2)
    seen = np.zeros((2, 0), np.int64)
    tol = 1e-2 if dtype == np.float16 else 1e-5
    for n, ids in enumerate(steps):
        seen = np.concatenate([seen, ids], axis=1)
        pos = np.arange(seen.shape[1] - ids.shape[1], seen.shape[1])[None].repeat(2, 0)
        out = backend.forward(ids, np.ones_like(seen), pos, cache, last_only=(n == 2))
        cache = out.cache
        assert cache.past_length == seen.shape[1]
        expected = W[ids] + (E[seen].sum(1) @ P)[:, None, :] + pos[..., None]
        if n == 2:
            expected = expected[:, -1:]
        assert out.logits.dtype == torch.float32
        np.testing.assert_allclose(out.logits.numpy(), expected, rtol=tol, atol=tol)
    arrays = cache.to_arrays()
    np.testing.assert_allclose(arrays[1][0][:, 0], 2 * E[seen], rtol=tol, atol=tol)
    np.testing.assert_allclose(arrays[1][1][:, 0], -E[seen], rtol=tol, atol=tol)
    # a cache built from host arrays continues identically
    again = backend.forward(np.array([[2], [2]]), np.ones((2, seen.shape[1] + 1)),
                            np.full((2, 1), seen.shape[1]), backend.cache_from_arrays(arrays))
    ref = backend.forward(np.array([[2], [2]]), np.ones((2, seen.shape[1] + 1)),
                          np.full((2, 1), seen.shape[1]), cache)
    np.testing.assert_allclose(again.logits.numpy(), ref.logits.numpy(), rtol=tol, atol=tol)


def test_ort_backend_rejects_model_without_contract(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from vptq_export.errors import UnsupportedModelError
    from vptq_export.runtime.ort_backend import OrtBackend

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "m.onnx"))
    s = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(UnsupportedModelError, match="no input 'input_ids'"):
        OrtBackend(session=s, model_path=tmp_path / "m.onnx")


# ----------------------------------------------------------------------------- genai config
def test_genai_config_contents(tmp_path):
    from vptq_export.runtime.genai_config import write_genai_config

    lib = tmp_path / "libvptq_ort.so"
    lib.write_bytes(b"x")
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}")
    (tok / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 5],
                                                            "pad_token_id": 3}))
    hf = {"model_type": "llama", "num_attention_heads": 4, "num_key_value_heads": 2,
          "hidden_size": 64, "head_dim": 16, "num_hidden_layers": 2, "vocab_size": 384,
          "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2,
          "quantization_config": {"quant_method": "vptq"}}
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"x")
    path = write_genai_config(out, out / "model.onnx", hf, lib, tokenizer_dir=tok)
    cfg = json.loads(path.read_text())
    dec = cfg["model"]["decoder"]
    # copied beside the model and named by file name (ORT GenAI >= 0.18 loads only from there)
    assert dec["session_options"]["custom_ops_library"] == "libvptq_ort.so"
    assert (out / "libvptq_ort.so").read_bytes() == b"x"
    absolute = write_genai_config(out, out / "model.onnx", hf, lib, library="absolute")
    assert json.loads(absolute.read_text())["model"]["decoder"]["session_options"][
        "custom_ops_library"] == str(lib.resolve())
    assert dec["filename"] == "model.onnx"
    assert (dec["head_size"], dec["num_key_value_heads"], dec["num_hidden_layers"]) == (16, 2, 2)
    assert dec["inputs"]["past_key_names"] == "past_key_values.%d.key"
    assert dec["outputs"]["present_value_names"] == "present.%d.value"
    assert cfg["model"]["eos_token_id"] == [2, 5] and cfg["model"]["pad_token_id"] == 3
    assert cfg["model"]["type"] == "llama" and cfg["search"]["past_present_share_buffer"] is False
    assert (out / "tokenizer.json").is_file()
