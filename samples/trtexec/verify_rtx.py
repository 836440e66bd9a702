#!/usr/bin/env python3
"""Verify the VPTQGemm plugin with TensorRT-RTX (or TensorRT) on a GPU host:

  1. export a tiny VPTQ model (tiny llama -> VPTQ checkpoint -> model.onnx), unless --model;
  2. load libvptq_trt.so into the plugin registry, parse model.onnx with the ONNX parser and check
     that every vptq.VPTQGemm node became a VPTQGemm IPluginV3 layer (name, version, namespace);
  3. build and serialize the engine (strongly typed, one profile);
  4. deserialize it and run one prefill + one decode step against the PyTorch reference, or
     record the exact message when the runtime refuses (TensorRT-RTX on an H100, compute
     capability 9.0, is expected to refuse);
  5. write every result to --report (JSON) and print a summary.

Exit status: 0 when steps 1-3 passed (4 may be "refused" with the message recorded), 1 otherwise.

  python samples/trtexec/verify_rtx.py --backend tensorrt-rtx --work /tmp/vptq-rtx --report $OUT/rtx.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

try:
    import vptq_export  # noqa: F401  (installed package)
except ImportError:      # run from a source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def make_tiny_export(work: Path, dtype: str) -> Path:
    from vptq_export.export import ExportOptions, export_model
    from vptq_export.quantize import QuantizeOptions, quantize_model
    from vptq_export.tiny_models import make_tiny_model

    fp = work / "tiny-llama"
    ckpt = work / "tiny-llama-vptq"
    model = work / f"onnx-{dtype}" / "model.onnx"
    if not fp.exists():
        make_tiny_model("llama", fp)
    if not ckpt.exists():
        quantize_model(fp, ckpt, QuantizeOptions(vector_len=8, centroids=256, res_centroids=16, perm=True,
                                                 norm=True), progress=False)
    if not model.exists():
        export_model(ckpt, model, ExportOptions(dtype=dtype, progress=False))
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("tensorrt", "tensorrt-rtx"), default="tensorrt-rtx")
    ap.add_argument("--model", help="an exported model.onnx (default: export a tiny one into --work)")
    ap.add_argument("--dtype", default="float16", help="export dtype of the tiny model (default float16)")
    ap.add_argument("--work", default="/tmp/vptq-verify-rtx", help="scratch directory")
    ap.add_argument("--plugin", help="libvptq_trt.so (default: the installed one, or VPTQ_TRT_LIBRARY)")
    ap.add_argument("--report", help="write the JSON report here")
    args = ap.parse_args()

    report: dict = {"backend": args.backend, "host": platform.node(), "python": platform.python_version(),
                    "steps": {}}
    steps = report["steps"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    def record(name: str, fn):
        started = time.monotonic()
        try:
            value = fn()
            steps[name] = {"ok": True, "seconds": round(time.monotonic() - started, 2), "result": value}
            return value
        except Exception as exc:   # recorded verbatim: this script is a probe
            steps[name] = {"ok": False, "seconds": round(time.monotonic() - started, 2),
                           "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            return None

    try:
        import torch
        report["torch"] = torch.__version__
        if torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name()
            report["compute_capability"] = "%d.%d" % torch.cuda.get_device_capability()
    except ImportError:
        pass

    from vptq_export import native
    from vptq_export.tensorrt.backend import load_backend
    from vptq_export.tensorrt.builder import (BuildOptions, CapturingLogger, build_engine, count_vptq_nodes,
                                              load_plugin_library, parse_onnx, plugin_layers)
    from vptq_export.tensorrt.profiles import ProfileLimits

    backend = record("import", lambda: load_backend(args.backend).describe())
    plugin = args.plugin or record("plugin_library", lambda: str(native.trt_plugin_path()))
    report["plugin_library"] = plugin
    if plugin is None:
        return finish(report, args.report, ok=False)
    model = Path(args.model) if args.model else record("export", lambda: str(make_tiny_export(work, args.dtype)))
    if backend is None or model is None:
        return finish(report, args.report, ok=False)
    model = Path(model)
    b = load_backend(args.backend)
    trt = b.module

    def parse():
        logger = CapturingLogger(trt)
        load_plugin_library(b, plugin)
        _builder, network, _parser = parse_onnx(b, logger, model, strongly_typed=True)
        layers = plugin_layers(trt, network)
        details = []
        for layer in layers:
            core = layer.plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
            details.append((layer.name, core.plugin_name, core.plugin_version, core.plugin_namespace))
        nodes = count_vptq_nodes(model)
        bad = [d for d in details if d[1:] != ("VPTQGemm", "1", "vptq")]
        if len(layers) != nodes or bad:
            raise RuntimeError(f"{nodes} VPTQGemm nodes, {len(layers)} plugin layers, mismatched: {bad}")
        return {"vptq_nodes": nodes, "plugin_layers": len(layers), "first": details[:3]}

    if record("parse_and_map", parse) is None:
        return finish(report, args.report, ok=False)
    engine = work / f"model-{args.backend}.engine"
    limits = ProfileLimits(max_batch=2, max_seq=64, max_past=128)
    built = record("build_and_serialize", lambda: build_engine(
        model, engine, BuildOptions(backend=args.backend, limits=limits, progress=False), plugin_library=plugin
    ).summary())
    if built is None:
        return finish(report, args.report, ok=False)
    print(built)

    def run():
        import numpy as np
        import torch
        from vptq_export.reference.model import load_reference_model
        from vptq_export.tensorrt.runner import EngineRunner

        runner = EngineRunner(engine, backend=args.backend, plugin_library=plugin)
        io = runner.model_io()
        ckpt = work / "tiny-llama-vptq"
        result = {"model_io": {k: str(v) for k, v in io.items()}}
        if not ckpt.exists():
            return result
        ref = load_reference_model(ckpt, io["dtype"]).cuda().eval()
        rng = np.random.default_rng(0)
        ids = torch.from_numpy(rng.integers(0, io["vocab_size"], (1, 12))).cuda()
        pos = torch.arange(12, device="cuda")[None]
        logits, present = runner.step(ids, torch.ones_like(ids), pos)
        with torch.no_grad():
            want = ref(input_ids=ids, use_cache=False).logits.float()
        nxt = logits[:, -1:].float().argmax(-1)
        logits2, _ = runner.step(nxt, torch.ones((1, 13), dtype=torch.int64, device="cuda"),
                                 torch.tensor([[12]], device="cuda"), present)
        with torch.no_grad():
            want2 = ref(input_ids=torch.cat([ids, nxt], 1), use_cache=False).logits.float()[:, -1:]
        result.update(prefill_max_abs=float((logits.float() - want).abs().max()),
                      decode_max_abs=float((logits2.float() - want2).abs().max()),
                      prefill_top1_agree=float((logits.float().argmax(-1) == want.argmax(-1)).float().mean()),
                      logits_scale=float(want.abs().max()))
        return result

    ran = record("deserialize_and_run", run)
    if ran is None:
        err = steps["deserialize_and_run"]["error"]
        steps["deserialize_and_run"]["refused_on_this_gpu"] = "cannot run on this GPU" in err or \
            "compute capability" in err
    return finish(report, args.report, ok=True)


def finish(report: dict, path: str | None, *, ok: bool) -> int:
    text = json.dumps(report, indent=2, default=str)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    for name, step in report["steps"].items():
        status = "ok" if step["ok"] else "FAILED"
        print(f"{name:22s} {status:7s} {step['seconds']:7.1f}s  {step.get('error') or ''}".rstrip())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
