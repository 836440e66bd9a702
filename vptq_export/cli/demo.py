"""`vptq-export demo`: the README's main command; mirrors `vptq_export.runtime.demo.run_demo`.
Exit status 1 when ONNX Runtime's output does not match the PyTorch reference."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="tiny model -> VPTQ -> ONNX -> ONNX Runtime, checked against PyTorch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make the built-in tiny llama model (trained for a few seconds on built-in "
                    "text), quantize it with VPTQ (2.5 index bits per weight), export it to ONNX "
                    "(fp32, one vptq.VPTQGemm node per linear), run it with ONNX Runtime on the "
                    "CPU with the vptq op library, compare every decode step with the PyTorch "
                    "reference, generate a short text and print a report. No downloads. "
                    "Exit status 1 if parity fails.",
        epilog="examples:\n  vptq-export demo\n  vptq-export demo --workdir out/demo   "
               "# keep the model, checkpoint and model.onnx\n")
    p.add_argument("--workdir", metavar="DIR", help="keep artifacts here (default: a temporary "
                   "directory, removed afterwards)")
    p.add_argument("--steps", type=int, default=8, metavar="N", help="decode steps compared "
                   "per prompt (default 8)")
    p.add_argument("--json", action="store_true", help="print the parity report as JSON too")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runtime.demo import run_demo

    report = run_demo(args.workdir, steps=args.steps,
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(report.text())
    if args.json:
        print(report.parity.to_json())
    return 0 if report.passed else 1
