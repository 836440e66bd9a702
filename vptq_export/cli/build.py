"""`vptq-export build`: exported model.onnx -> TensorRT / TensorRT-RTX engine with the VPTQGemm
plugin; mirrors `vptq_export.tensorrt.builder.build_engine`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="build a TensorRT engine from an exported model.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Parse MODEL (an exported model.onnx) with TensorRT's ONNX parser, the VPTQGemm "
                    "plugin library loaded (every vptq.VPTQGemm node becomes the plugin), and build an "
                    "engine with one optimization profile over batch / new tokens / cached tokens. "
                    "Without --fp16/--bf16 the network is strongly typed: it runs in the dtype the model "
                    "was exported in.",
        epilog="examples:\n"
               "  vptq-export build out/model.onnx -o out/model.engine\n"
               "  vptq-export build out/model.onnx -o out/model.engine --backend tensorrt-rtx "
               "--max-batch 1 --max-seq 256 --max-past 1024\n"
               "equivalent trtexec line: samples/trtexec/README.md\n")
    p.add_argument("model", metavar="MODEL", help="exported model.onnx (with its .onnx.data next to it)")
    p.add_argument("-o", "--output", metavar="ENGINE", help="engine path (default: MODEL with .engine)")
    p.add_argument("--backend", choices=("tensorrt", "tensorrt-rtx"), default=None,
                   help="TensorRT 10.x or TensorRT-RTX (default: the first one installed)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true",
                           help="TensorRT 10 only: weakly typed network with FP16 kernels allowed")
    precision.add_argument("--bf16", action="store_true",
                           help="TensorRT 10 only: weakly typed network with BF16 kernels allowed")
    p.add_argument("--max-batch", type=int, default=1, metavar="N", help="largest batch (default 1)")
    p.add_argument("--max-seq", type=int, default=512, metavar="N",
                   help="most new tokens in one step, i.e. the prefill length (default 512)")
    p.add_argument("--max-past", type=int, default=512, metavar="N",
                   help="most cached tokens (default 512)")
    p.add_argument("--opt-seq", type=int, default=1, metavar="N",
                   help="new tokens the profile is tuned for (default 1: decode)")
    p.add_argument("--workspace-mib", type=int, default=None, metavar="MIB", help="builder workspace limit")
    p.add_argument("--version-compatible", action="store_true",
                   help="TensorRT 10: version-compatible plan with the plugin library embedded")
    p.add_argument("--plugin", metavar="LIB", help="plugin library (default: the installed libvptq_trt.so)")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..tensorrt.builder import BuildOptions, build_engine
    from ..tensorrt.profiles import ProfileLimits

    model = Path(args.model)
    output = Path(args.output) if args.output else model.with_suffix(".engine")
    limits = ProfileLimits(max_batch=args.max_batch, max_seq=args.max_seq, max_past=args.max_past,
                           opt_seq=min(args.opt_seq, args.max_seq))
    options = BuildOptions(backend=args.backend, fp16=args.fp16, bf16=args.bf16, limits=limits,
                           workspace_mib=args.workspace_mib, version_compatible=args.version_compatible,
                           verbose=args.verbose)
    result = build_engine(model, output, options, plugin_library=args.plugin)
    print(result.summary())
    return 0
