"""Parity of a backend against the PyTorch reference, step by step (method in docs/runtime.md).

    report = compare_backends(reference, backend, prompts, steps=16)
    print(report.table()); report.passed

Three views, all on the same prompts (one at a time, batch 1):
1. teacher-forced: both are fed the reference's greedy tokens; per step (step 0 = the prefill,
   every prompt position) max abs / max rel logit error, KL(reference ‖ backend) and top-1
   agreement, so an error is measured where it arises and does not snowball;
2. free-running: each decodes greedily on its own (the runtime's `generate`); the first step
   where the tokens differ is reported, with the reference's top-1 margin there;
3. per output (Polygraphy `Comparator`): single-step feeds with identical inputs, every output
   (`logits` and each `present.*` KV tensor) checked element-wise.
Parity passes when every step of (1) and every output of (3) is within `Tolerance`; (2) is
informational (a greedy flip at a near-tie is allowed and is visible in the report).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from ..errors import VPTQError
from .backend import Backend
from .generate import generate
from .metrics import LogitErrors, logit_errors, top1_margin
from .polygraphy_check import OutputCheck, check_outputs, polygraphy_available
from .tolerances import Tolerance, tolerance_for


@dataclass
class StepParity:
    step: int
    errors: LogitErrors
    ref_token: int
    backend_token: int
    ref_margin: float
    passed: bool

    def as_dict(self) -> dict:
        return {"step": self.step, **self.errors.as_dict(), "ref_token": self.ref_token,
                "backend_token": self.backend_token, "ref_margin": self.ref_margin,
                "passed": self.passed}


@dataclass
class PromptParity:
    prompt: list[int]
    steps: list[StepParity]
    ref_tokens: list[int]               # reference greedy continuation
    backend_tokens: list[int]           # backend greedy continuation (free-running)
    first_divergence: int | None        # first index where they differ, None if identical
    divergence_margin: float | None     # reference top-1 margin at that step

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.steps)

    def as_dict(self) -> dict:
        return {"prompt": self.prompt, "passed": self.passed,
                "ref_tokens": self.ref_tokens, "backend_tokens": self.backend_tokens,
                "first_divergence": self.first_divergence,
                "divergence_margin": self.divergence_margin,
                "steps": [s.as_dict() for s in self.steps]}


@dataclass
class ParityReport:
    backend: str
    reference: str
    dtype: str
    tolerance: Tolerance
    prompts: list[PromptParity]
    output_checks: list[OutputCheck] = field(default_factory=list)
    output_check_note: str = ""

    @property
    def kl_mean(self) -> float:
        rows = [(s.errors.kl_mean, s.errors.rows) for p in self.prompts for s in p.steps]
        total = sum(n for _, n in rows)
        return sum(k * n for k, n in rows) / total if total else 0.0

    @property
    def failures(self) -> list[str]:
        tol, out = self.tolerance, []
        for i, p in enumerate(self.prompts):
            for s in p.steps:
                if not s.passed:
                    out.append(f"prompt {i} step {s.step}: max_rel {s.errors.max_rel:.3g} "
                               f"(tol {tol.max_rel:g}), KL max {s.errors.kl_max:.3g} "
                               f"(tol {tol.kl_max:g})")
        if self.kl_mean > tol.kl_mean:
            out.append(f"mean KL {self.kl_mean:.3g} > tol {tol.kl_mean:g}")
        for c in self.output_checks:
            if not c.passed:
                out.append(f"feed {c.feed} output {c.output}: max abs {c.max_abs:.3g} > "
                           f"atol {c.atol:.3g}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict:
        steps = [s for p in self.prompts for s in p.steps]
        return {
            "max_abs": max(s.errors.max_abs for s in steps),
            "max_rel": max(s.errors.max_rel for s in steps),
            "kl_max": max(s.errors.kl_max for s in steps),
            "kl_mean": self.kl_mean,
            "top1": sum(s.errors.top1 * s.errors.rows for s in steps)
            / sum(s.errors.rows for s in steps),
            "greedy_identical": sum(p.first_divergence is None for p in self.prompts),
            "prompts": len(self.prompts),
        }

    def as_dict(self) -> dict:
        return {"backend": self.backend, "reference": self.reference, "dtype": self.dtype,
                "passed": self.passed, "tolerance": self.tolerance.as_dict(),
                "summary": self.summary(), "failures": self.failures,
                "prompts": [p.as_dict() for p in self.prompts],
                "output_checks": [c.as_dict() for c in self.output_checks],
                "output_check_note": self.output_check_note}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def table(self, *, per_step: bool = True) -> str:
        tol = self.tolerance
        lines = [f"parity: {self.backend} vs {self.reference} (export dtype {self.dtype}); "
                 f"tolerance max_rel {tol.max_rel:g}, KL max {tol.kl_max:g}, "
                 f"KL mean {tol.kl_mean:g}"]
        if per_step:
            lines.append(f"{'prompt':>6} {'step':>4} {'max_abs':>9} {'max_rel':>9} "
                         f"{'KL_max':>9} {'top1':>6} {'ref':>6} {'backend':>7}  ok")
            for i, p in enumerate(self.prompts):
                for s in p.steps:
                    e = s.errors
                    lines.append(f"{i:>6} {s.step:>4} {e.max_abs:>9.2e} {e.max_rel:>9.2e} "
                                 f"{e.kl_max:>9.2e} {e.top1:>6.2f} {s.ref_token:>6} "
                                 f"{s.backend_token:>7}  {'yes' if s.passed else 'NO'}")
        for i, p in enumerate(self.prompts):
            if p.first_divergence is None:
                div = f"greedy tokens identical for {len(p.ref_tokens)} steps"
            else:
                div = (f"greedy diverges at step {p.first_divergence} (reference top-1 margin "
                       f"{p.divergence_margin:.3g})")
            lines.append(f"prompt {i} ({len(p.prompt)} tokens): {div}")
        if self.output_checks:
            bad = [c for c in self.output_checks if not c.passed]
            worst = max(self.output_checks, key=lambda c: c.max_abs / c.atol if c.atol else 0)
            lines.append(f"per-output check (Polygraphy): {len(self.output_checks) - len(bad)}/"
                         f"{len(self.output_checks)} outputs within tolerance; worst "
                         f"{worst.output} (feed {worst.feed}) max abs {worst.max_abs:.2e} / "
                         f"atol {worst.atol:.2e}")
        elif self.output_check_note:
            lines.append(f"per-output check: {self.output_check_note}")
        s = self.summary()
        lines.append(f"summary: max_rel {s['max_rel']:.2e}  KL max {s['kl_max']:.2e}  "
                     f"KL mean {s['kl_mean']:.2e}  top-1 {100 * s['top1']:.1f}%  greedy identical "
                     f"{s['greedy_identical']}/{s['prompts']}  ->  "
                     f"{'PASS' if self.passed else 'FAIL'}")
        for f in self.failures[:10]:
            lines.append(f"  FAIL {f}")
        return "\n".join(lines)


def check_same_model(reference: Backend, backend: Backend) -> None:
    r, b = reference.io, backend.io
    for field_name in ("num_layers", "num_kv_heads", "head_dim", "vocab_size"):
        rv, bv = getattr(r, field_name), getattr(b, field_name)
        if bv != -1 and rv != bv:
            raise VPTQError(f"{backend.name} model has {field_name} = {bv} but the reference "
                            f"checkpoint has {rv}: not the same model")


def teacher_forced(reference: Backend, backend: Backend, prompt: list[int], steps: int,
                   tol: Tolerance) -> tuple[list[StepParity], list[int]]:
    """Both fed the prompt, then the reference's greedy tokens; returns per-step parity and the
    reference's greedy tokens."""
    ids = torch.tensor([prompt], dtype=torch.int64)
    mask = torch.ones_like(ids)
    pos = torch.arange(len(prompt), dtype=torch.int64)[None]
    r = reference.forward(ids, mask, pos, reference.new_cache(1))
    b = backend.forward(ids, mask, pos, backend.new_cache(1))
    records, ref_tokens = [], []
    for step in range(steps):
        rl, bl = r.logits[0], b.logits[0]
        errors = logit_errors(rl, bl)
        ref_tok, b_tok = int(rl[-1].argmax()), int(bl[-1].argmax())
        ok = errors.max_rel <= tol.max_rel and errors.kl_max <= tol.kl_max
        records.append(StepParity(step, errors, ref_tok, b_tok, float(top1_margin(rl[-1])), ok))
        ref_tokens.append(ref_tok)
        if step == steps - 1:
            break
        nxt = torch.tensor([[ref_tok]], dtype=torch.int64)
        mask = torch.cat([mask, torch.ones((1, 1), dtype=torch.int64)], dim=1)
        pos = pos[:, -1:] + 1
        r = reference.forward(nxt, mask, pos, r.cache)
        b = backend.forward(nxt, mask, pos, b.cache)
    return records, ref_tokens


