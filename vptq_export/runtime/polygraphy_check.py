"""Per-output accuracy check through Polygraphy: the reference and the backend run the same
single-step feeds (identical inputs, including the past KV cache), and
`Comparator.compare_accuracy` checks every output (`logits` and every `present.*`).

ONNX Runtime backends are wrapped by Polygraphy's own `OnnxrtRunner` over our session (the one
with the op library loaded); other backends (the PyTorch reference, TensorRT) by
`BackendRunner`, a Polygraphy runner over our Backend interface (Polygraphy's `PytRunner` moves
inputs to CUDA and calls a module positionally, which fits neither a CPU reference nor a
KV-cache step).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .backend import Backend


@dataclass
class OutputCheck:
    feed: int               # index of the feed (see `make_feeds`)
    output: str
    passed: bool
    max_abs: float
    atol: float

    def as_dict(self) -> dict:
        return asdict(self)


def polygraphy_available() -> bool:
    try:
        import polygraphy  # noqa: F401
    except ImportError:
        return False
    return True


def make_runner_class():
    from polygraphy.backend.base import BaseRunner

    class BackendRunner(BaseRunner):
        """A Polygraphy runner over a vptq_export Backend: one `forward` per feed dict."""

        def __init__(self, backend: Backend, name: str | None = None):
            super().__init__(name=name or backend.name, prefix="vptq-backend")
            self.backend = backend

        def activate_impl(self):
            pass

        def deactivate_impl(self):
            pass

        def get_input_metadata_impl(self):
            from polygraphy.common import TensorMetadata
            io = self.backend.io
            meta = TensorMetadata()
            for name in ("input_ids", "attention_mask", "position_ids"):
                meta.add(name, np.int64, (-1, -1))
            for i in range(io.num_layers):
                for kind in ("key", "value"):
                    meta.add(f"past_key_values.{i}.{kind}", np.float32,
                             (-1, io.num_kv_heads, -1, io.head_dim))
            return meta

        def infer_impl(self, feed_dict):
            import time
            io = self.backend.io
            past = [(feed_dict[f"past_key_values.{i}.key"], feed_dict[f"past_key_values.{i}.value"])
                    for i in range(io.num_layers)]
            start = time.time()
            out = self.backend.forward(feed_dict["input_ids"], feed_dict["attention_mask"],
                                       feed_dict["position_ids"], self.backend.cache_from_arrays(past))
            end = time.time()
            outputs = OrderedDict(logits=out.logits.numpy())
            for i, (k, v) in enumerate(out.cache.to_arrays()):
                outputs[f"present.{i}.key"] = k
                outputs[f"present.{i}.value"] = v
            self.inference_time = end - start
            return outputs

    return BackendRunner


def make_feeds(reference: Backend, prompts: list[list[int]], past_dtype: np.dtype) -> list[dict]:
    """Per prompt two feeds: the prefill (empty past) and one decode step whose past is the
    reference's present after the prefill and whose token is the reference's greedy token."""
    io = reference.io
    feeds = []
    for prompt in prompts:
        ids = torch.tensor([prompt], dtype=torch.int64)
        mask = torch.ones_like(ids)
        pos = torch.arange(len(prompt), dtype=torch.int64)[None]
        empty = np.zeros((1, io.num_kv_heads, 0, io.head_dim), past_dtype)
        feed = OrderedDict(input_ids=ids.numpy(), attention_mask=mask.numpy(),
                           position_ids=pos.numpy())
        for i in range(io.num_layers):
            feed[f"past_key_values.{i}.key"] = empty
            feed[f"past_key_values.{i}.value"] = empty
        feeds.append(feed)
        out = reference.forward(ids, mask, pos, reference.new_cache(1))
        token = int(out.logits[0, -1].argmax())
        step = OrderedDict(input_ids=np.array([[token]], np.int64),
                           attention_mask=np.ones((1, len(prompt) + 1), np.int64),
                           position_ids=np.array([[len(prompt)]], np.int64))
        for i, (k, v) in enumerate(out.cache.to_arrays()):
            step[f"past_key_values.{i}.key"] = k.astype(past_dtype)
            step[f"past_key_values.{i}.value"] = v.astype(past_dtype)
        feeds.append(step)
    return feeds


@contextlib.contextmanager
def _quiet_polygraphy(verbose: bool):
    """Polygraphy logs to stdout (which carries our --json): send its log to stderr when
    verbose, drop it otherwise; our report holds the results."""
    import io
    import sys

    from polygraphy.logger import G_LOGGER
    old = G_LOGGER.module_severity
    if not verbose:
        G_LOGGER.module_severity = G_LOGGER.CRITICAL
    try:
        with contextlib.redirect_stdout(sys.stderr if verbose else io.StringIO()):
            yield
    finally:
        G_LOGGER.module_severity = old


def check_outputs(reference: Backend, backend: Backend, prompts: list[list[int]], max_rel: float,
                  *, session=None, verbose: bool = False) -> list[OutputCheck]:
    """Run the feeds through both (Polygraphy `Comparator.run`) and check every output with
    `Comparator.compare_accuracy`: element-wise |b - r| ≤ atol with atol = max_rel · max|r| of
    that output (rtol 0), i.e. the same scale-relative bound as the step metrics."""
    from polygraphy.backend.onnxrt import OnnxrtRunner
    from polygraphy.comparator import Comparator
    try:
        from polygraphy.comparator import SimpleCompareFunc
    except ImportError:                                 # Polygraphy < 0.50
        from polygraphy.comparator import CompareFunc
        SimpleCompareFunc = CompareFunc.simple

    np_dtype = np.float16 if backend.io.dtype == torch.float16 else np.float32
    feeds = make_feeds(reference, prompts, np_dtype)
    BackendRunner = make_runner_class()
    ref_runner = BackendRunner(reference, name="reference")
    runner = OnnxrtRunner(lambda: session, name=backend.name) if session is not None \
        else BackendRunner(backend, name=backend.name)
    with _quiet_polygraphy(verbose):
        results = Comparator.run([ref_runner, runner], data_loader=feeds)
        ref_iters = results[0][1]
        checks: list[OutputCheck] = []
        for index, ref_iter in enumerate(ref_iters):
            atol = {name: max_rel * float(np.abs(np.asarray(value, np.float64)).max(initial=0.0))
                    for name, value in ref_iter.items()}
            func = SimpleCompareFunc(atol=atol, rtol=0.0, check_error_stat="elemwise")
            one = Comparator.compare_accuracy(
                type(results)([(name, [iters[index]]) for name, iters in results]),
                compare_func=func)
            # Polygraphy >= 0.50 returns a list of AccuracyResult (one per compare function)
            for acc in ([one] if hasattr(one, "keys") else list(one)):
                for name, res in acc[next(iter(acc.keys()))][0].items():
                    checks.append(OutputCheck(feed=index, output=name, passed=bool(res),
                                              max_abs=float(res.max_absdiff), atol=atol[name]))
    return checks
