#!/usr/bin/env python
"""Generate text from an exported VPTQ model with ONNX Runtime, from Python.

    vptq-export make-tiny llama -o tiny && vptq-export quantize tiny -o tiny-vptq
    vptq-export export tiny-vptq -o out/model.onnx
    python samples/python/generate_ort.py out/model.onnx --tokenizer tiny-vptq \
        --prompt "Once upon a time"

The same loop the CLI uses: `OrtBackend` opens the model with the vptq op library registered
(CPU EP, or CUDA EP with --cuda, KV cache kept on the GPU), `generate` left-pads the prompts,
prefills and decodes with the backend's KV cache.
"""

import argparse

from vptq_export.runtime import OrtBackend, SamplingConfig, generate
from vptq_export.runtime.tokenizer import load_tokenizer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--tokenizer", help="directory with tokenizer.json (default: beside model)")
    p.add_argument("--prompt", action="append", default=None)
    p.add_argument("--cuda", action="store_true")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    tok = load_tokenizer(args.tokenizer, args.model)
    prompts = args.prompt or ["Once upon a time", "The quick brown fox"]
    with OrtBackend(args.model, "ort-cuda" if args.cuda else "ort-cpu") as backend:
        result = generate(backend, [tok(p).input_ids for p in prompts], max_new_tokens=32,
                          sampling=SamplingConfig(temperature=args.temperature, seed=args.seed),
                          stop_tokens=[tok.eos_token_id] if tok.eos_token_id is not None else [],
                          pad_token_id=tok.pad_token_id or 0)
    for prompt, tokens in zip(prompts, result.tokens):
        print(prompt + tok.decode(tokens, skip_special_tokens=True))
    print(f"first token {1000 * result.ttft_s:.1f} ms, {result.decode_tokens_per_s:.1f} steps/s")


if __name__ == "__main__":
    main()
