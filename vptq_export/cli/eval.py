"""`vptq-export eval`: perplexity of a backend over a text file and its agreement (KL, top-1)
with the PyTorch reference; mirrors `vptq_export.runtime.evaluate.evaluate_file`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..runtime.backends import DTYPES

    p = subparsers.add_parser(
        "eval", help="perplexity and KL / top-1 agreement with the reference over a text file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Tokenize FILE, slide a window of N tokens with stride S over it (each "
                    "window one prefill; each token scored once, by the first window that "
                    "predicts it with the longest context allowed by the stride), and report "
                    "the backend's perplexity and, with --checkpoint, the reference's perplexity, "
                    "mean KL(reference || backend) and top-1 agreement on the same positions "
                    "(method: docs/runtime.md).",
        epilog="examples:\n"
               "  vptq-export eval out/model.onnx --checkpoint tiny-vptq --text notes.txt\n"
               "  vptq-export eval out/model.onnx --checkpoint ckpt --text wiki.txt --window 512 "
               "--stride 256 --max-tokens 20000\n")
    p.add_argument("model", metavar="MODEL", help="exported model.onnx (or a checkpoint "
                   "directory with --backend reference)")
    p.add_argument("--checkpoint", metavar="DIR", help="the VPTQ checkpoint (reference)")
    p.add_argument("--text", required=True, metavar="FILE", help="UTF-8 text file")
    p.add_argument("--backend", choices=("reference", "ort-cpu", "ort-cuda", "tensorrt"),
                   default="ort-cpu")
    p.add_argument("--engine", metavar="PATH", help="TensorRT engine (backend tensorrt)")
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer directory")
    p.add_argument("--window", type=int, default=128, metavar="N", help="tokens per window "
                   "(default 128)")
    p.add_argument("--stride", type=int, default=64, metavar="S", help="window step (default 64)")
    p.add_argument("--max-tokens", type=int, default=None, metavar="T",
                   help="use only the first T tokens of the file")
    p.add_argument("--reference-dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--no-reference", action="store_true", help="perplexity only")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..runtime.backends import parse_dtype
    from ..runtime.evaluate import evaluate_file

    report = evaluate_file(args.model, args.text, backend=args.backend, checkpoint=args.checkpoint,
                           engine=args.engine, tokenizer_dir=args.tokenizer, window=args.window,
                           stride=args.stride, max_tokens=args.max_tokens,
                           reference_dtype=parse_dtype(args.reference_dtype),
                           with_reference=not args.no_reference)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
    return 0
