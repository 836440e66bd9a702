#!/usr/bin/env python3
"""Build a one-layer TensorRT (or TensorRT-RTX) network by hand — input X, the layer's weights as
constants, one VPTQGemm plugin layer created through the plugin registry — without the ONNX
parser, then try to serialize an engine. Prints what each step returned and every logger message
(flushed at once, so nothing is lost if the process aborts). A diagnostic that separates the
parser from the builder when `vptq-export build` fails.

    python samples/trtexec/add_plugin_direct.py --plugin libvptq_trt.so [--backend tensorrt-rtx]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin", required=True, help="libvptq_trt.so")
    ap.add_argument("--backend", default="tensorrt-rtx", choices=("tensorrt", "tensorrt-rtx"))
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from vptq_export import synthetic
    from vptq_export.op_spec import OpAttributes, op_weight_inputs
    from vptq_export.tensorrt.backend import load_backend
    from vptq_export.tensorrt.plugin_host import FieldType, op_fields

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from parse_only import _flushing_logger

    backend = load_backend(args.backend)
    trt = backend.module
    logger = _flushing_logger(trt, trt.Logger.VERBOSE if args.verbose else trt.Logger.INFO)
    registry = trt.get_plugin_registry()
    print(f"{backend.describe()}; load_library: {registry.load_library(args.plugin) is not None}", flush=True)
    creator = registry.get_creator("VPTQGemm", "1", "vptq")
    print(f"creator: {creator}", flush=True)

    spec = synthetic.make_spec(name="direct", in_features=64, out_features=48, v=8, k=256)
    attrs = OpAttributes.from_spec(spec)
    fields = []
    for name, (ftype, value) in op_fields(attrs, parser_extras=False).items():
        if ftype == FieldType.INT32:
            fields.append(trt.PluginField(name, np.array([value], dtype=np.int32), trt.PluginFieldType.INT32))
        else:
            fields.append(trt.PluginField(name, np.frombuffer(value.encode(), dtype=np.int8),
                                          trt.PluginFieldType.CHAR))
    plugin = creator.create_plugin("direct.VPTQGemm", trt.PluginFieldCollection(fields), trt.TensorRTPhase.BUILD)
    print(f"create_plugin: {plugin}", flush=True)

    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) \
        if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") else 0
    network = builder.create_network(flags)
    x = network.add_input("X", trt.float16, (-1, attrs.in_features))
    layer = synthetic.random_layer(spec, torch.float16, 0)
    inputs = [x]
    keep = []
    for name, value in op_weight_inputs(layer, torch.float16).items():
        arr = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        arr = np.ascontiguousarray(arr)
        keep.append(arr)
        inputs.append(network.add_constant(arr.shape, trt.Weights(arr)).get_output(0))
        print(f"constant {name}: {arr.dtype} {arr.shape}", flush=True)
    print(f"INetworkDefinition plugin methods: {[m for m in dir(network) if 'plugin' in m.lower()]}", flush=True)
    if not hasattr(network, "add_plugin_v3"):
        print("no add_plugin_v3: this TensorRT cannot hold IPluginV3 layers", flush=True)
        return 2
    print("calling add_plugin_v3 ...", flush=True)
    plugin_layer = network.add_plugin_v3(inputs, [], plugin)
    print(f"add_plugin_v3: {plugin_layer}", flush=True)
    if plugin_layer is None:
        return 1
    network.mark_output(plugin_layer.get_output(0))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("X", (1, attrs.in_features), (4, attrs.in_features), (64, attrs.in_features))
    config.add_optimization_profile(profile)
    print("building ...", flush=True)
    engine = builder.build_serialized_network(network, config)
    print(f"build_serialized_network: {'None' if engine is None else f'{engine.nbytes} bytes'}", flush=True)
    return 0 if engine is not None else 1


if __name__ == "__main__":
    sys.exit(main())
