"""The generation loop: against transformers' own `generate` (independent greedy decoding with
its own cache handling), across backends (ORT CPU vs the reference), padded batches vs single
prompts, sampling reproducibility, stop tokens and streaming."""

from __future__ import annotations

import pytest
import torch

from vptq_export.runtime.generate import generate
from vptq_export.runtime.reference_backend import ReferenceBackend
from vptq_export.runtime.sampling import SamplingConfig

PROMPTS = [[55, 260, 224, 84, 88], [100, 101], [7, 30, 31, 200, 201, 202, 17]]

# Checkpoint formats the CPU generation tests run on (QuantizeOptions fields, per family).
FORMATS = [
    pytest.param("llama", dict(vector_len=8, centroids=256), id="llama-v8k256"),
    pytest.param("llama", dict(vector_len=4, centroids=64, res_centroids=16, perm=True, norm=True),
                 id="llama-v4k64r16-perm-norm"),
    pytest.param("qwen2", dict(vector_len=6, centroids=128, outlier_fraction=0.1),
                 id="qwen2-v6-outliers-bias"),
    pytest.param("mistral", dict(vector_len=8, centroids=256, res_centroids=4, packed=False,
                                 group_num=2), id="mistral-unpacked-groups"),
]


def _hf_greedy(model, prompt, n):
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                                                           dtype=torch.long),
                         max_new_tokens=n, min_new_tokens=n, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()


# ----------------------------------------------------------------------------- export helper
@pytest.fixture(scope="session")
def exported_onnx(tmp_path_factory):
    """exported_onnx(ckpt_dir, dtype="float32") -> model.onnx (B's exporter), cached; skips
    with the reason when the exporter or the ORT op library is not available."""
    cache = {}

    def make(ckpt, dtype: str = "float32"):
        try:
            from vptq_export.export import export_model
        except ImportError as exc:
            pytest.skip(f"exporter not available: {exc}")
        from vptq_export.native import has_ort_library
        if not has_ort_library():
            pytest.skip("ONNX Runtime op library libvptq_ort.so is not built")
        key = (str(ckpt), dtype)
        if key not in cache:
            out = tmp_path_factory.mktemp("onnx") / "model.onnx"
            export_for_tests(export_model, ckpt, out, dtype)
            cache[key] = out
        return cache[key]

    return make


def export_for_tests(export_model, ckpt, out, dtype: str):
    from vptq_export.export.options import ExportOptions
    export_model(ckpt, out, ExportOptions(dtype=dtype, progress=False))


# ----------------------------------------------------------------------------- reference
@pytest.mark.parametrize("family,options", FORMATS[:1] + FORMATS[2:3])
def test_reference_greedy_equals_transformers_generate(tiny_vptq_checkpoint, family, options):
    backend = ReferenceBackend(tiny_vptq_checkpoint(family, **options))
    n = 12
    for prompt in PROMPTS:
        ours = generate(backend, [prompt], max_new_tokens=n).tokens[0]
        assert ours == _hf_greedy(backend.model, prompt, n)


def test_padded_batch_equals_single_prompts_reference(tiny_vptq_checkpoint):
    backend = ReferenceBackend(tiny_vptq_checkpoint("llama"))
    batch = generate(backend, PROMPTS, max_new_tokens=10, pad_token_id=3)
    for prompt, tokens in zip(PROMPTS, batch.tokens):
        assert tokens == generate(backend, [prompt], max_new_tokens=10).tokens[0]


def test_sampling_reproducible_with_seed(tiny_vptq_checkpoint):
    backend = ReferenceBackend(tiny_vptq_checkpoint("llama"))
    cfg = SamplingConfig(temperature=1.5, top_k=50, top_p=0.95, seed=123)
    a = generate(backend, PROMPTS, max_new_tokens=12, sampling=cfg).tokens
    b = generate(backend, PROMPTS, max_new_tokens=12, sampling=cfg).tokens
    c = generate(backend, PROMPTS, max_new_tokens=12,
                 sampling=SamplingConfig(temperature=1.5, top_k=50, top_p=0.95, seed=124)).tokens
    assert a == b
    assert a != c           # 36 tokens drawn at temperature 1.5: a different seed differs
    # top_k = 1 leaves one candidate: sampling must reproduce greedy decoding
    greedy = generate(backend, PROMPTS, max_new_tokens=12).tokens
    assert generate(backend, PROMPTS, max_new_tokens=12,
                    sampling=SamplingConfig(temperature=1.0, top_k=1, seed=5)).tokens == greedy


