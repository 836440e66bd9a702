"""`vptq-export demo`: the whole pipeline on a built-in tiny model, offline, in seconds.

    make_tiny_model -> quantize_model (VPTQ, ~2.5 index bits/weight) -> export_model (fp32 ONNX,
    one vptq.VPTQGemm per linear) -> ONNX Runtime CPU with our op library -> parity against the
    PyTorch reference -> a short generated text -> a compact report.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

DEMO_PROMPTS = ("The quick brown fox", "Once upon a time there was", "On Monday the weather was")
GENERATE_PROMPT = "Once upon a time"


def demo_quantize_options():
    """2.5 index bits per weight: vectors of 4 weights, a 64-entry codebook (6 bits) and a
    16-entry residual codebook (4 bits); norm + perm exercise those op inputs."""
    from ..quantize import QuantizeOptions
    return QuantizeOptions(vector_len=4, centroids=64, res_centroids=16, perm=True, norm=True,
                           kmeans_iters=40)


@dataclass
class DemoReport:
    workdir: Path
    sizes: dict[str, int]
    bits_per_weight: float
    codebook_bits_per_weight: float
    parity: object                      # ParityReport
    prompt: str
    completion: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.parity.passed)

    def text(self) -> str:
        mib = lambda n: f"{n / 1024:.0f} KiB"          # noqa: E731 - tiny files
        s = self.sizes
        lines = [
            "vptq-export demo: tiny llama -> VPTQ -> ONNX (fp32) -> ONNX Runtime CPU",
            f"  artifacts      {self.workdir}",
            f"  sizes          fp16 model {mib(s['fp16_model'])}, VPTQ checkpoint "
            f"{mib(s['vptq_checkpoint'])}, model.onnx {mib(s['onnx'])}",
            f"  bits/weight    {self.bits_per_weight:.2f} index bits (+{self.codebook_bits_per_weight:.2f}"
            " codebook bits: the tiny matrices make codebooks relatively large)",
            "  timings        " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()),
            "",
            self.parity.table(per_step=False),
            "",
            f"  generate (ort-cpu, greedy): {self.prompt!r} -> {self.completion!r}",
            "",
            f"demo {'PASSED' if self.passed else 'FAILED: ONNX Runtime output differs from the reference'}",
        ]
        return "\n".join(lines)


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_demo(workdir: str | os.PathLike | None = None, *, steps: int = 8,
             log: Callable[[str], None] = lambda msg: None) -> DemoReport:
    """Run the pipeline in `workdir` (kept) or a temporary directory (removed afterwards)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="vptq-demo-") as tmp:
            return _run(Path(tmp), steps, log)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    return _run(work, steps, log)


def _run(work: Path, steps: int, log) -> DemoReport:
    from ..export import export_model
    from ..inspection import inspect_checkpoint
    from ..quantize import quantize_model
    from ..tiny_models import make_tiny_model
    from .compare import compare_backends
    from .generate import generate
    from .ort_backend import OrtBackend
    from .reference_backend import ReferenceBackend
    from .text import special_token_ids
    from .tokenizer import encode, load_tokenizer

    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()           # the report is the output; no shard bars
    timings: dict[str, float] = {}

    def timed(name, fn):
        log(f"[demo] {name} ...")
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        return out

    fp_dir, ckpt_dir, onnx_dir = work / "tiny-llama", work / "tiny-llama-vptq", work / "onnx"
    timed("make-tiny", lambda: make_tiny_model("llama", fp_dir, overwrite=True))
    timed("quantize", lambda: quantize_model(fp_dir, ckpt_dir, demo_quantize_options(),
                                             overwrite=True, progress=False))
    onnx_dir.mkdir(exist_ok=True)
    onnx_path = onnx_dir / "model.onnx"
    timed("export", lambda: export_demo_model(export_model, ckpt_dir, onnx_path))

    def parity():
        reference = ReferenceBackend(ckpt_dir, torch.float32)
        backend = OrtBackend(onnx_path, "ort-cpu")
        tok = load_tokenizer(ckpt_dir)
        prompts = [encode(tok, p) for p in DEMO_PROMPTS]
        return compare_backends(reference, backend, prompts, steps=steps,
                                session=backend.session), backend, tok

    report, backend, tok = timed("run+compare", parity)
    stops, pad = special_token_ids(tok, ckpt_dir)
    result = generate(backend, [encode(tok, GENERATE_PROMPT)], max_new_tokens=24,
                      stop_tokens=stops, pad_token_id=pad)
    completion = tok.decode(result.tokens[0], skip_special_tokens=True)
    info = inspect_checkpoint(ckpt_dir)
    sizes = {"fp16_model": _dir_size(fp_dir), "vptq_checkpoint": _dir_size(ckpt_dir),
             "onnx": _dir_size(onnx_dir)}
    return DemoReport(workdir=work, sizes=sizes, bits_per_weight=info["bits_per_weight"],
                      codebook_bits_per_weight=info["codebook_bits_per_weight"], parity=report,
                      prompt=GENERATE_PROMPT, completion=completion, timings=timings)


def export_demo_model(export_model, ckpt_dir: Path, onnx_path: Path):
    """fp32 export (the CPU EP's native dtype; parity tolerance 1e-4 relative)."""
    from ..export.options import ExportOptions
    return export_model(ckpt_dir, onnx_path, ExportOptions(dtype="float32", progress=False))
