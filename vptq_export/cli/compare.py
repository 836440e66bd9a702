"""`vptq-export compare`: step-wise parity of a backend against the PyTorch reference; mirrors
`vptq_export.runtime.compare.compare_model`. Exit status 1 when parity fails."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..runtime.backends import DTYPES

    p = subparsers.add_parser(
        "compare", help="compare a backend with the PyTorch reference, step by step",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the PyTorch reference of --checkpoint and a backend on the same "
                    "prompts. Teacher-forced (both fed the reference's greedy tokens): per step "
                    "max abs / max rel logit error, KL(reference || backend), top-1 agreement. "
                    "Free-running: the first step where greedy decoding diverges. Per output "
                    "(Polygraphy Comparator): logits and every present.* KV tensor on identical "
                    "single-step inputs. Tolerances depend on the export dtype (docs/runtime.md). "
                    "Exit status 0 = parity, 1 = parity failed, 2 = error.",
        epilog="examples:\n"
               "  vptq-export compare out/model.onnx --checkpoint tiny-vptq --backend ort-cpu\n"
               "  vptq-export compare out/model.onnx --checkpoint tiny-vptq --steps 32 --json\n"
               "  vptq-export compare out/model.onnx --checkpoint ckpt --backend tensorrt "
               "--engine out/model.engine\n")
    p.add_argument("model", metavar="MODEL", help="exported model.onnx")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="the VPTQ checkpoint it "
                   "was exported from (the reference)")
    p.add_argument("--backend", choices=("ort-cpu", "ort-cuda", "tensorrt"), default="ort-cpu")
    p.add_argument("--engine", metavar="PATH", help="TensorRT engine (backend tensorrt)")
    p.add_argument("--prompts", nargs="+", metavar="TEXT", help="prompts (default: 3 built-in)")
    p.add_argument("--prompt-ids", action="append", metavar="IDS",
                   help="a prompt as comma-separated token ids (repeatable; no tokenizer needed)")
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer directory (default: beside "
                   "the model, else the checkpoint)")
    p.add_argument("--steps", type=int, default=16, metavar="N", help="decode steps (default 16)")
    p.add_argument("--reference-dtype", choices=tuple(DTYPES), default="float32",
                   help="dtype of the reference (default float32: the checkpoint's exact math)")
    p.add_argument("--no-output-check", action="store_true",
                   help="skip the per-output (Polygraphy) check")
    p.add_argument("--summary", action="store_true", help="no per-step table")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--verbose", action="store_true", help="Polygraphy's own log")
    p.set_defaults(func=run)


def parse_ids(text: str) -> list[int]:
    from ..errors import VPTQError
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise VPTQError(f"--prompt-ids {text!r}: expected comma-separated integers") from None
    if not ids:
        raise VPTQError("--prompt-ids: empty prompt")
    return ids


def run(args) -> int:
    from ..runtime.backends import parse_dtype
    from ..runtime.compare import compare_model

    report = compare_model(
        args.model, args.checkpoint, args.backend, engine=args.engine, prompts=args.prompts,
        prompt_ids=[parse_ids(t) for t in args.prompt_ids] if args.prompt_ids else None,
        steps=args.steps, reference_dtype=parse_dtype(args.reference_dtype),
        tokenizer_dir=args.tokenizer, output_check=not args.no_output_check,
        verbose=args.verbose)
    print(report.to_json() if args.json else report.table(per_step=not args.summary))
    return 0 if report.passed else 1