def compare_backends(reference: Backend, backend: Backend, prompts: list[list[int]], *,
                     steps: int = 16, tolerance: Tolerance | None = None,
                     output_check: bool = True, session=None,
                     verbose: bool = False) -> ParityReport:
    """Parity report of `backend` against `reference` on token-id prompts. `session`: the ORT
    session behind an ORT backend, so that the per-output check runs Polygraphy's
    OnnxrtRunner over it."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not prompts:
        raise ValueError("no prompts to compare on")
    check_same_model(reference, backend)
    tol = tolerance or tolerance_for(backend.io.dtype)
    results = []
    for prompt in prompts:
        records, ref_tokens = teacher_forced(reference, backend, list(prompt), steps, tol)
        free = generate(backend, [list(prompt)], max_new_tokens=steps).tokens[0]
        div = next((i for i, (a, b) in enumerate(zip(ref_tokens, free)) if a != b), None)
        results.append(PromptParity(
            prompt=list(prompt), steps=records, ref_tokens=ref_tokens, backend_tokens=free,
            first_divergence=div,
            divergence_margin=None if div is None else records[div].ref_margin))
    report = ParityReport(backend=backend.name, reference=reference.name,
                          dtype=str(backend.io.dtype).removeprefix("torch."), tolerance=tol,
                          prompts=results)
    if not output_check:
        report.output_check_note = "skipped (--no-output-check)"
    elif backend.io.dtype == torch.bfloat16:
        report.output_check_note = "skipped: bfloat16 outputs have no numpy dtype"
    elif not polygraphy_available():
        report.output_check_note = "skipped: polygraphy is not installed (pip install polygraphy)"
    else:
        report.output_checks = check_outputs(reference, backend, [list(p) for p in prompts],
                                             tol.max_rel, session=session, verbose=verbose)
    return report


# Prompts used when none are given: plain English (the tiny models were trained on such text).
DEFAULT_PROMPTS = ("The quick brown fox", "Once upon a time there was a small town",
                   "On Monday the weather was")


def default_prompt_ids(vocab_size: int, count: int = 3, length: int = 8) -> list[list[int]]:
    """Deterministic token-id prompts for a model without a tokenizer."""
    g = torch.Generator().manual_seed(1234)
    low = min(4, vocab_size - 1)        # skip the usual special ids 0..3
    return [torch.randint(low, vocab_size, (length,), generator=g).tolist()
            for _ in range(count)]


def compare_model(model, checkpoint, backend: str = "ort-cpu", *, engine=None,
                  prompts: list[str] | None = None, prompt_ids: list[list[int]] | None = None,
                  steps: int = 16, reference_dtype: torch.dtype = torch.float32,
                  tokenizer_dir=None, output_check: bool = True,
                  tolerance: Tolerance | None = None, verbose: bool = False) -> ParityReport:
    """`vptq-export compare`: parity of `backend` running `model` (model.onnx, or an engine)
    against the reference of `checkpoint`. Text prompts need a tokenizer (beside the model, in
    the checkpoint, or `tokenizer_dir`); without one, `prompt_ids` or built-in id prompts."""
    from .backends import open_backend
    from .reference_backend import ReferenceBackend
    from .tokenizer import TokenizerNotFoundError, encode, load_tokenizer

    reference = ReferenceBackend(checkpoint, reference_dtype)
    under_test = open_backend(backend, model=model, engine=engine, checkpoint=checkpoint)
    try:
        if prompt_ids is None:
            try:
                tok = load_tokenizer(tokenizer_dir, model, checkpoint)
                prompt_ids = [encode(tok, p) for p in (prompts or DEFAULT_PROMPTS)]
            except TokenizerNotFoundError:
                if prompts:
                    raise
                prompt_ids = default_prompt_ids(reference.io.vocab_size)
        return compare_backends(reference, under_test, prompt_ids, steps=steps,
                                tolerance=tolerance, output_check=output_check,
                                session=getattr(under_test, "session", None), verbose=verbose)
    finally:
        under_test.close()
