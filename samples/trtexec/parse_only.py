#!/usr/bin/env python3
"""Parse an ONNX model with the TensorRT (or TensorRT-RTX) ONNX parser only — no build — with or
without the VPTQGemm plugin library loaded, and print what the parser says. A diagnostic for
parser failures: run it in a subprocess per case so that an abort inside the parser is reported
as that case's exit status instead of killing the caller.

    python samples/trtexec/parse_only.py model.onnx [--plugin libvptq_trt.so] [--backend tensorrt-rtx]
"""

from __future__ import annotations

import argparse
import sys


def _flushing_logger(trt, min_severity):
    """A logger that writes each message to stderr at once: trt.Logger's own output may still sit in
    a buffer when the process aborts, hiding the last (most useful) message."""

    class FlushingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            if int(severity) <= int(min_severity):
                print(f"[TRT] [{str(severity).split('.')[-1]}] {msg}", file=sys.stderr, flush=True)

    return FlushingLogger()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--plugin", help="plugin library to load first (default: none)")
    ap.add_argument("--backend", default="tensorrt-rtx", choices=("tensorrt", "tensorrt-rtx"))
    ap.add_argument("--verbose", action="store_true", help="TensorRT logger at VERBOSE (default WARNING); "
                    "with VPTQ_TRT_TRACE=1 the plugin also prints each method it enters")
    args = ap.parse_args(argv)

    from vptq_export.tensorrt.backend import load_backend

    backend = load_backend(args.backend)
    trt = backend.module
    logger = _flushing_logger(trt, trt.Logger.VERBOSE if args.verbose else trt.Logger.WARNING)
    if args.plugin:
        handle = trt.get_plugin_registry().load_library(args.plugin)
        print(f"loaded plugin library {args.plugin}: {handle is not None}", flush=True)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) \
        if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    print(f"{backend.describe()}: parsing {args.model}", flush=True)
    ok = parser.parse_from_file(args.model)
    for i in range(parser.num_errors):
        print(f"parser error {i}: {parser.get_error(i)}", flush=True)
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    plugins = [l.name for l in layers if l.type == trt.LayerType.PLUGIN_V3]
    print(f"parsed: {ok}; layers: {len(layers)}; IPluginV3 layers: {len(plugins)}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
