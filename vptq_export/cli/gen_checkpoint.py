"""`vptq-export gen-checkpoint`: random-code VPTQ checkpoints of real model shapes; mirrors
`vptq_export.gen_checkpoint.generate_checkpoint`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..gen_checkpoint import PRESETS

    p = subparsers.add_parser(
        "gen-checkpoint", help="write a random-code VPTQ checkpoint with a real model's shapes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a VPTQ checkpoint whose tensors have the exact shapes and layout of a "
                    "quantized Llama-3.1 8B/70B, Qwen2.5-7B or Mistral-7B (random codes and "
                    "codebooks: it computes nothing useful) for scale tests and benchmarks. "
                    "Streams one decoder layer per safetensors shard.",
        epilog="examples:\n"
               "  vptq-export gen-checkpoint --preset llama3-8b --codebook v8-k65536 -o ckpt-8b\n"
               "  vptq-export gen-checkpoint --preset llama3-70b --codebook v8-k65536-256 "
               "--layers 4 -o ckpt-70b-4l\n")
    p.add_argument("--preset", required=True, choices=tuple(PRESETS), help="model shapes")
    p.add_argument("--codebook", default="v8-k65536", metavar="vV-kK[-KRES]",
                   help="vector length, centroids, optional residual centroids "
                        "(default v8-k65536: 2 bits/weight)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--layers", type=int, metavar="N", help="keep only the first N decoder layers")
    p.add_argument("--dtype", choices=("float16", "bfloat16"), default="float16",
                   help="checkpoint float dtype (default float16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..gen_checkpoint import generate_checkpoint

    out = generate_checkpoint(args.output, args.preset, args.codebook, layers=args.layers,
                              dtype=getattr(torch, args.dtype), seed=args.seed,
                              progress=not args.no_progress, overwrite=args.overwrite)
    print(f"wrote {args.preset} ({args.codebook}) checkpoint to {out}")
    return 0
