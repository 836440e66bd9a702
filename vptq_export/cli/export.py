"""`vptq-export export`: a VPTQ checkpoint -> model.onnx; mirrors
`vptq_export.export.export_model` (and `export_layer` with --layer)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..export.options import DEFAULT_DTYPE, DTYPES

    p = subparsers.add_parser(
        "export", help="export a VPTQ checkpoint to ONNX (one vptq.VPTQGemm node per VPTQ linear)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a decoder-only ONNX model with KV cache (ORT GenAI I/O names: "
                    "input_ids, attention_mask, position_ids, past_key_values.N.key|value -> "
                    "logits, present.N.key|value) from a VPTQ checkpoint of the Llama, Qwen2 or "
                    "Mistral family. Every VPTQ linear becomes one vptq.VPTQGemm node fed with "
                    "the checkpoint's packed indices and codebooks (never dequantized); "
                    "everything else is standard ONNX, opset 17. Weights go to MODEL.data beside "
                    "the model; both files appear atomically when the export succeeds.",
        epilog="examples:\n"
               "  vptq-export export tiny-vptq -o out/model.onnx\n"
               "  vptq-export export ckpt -o out/model.onnx --dtype float16\n"
               "  vptq-export export ckpt -o q.onnx --layer model.layers.0.self_attn.q_proj\n")
    p.add_argument("checkpoint", metavar="CHECKPOINT_DIR", help="VPTQ checkpoint directory")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx",
                   help="output model path (weights go to MODEL.onnx.data)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=DEFAULT_DTYPE,
                   help=f"activation/codebook dtype (default {DEFAULT_DTYPE}: runs on every ORT "
                        "EP; float16 for GPUs)")
    p.add_argument("--layer", metavar="NAME",
                   help="export only this VPTQ linear as a one-node model (X -> Y)")
    p.add_argument("--check-indices", action="store_true",
                   help="decode every index and check it against the codebook sizes (slower)")
    p.add_argument("--no-check", action="store_true",
                   help="skip onnx.checker (full) on the result")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-genai-config", action="store_true",
                   help="do not write genai_config.json (+ tokenizer files and a copy of the op "
                        "library) for onnxruntime-genai beside the model")
    p.add_argument("--genai-provider", choices=("cpu", "cuda"), default="cpu",
                   help="execution provider named in genai_config.json (default cpu)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export import ExportOptions, export_layer, export_model

    options = ExportOptions(dtype=args.dtype, check_indices=args.check_indices,
                            progress=not args.no_progress, validate=not args.no_check)
    if args.layer:
        out = export_layer(args.checkpoint, args.layer, args.output, options)
        print(f"wrote layer {args.layer} to {out}")
    else:
        out = export_model(args.checkpoint, args.output, options)
        print(f"wrote {out} (+ {out.name}.data)")
        if not args.no_genai_config:
            _write_genai_config(args, out)
    return 0


def _write_genai_config(args, onnx_path) -> None:
    from ..checkpoint import VPTQCheckpoint
    from ..errors import BackendUnavailableError
    from ..native import ort_library_path
    from ..runtime.genai_config import write_genai_config

    try:
        library = ort_library_path()
    except BackendUnavailableError as exc:
        print(f"note: no genai_config.json written: {exc}")
        return
    ckpt = VPTQCheckpoint(args.checkpoint)
    path = write_genai_config(onnx_path.parent, onnx_path, ckpt.model_config, library,
                              tokenizer_dir=args.checkpoint, provider=args.genai_provider)
    print(f"wrote {path} (onnxruntime-genai; op library copied beside the model)")
