"""Tiny, trained Hugging Face causal LMs made offline: the test and demo models of vptq-export.

    path = make_tiny_model("llama", "out/tiny-llama")     # a few seconds on a CPU

The directory holds what `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`
need, with no download: `config.json`, `model.safetensors` (fp16 by default), `generation_config.json`,
`tokenizer.json` + `tokenizer_config.json` (a byte-level BPE of a few hundred tokens trained on the
built-in text of `vptq_export.tiny_text`).

The model is trained for a few hundred steps of next-token prediction on the same text, so its
next-token distributions are peaked (random init gives near-uniform logits, useless for greedy
parity tests). Everything is deterministic for a seed on a given machine (single-threaded training).

Each family exercises what distinguishes it:
- llama:   grouped-query attention (2 KV heads for 4 heads), `rope_type: llama3` scaling whose
           three frequency bands (kept / smoothed / scaled) are all hit, untied lm_head;
- qwen2:   q/k/v biases, tied embeddings, an intermediate size (180) that is not a multiple of 8;
- mistral: explicit head_dim (32) different from hidden/heads (16), so q_proj is 64 -> 128,
           GQA, untied lm_head, a sliding window longer than max_position_embeddings.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from .errors import VPTQError
from .tiny_text import builtin_text

FAMILIES = ("llama", "qwen2", "mistral")

VOCAB_SIZE = 384
MAX_POSITIONS = 256
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")     # ids 0..3

_COMMON = dict(vocab_size=VOCAB_SIZE, num_hidden_layers=2, max_position_embeddings=MAX_POSITIONS,
               rms_norm_eps=1e-5, hidden_act="silu", initializer_range=0.05,
               bos_token_id=1, eos_token_id=2, pad_token_id=3, use_cache=True)

# Per-family architecture: small enough that quantize / export / ORT take seconds.
FAMILY_CONFIGS: dict[str, dict] = {
    "llama": dict(
        model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=64,
        intermediate_size=192, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
        # head_dim 16, theta 1e4: wavelengths 6.3 ... 19869; with original_max_position 64 and
        # factors 1 / 4 the bands < 16 are kept, 16..64 smoothed, > 64 scaled by 8.
        rope_parameters=dict(rope_type="llama3", rope_theta=10000.0, factor=8.0,
                             low_freq_factor=1.0, high_freq_factor=4.0,
                             original_max_position_embeddings=64)),
    "qwen2": dict(
        model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=96,
        intermediate_size=180, num_attention_heads=6, num_key_value_heads=2,
        tie_word_embeddings=True, use_sliding_window=False,
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
    "mistral": dict(
        model_type="mistral", architectures=["MistralForCausalLM"], hidden_size=64,
        intermediate_size=160, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        tie_word_embeddings=False, sliding_window=4096,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
}

DEFAULT_TRAIN_STEPS = 300
_SEQ_LEN = 64
_BATCH = 16
_LR = 3e-3


def make_tiny_model(family: str, out_dir: str | os.PathLike, *, seed: int = 0,
                    train_steps: int = DEFAULT_TRAIN_STEPS, dtype: torch.dtype = torch.float16,
                    overwrite: bool = False) -> Path:
    """Build, train and save a tiny `family` model ("llama", "qwen2", "mistral") in `out_dir`.

    `train_steps=0` keeps the random init. The directory is written atomically; an existing
    `out_dir` is an error unless `overwrite`. Returns `out_dir` as a Path."""
    if family not in FAMILIES:
        raise VPTQError(f"unknown tiny-model family {family!r} (choose from {', '.join(FAMILIES)})")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise VPTQError(f"{out} exists (pass overwrite=True / --overwrite to replace it)")
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    tokenizer = build_tokenizer()
    ids = torch.tensor(tokenizer.encode(builtin_text()).ids, dtype=torch.long)

    cfg = dict(_COMMON)
    cfg.update(FAMILY_CONFIGS[family])
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)

    threads = torch.get_num_threads()
    rng_state = torch.random.get_rng_state()
    try:
        torch.set_num_threads(1)       # deterministic reductions, and no fight over shared cores
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                 attn_implementation="eager")
        _train(model, ids, steps=train_steps, seed=seed)
    finally:
        torch.set_num_threads(threads)
        torch.random.set_rng_state(rng_state)
    model.eval()
    model.to(dtype)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=3,
                                               do_sample=False, max_new_tokens=32)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tokenizer, tmp)
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def build_tokenizer():
    """A byte-level BPE (`tokenizers.Tokenizer`) of VOCAB_SIZE tokens trained on the built-in
    text; ids 0..3 are <unk> <s> </s> <pad>. Deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([builtin_text()], trainer=trainer)
    return tok


def save_tokenizer(tok, out_dir: Path) -> None:
    """tokenizer.json + tokenizer_config.json (+ special tokens) loadable by AutoTokenizer."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>",
                                   model_max_length=MAX_POSITIONS)
    fast.save_pretrained(str(out_dir))


def training_batches(ids: torch.Tensor, steps: int, seed: int):
    """`steps` batches [_BATCH, _SEQ_LEN] of random windows of the token stream."""
    gen = torch.Generator().manual_seed(seed)
    span = _SEQ_LEN
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - span, (_BATCH,), generator=gen)
        yield torch.stack([ids[s:s + span] for s in starts.tolist()])


def _train(model, ids: torch.Tensor, *, steps: int, seed: int) -> None:
    if steps <= 0:
        return
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=_LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 20)
                                              * max(0.1, 1 - i / steps))
    for batch in training_batches(ids, steps, seed):
        out = model(input_ids=batch, labels=batch)   # transformers shifts the labels
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
