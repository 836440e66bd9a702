"""`vptq-export` command line. Each subcommand lives in its own module of this package and
exposes `register(subparsers)` (adds its parser, sets `func`) mirroring a Python API function.

Errors derived from VPTQError are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import VPTQError

# Subcommand modules, in --help order. A module missing from an installation is skipped.
SUBCOMMANDS = (
    "demo", "make_tiny", "quantize", "inspect", "export", "gen_checkpoint", "doctor", "build",
    "generate", "compare", "eval",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vptq-export",
        description="Export VPTQ-quantized LLM checkpoints to ONNX (one vptq.VPTQGemm node per "
                    "VPTQ linear), run them with ONNX Runtime or TensorRT, and compare every "
                    "backend with the PyTorch reference.",
        epilog="Start with `vptq-export demo`: it makes a tiny model, quantizes, exports, runs "
               "and compares, with no downloads. `vptq-export COMMAND --help` for each command.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"vptq-export {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except VPTQError as exc:
        print(f"vptq-export {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
