#!/usr/bin/env python
"""End-to-end decode benchmark on one GPU: an exported VPTQ model on ONNX Runtime's CUDA EP vs a
dense fp16 PyTorch model of the same shape (random weights, transformers, eager attention, no
CUDA graphs) vs the PyTorch reference VPTQ path (weights dequantized once and cached, fp16 GEMMs).

    vptq-export gen-checkpoint ... -o ckpt-8b            # an 8B-shaped VPTQ checkpoint (B)
    python benchmarks/e2e_decode.py ckpt-8b [--onnx out/model.onnx]

Measured with the runtime's own generation loop (`vptq_export.runtime.generate`, greedy, no stop
tokens), random prompt tokens:
- TTFT: prefill of a P-token prompt (P = 128, 1024 by default) at batch 1 until the first token
  id is on the host (includes the last-position logits copy and argmax); median of --repeats.
- decode tok/s: batch B (1, 8) after a 128-token prompt, --decode-tokens steps; tokens/s =
  B · steps / time of those steps (the first token, i.e. the prefill, excluded).
Each system runs alone (the previous one is freed first). Prints a table; --json for machines.

--profile-tokens N: GPU time split of batch-1 decode. Kernels are recorded with CUPTI
(torch.profiler, process-wide, so ORT's kernels are seen too) for a prefill-only run and for a
prefill + N-token run of the same prompt; the difference, divided by N, is per decode step.
Kernels are grouped by name: VPTQGemm (our kernels, "vptq" in the name), dense GEMM/GEMV
(cuBLAS / cuBLASLt / CUTLASS / nvjet: attention's QK^T and PV products and the dense lm_head; in
the dense model, every linear), softmax,
memcpy/memset, and everything else (norms, rotary, KV concat, casts, elementwise). "GPU idle" is
wall time per step minus the summed kernel time: launch / host overhead.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="VPTQ checkpoint directory (vptq-export gen-checkpoint)")
    p.add_argument("--onnx", help="exported fp16 model.onnx (default: export into --workdir)")
    p.add_argument("--workdir", default="out/e2e", help="where to export when --onnx is not given")
    p.add_argument("--systems", default="ort-cuda,dense-fp16,reference-vptq",
                   help="comma-separated subset of ort-cuda, dense-fp16, reference-vptq")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--prompt-lens", default="128,1024", help="TTFT prompt lengths")
    p.add_argument("--decode-prompt-len", type=int, default=128)
    p.add_argument("--decode-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile-tokens", type=int, default=0,
                   help="also profile N decode steps at batch 1 (CUPTI via torch.profiler, every "
                        "kernel in the process, ORT's included) and print the GPU time split")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: a smoke run of this script (ORT CPU EP, fp32 PyTorch), no GPU")
    return p.parse_args(argv)


def ints(text):
    return [int(t) for t in text.split(",") if t]


def sync():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def random_prompts(batch, length, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, vocab, (batch, length), generator=g).tolist()


def _kernel_family(name: str) -> str:
    n = name.lower()
    if "vptq" in n:
        return "VPTQGemm"
    if "memcpy" in n or "memset" in n:
        return "memcpy/memset"
    if "softmax" in n:
        return "softmax"
    if any(t in n for t in ("gemm", "gemv", "cutlass", "xmma", "cublas", "matmul", "splitkreduce",
                            "nvjet")):   # nvjet_*: cuBLAS's Hopper GEMM kernels
        return "dense GEMM/GEMV (attention, lm_head)"
    return "other kernels"


def _kernel_times(prof) -> dict:
    """{family: µs} and the largest single dense-GEMM kernel time, from a torch.profiler run."""
    fam: dict[str, float] = {}
    biggest = 0.0
    for e in prof.events():
        t = getattr(e, "device_time", None)
        if t is None:
            t = getattr(e, "cuda_time", 0.0)
        if not t or str(getattr(e, "device_type", "")).endswith("CPU"):
            continue
        f = _kernel_family(e.name)
        fam[f] = fam.get(f, 0.0) + t
        if f.startswith("dense GEMM"):
            biggest = max(biggest, t)
    return fam, biggest


def profile_split(backend, vocab, args) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from vptq_export.runtime.generate import generate

    prompts = random_prompts(1, args.decode_prompt_len, vocab, 11)
    generate(backend, prompts, max_new_tokens=4)
    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as p0:
        generate(backend, prompts, max_new_tokens=1)
        sync()
    with profile(activities=[ProfilerActivity.CUDA]) as p1:
        res = generate(backend, prompts, max_new_tokens=args.profile_tokens + 1)
        sync()
    steps = len(res.step_times_s)
    f0, _ = _kernel_times(p0)
    f1, biggest = _kernel_times(p1)
    per_step = {k: (f1.get(k, 0.0) - f0.get(k, 0.0)) / steps for k in set(f0) | set(f1)}
    wall_us = 1e6 * sum(res.step_times_s) / steps
    out = {f"{k} us/step": v for k, v in sorted(per_step.items(), key=lambda kv: -kv[1])}
    out["largest dense GEMM kernel us (lm_head)"] = biggest
    out["GPU kernel time us/step"] = sum(per_step.values())
    out["wall us/step"] = wall_us
    out["GPU idle us/step"] = wall_us - sum(per_step.values())
    return out


def measure(backend, vocab, args):
    from vptq_export.runtime.generate import generate

    row = {}
    # warm-up: allocator, kernels' lazy init, ORT's first-run shape work
    generate(backend, random_prompts(1, 16, vocab, 0), max_new_tokens=4)
    for plen in ints(args.prompt_lens):
        times = []
        for r in range(args.repeats):
            sync()
            res = generate(backend, random_prompts(1, plen, vocab, 100 + r), max_new_tokens=1)
            times.append(res.ttft_s)
        row[f"ttft_ms@{plen}"] = 1000 * statistics.median(times)
    for b in ints(args.batches):
        prompts = random_prompts(b, args.decode_prompt_len, vocab, 7)
        generate(backend, prompts, max_new_tokens=4)          # warm this batch size
        rates = []
        for _ in range(args.repeats):
            res = generate(backend, prompts, max_new_tokens=args.decode_tokens + 1)
            rates.append(b * len(res.step_times_s) / sum(res.step_times_s))
        row[f"decode_tok_s@b{b}"] = statistics.median(rates)
    return row


def open_system(name, args, onnx_path):
    from vptq_export.checkpoint import VPTQCheckpoint
    from vptq_export.runtime.reference_backend import ReferenceBackend

    device = args.device
    dtype = torch.float16 if device == "cuda" else torch.float32
    if name == "ort-cuda":
        from vptq_export.runtime.ort_backend import OrtBackend
        return OrtBackend(onnx_path, "ort-cuda" if device == "cuda" else "ort-cpu")
    if name == "dense-fp16":
        from transformers import AutoModelForCausalLM

        from vptq_export.reference.model import hf_config
        config = hf_config(VPTQCheckpoint(args.checkpoint))
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype,
                                                     attn_implementation="eager")
        return ReferenceBackend(model=model, dtype=dtype, device=device)
    if name == "reference-vptq":
        from vptq_export.reference.model import ReferenceVPTQLinear, load_reference_model
        model = load_reference_model(args.checkpoint, dtype)
        for m in model.modules():
            if isinstance(m, ReferenceVPTQLinear):
                m.compute_dtype = dtype      # fp16 GEMMs on the GPU (cuBLAS accumulates in fp32)
        return ReferenceBackend(model=model, dtype=dtype, device=device)
    raise SystemExit(f"unknown system {name!r}")


def ensure_onnx(args) -> Path:
    if args.onnx:
        return Path(args.onnx)
    from vptq_export.export import export_model
    from vptq_export.export.options import ExportOptions
    out = Path(args.workdir) / "model.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        export_model(args.checkpoint, out,
                     ExportOptions(dtype="float16" if args.device == "cuda" else "float32"))
        print(f"exported {out} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU (torch.cuda.is_available() is False); --device cpu "
                         "for a smoke run")
    from vptq_export.checkpoint import VPTQCheckpoint
    vocab = int(VPTQCheckpoint(args.checkpoint).model_config["vocab_size"])
    systems = [s for s in args.systems.split(",") if s]
    onnx_path = ensure_onnx(args) if "ort-cuda" in systems else None
    rows = {}
    splits = {}
    for name in systems:
        label = name if cuda else name.replace("ort-cuda", "ort-cpu").replace("fp16", "fp32")
        print(f"[e2e] {label} ...", file=sys.stderr, flush=True)
        backend = open_system(name, args, onnx_path)
        try:
            rows[label] = measure(backend, vocab, args)
            if args.profile_tokens and cuda:
                try:
                    split = profile_split(backend, vocab, args)
                except Exception as exc:  # the timing rows stand without the profile
                    split = {"profile failed": str(exc)}
                print(f"[e2e] {label} decode GPU time split (batch 1):", file=sys.stderr)
                for k, v in split.items():
                    print(f"    {k}: {v:.1f}" if isinstance(v, float) else f"    {k}: {v}",
                          file=sys.stderr, flush=True)
                splits[label] = split
            if cuda:    # torch's allocator only: ORT's arena is not visible here
                rows[label]["peak_torch_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30 \
                    if name != "ort-cuda" else float("nan")
        finally:
            backend.close()
            del backend
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    info = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
            "checkpoint": args.checkpoint, "decode_prompt_len": args.decode_prompt_len,
            "decode_tokens": args.decode_tokens}
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if args.json:
        print(json.dumps({"info": info, "results": rows, "decode_gpu_split": splits}, indent=2))
        return 0
    cols = sorted({k for r in rows.values() for k in r}, key=lambda k: (k.split("@")[0], len(k), k))
    print(" | ".join(f"{k}" for k in ["system"] + cols))
    print(" | ".join("---" for _ in range(len(cols) + 1)))
    for name, r in rows.items():
        print(" | ".join([name] + [f"{r.get(k, float('nan')):.1f}" for k in cols]))
    for name, split in splits.items():
        print(f"\n{name}: decode GPU time split, batch 1, per step")
        for k, v in split.items():
            print(f"  {k}: {v:.1f}" if isinstance(v, float) else f"  {k}: {v}")
    print(f"\n{info}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