def test_stop_tokens_and_streaming(tiny_vptq_checkpoint):
    backend = ReferenceBackend(tiny_vptq_checkpoint("llama"))
    free = generate(backend, PROMPTS[:2], max_new_tokens=8).tokens
    stop = free[0][3]                                # prompt 0 reaches it at step <= 3
    first = free[0].index(stop)
    streamed = []
    res = generate(backend, PROMPTS[:2], max_new_tokens=8, stop_tokens=[stop],
                   streamer=streamed.append)
    assert res.tokens[0] == free[0][:first + 1] and res.finish_reasons[0] == "stop"
    if stop not in free[1]:
        assert res.tokens[1] == free[1] and res.finish_reasons[1] == "length"
    # the streamer saw every token of every row, in order, and None after a row stopped
    for row in range(2):
        seen = [step[row] for step in streamed if step[row] is not None]
        assert seen == res.tokens[row]
    assert all(step[0] is None for step in streamed[first + 1:])


# ----------------------------------------------------------------------------- ORT CPU
@pytest.mark.parametrize("family,options", FORMATS)
def test_ort_cpu_greedy_equals_reference(tiny_vptq_checkpoint, exported_onnx, family, options):
    from vptq_export.runtime.ort_backend import OrtBackend

    ckpt = tiny_vptq_checkpoint(family, **options)
    model = exported_onnx(ckpt)
    reference = ReferenceBackend(ckpt)
    with OrtBackend(model, "ort-cpu") as ort_backend:
        for prompt in PROMPTS:
            expected = generate(reference, [prompt], max_new_tokens=12).tokens[0]
            assert generate(ort_backend, [prompt], max_new_tokens=12).tokens[0] == expected


def test_ort_cpu_padded_batch_equals_single_prompts(tiny_vptq_checkpoint, exported_onnx):
    from vptq_export.runtime.ort_backend import OrtBackend

    ckpt = tiny_vptq_checkpoint("llama")
    with OrtBackend(exported_onnx(ckpt), "ort-cpu") as backend:
        batch = generate(backend, PROMPTS, max_new_tokens=10, pad_token_id=3)
        for prompt, tokens in zip(PROMPTS, batch.tokens):
            assert tokens == generate(backend, [prompt], max_new_tokens=10).tokens[0]


def test_ort_cpu_sampling_matches_reference_with_seed(tiny_vptq_checkpoint, exported_onnx):
    """Same seed, same distributions (fp32 parity) -> the same sampled tokens."""
    from vptq_export.runtime.ort_backend import OrtBackend

    ckpt = tiny_vptq_checkpoint("llama")
    cfg = SamplingConfig(temperature=0.9, top_p=0.9, seed=11)
    expected = generate(ReferenceBackend(ckpt), PROMPTS, max_new_tokens=10, sampling=cfg).tokens
    with OrtBackend(exported_onnx(ckpt), "ort-cpu") as backend:
        assert generate(backend, PROMPTS, max_new_tokens=10, sampling=cfg).tokens == expected


# ----------------------------------------------------------------------------- CLI
def test_generate_cli_uses_checkpoint_tokenizer(tiny_vptq_checkpoint, capsys):
    from transformers import AutoTokenizer

    from vptq_export.cli import main as cli_main

    ckpt = tiny_vptq_checkpoint("llama")
    assert cli_main(["generate", str(ckpt), "--prompt", "Once upon a time",
                     "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out.strip()
    tok = AutoTokenizer.from_pretrained(str(ckpt))
    expected = generate(ReferenceBackend(ckpt), [tok("Once upon a time").input_ids],
                        max_new_tokens=8, stop_tokens=[2]).tokens[0]
    assert out == "Once upon a time" + tok.decode(expected, skip_special_tokens=True)


def test_generate_cli_without_tokenizer_is_a_clear_error(tiny_vptq_checkpoint, tmp_path, capsys):
    import shutil

    from vptq_export.cli import main as cli_main

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_vptq_checkpoint("llama"), ckpt)
    for f in ckpt.glob("tokenizer*"):
        f.unlink()
    assert cli_main(["generate", str(ckpt), "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    assert "no tokenizer found" in err and str(ckpt) in err and "--tokenizer" in err
