"""`vptq-export generate`: text generation with any backend; mirrors
`vptq_export.runtime.text.generate_text`."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    from ..runtime.backends import BACKENDS, DTYPES

    p = subparsers.add_parser(
        "generate", help="generate text from a checkpoint or an exported model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate text with the runtime's generation loop (KV cache kept by the "
                    "backend). PATH is a VPTQ checkpoint directory (default backend: the PyTorch "
                    "reference) or an exported model.onnx (default backend: ort-cpu). The "
                    "tokenizer is read offline from --tokenizer, the model's directory, or "
                    "--checkpoint. Greedy unless --temperature > 0.",
        epilog="examples:\n"
               "  vptq-export generate tiny-vptq --prompt \"The quick brown fox\"\n"
               "  vptq-export generate out/model.onnx --prompt \"Once upon a time\" "
               "--max-new-tokens 48\n"
               "  vptq-export generate out/model.onnx --prompt Hi --temperature 0.8 --top-p 0.9 "
               "--seed 0\n")
    p.add_argument("path", metavar="PATH", help="checkpoint directory or model.onnx")
    p.add_argument("--prompt", action="append", required=True, metavar="TEXT",
                   help="prompt (repeat for a batch; prompts are left-padded together)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="reference | ort-cpu | ort-cuda | tensorrt (default from PATH)")
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint (for the reference backend "
                   "with a model.onnx PATH, and as a tokenizer source)")
    p.add_argument("--tokenizer", metavar="DIR", help="directory with tokenizer.json")
    p.add_argument("--engine", metavar="PATH", help="TensorRT engine (backend tensorrt)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32",
                   help="reference backend dtype (default float32)")
    p.add_argument("--max-new-tokens", type=int, default=32, metavar="N")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1: off)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (reproducible output)")
    p.add_argument("--no-stream", action="store_true", help="print only when done")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runtime.backends import parse_dtype
    from ..runtime.sampling import SamplingConfig
    from ..runtime.text import generate_text

    try:
        sampling = SamplingConfig(temperature=args.temperature, top_k=args.top_k,
                                  top_p=args.top_p, seed=args.seed)
    except ValueError as exc:
        from ..errors import VPTQError
        raise VPTQError(str(exc)) from None
    stream = None
    single = len(args.prompt) == 1 and not args.no_stream
    started = []
    if single:
        def stream(piece: str) -> None:
            if not started:                 # the prompt, once the model and tokenizer loaded
                sys.stdout.write(args.prompt[0])
                started.append(True)
            sys.stdout.write(piece)
            sys.stdout.flush()

    out = generate_text(args.path, args.prompt, backend=args.backend, checkpoint=args.checkpoint,
                        tokenizer_dir=args.tokenizer, engine=args.engine,
                        max_new_tokens=args.max_new_tokens, sampling=sampling,
                        dtype=parse_dtype(args.dtype), stream=stream)
    if single:
        sys.stdout.write("\n" if started else f"{args.prompt[0]}{out.completions[0]}\n")
    else:
        for i, (prompt, completion) in enumerate(zip(out.prompts, out.completions)):
            print(f"[{i}] {prompt}{completion}")
    r = out.result
    n = sum(len(t) for t in r.tokens)
    print(f"[{out.backend}] {n} tokens, first token {1000 * r.ttft_s:.1f} ms, decode "
          f"{r.decode_tokens_per_s:.1f} steps/s, finish: {', '.join(r.finish_reasons)}",
          file=sys.stderr)
    return 0
