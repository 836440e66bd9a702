"""`vptq-export make-tiny`: a tiny trained HF model (offline), mirrors
`vptq_export.tiny_models.make_tiny_model`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..tiny_models import DEFAULT_TRAIN_STEPS, FAMILIES

    p = subparsers.add_parser(
        "make-tiny", help="make a tiny trained Hugging Face model (no download)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a tiny causal LM of the given family (2 layers, hidden 64-96, a "
                    "byte-level BPE tokenizer of 384 tokens), train it for a few seconds on a "
                    "built-in English text so that its predictions are confident, and save it "
                    "with save_pretrained (fp16 safetensors + tokenizer.json). The result loads "
                    "with transformers' AutoModelForCausalLM / AutoTokenizer offline and is the "
                    "input of `vptq-export quantize`.\n\n"
                    "families: llama (GQA, llama3 rope scaling), qwen2 (q/k/v bias, tied "
                    "embeddings), mistral (head_dim != hidden/heads, untied lm_head)",
        epilog="examples:\n"
               "  vptq-export make-tiny llama -o out/tiny-llama\n"
               "  vptq-export make-tiny qwen2 -o out/tiny-qwen2 --seed 1\n"
               "  vptq-export quantize out/tiny-llama -o out/tiny-llama-vptq\n")
    p.add_argument("family", choices=FAMILIES, help="model family")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--seed", type=int, default=0, help="initialisation/training seed (default 0)")
    p.add_argument("--train-steps", type=int, default=DEFAULT_TRAIN_STEPS, metavar="N",
                   help=f"training steps (default {DEFAULT_TRAIN_STEPS}; 0 keeps random init)")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..tiny_models import make_tiny_model

    out = make_tiny_model(args.family, args.output, seed=args.seed, train_steps=args.train_steps,
                          overwrite=args.overwrite)
    print(f"wrote tiny {args.family} model to {out}")
    return 0
