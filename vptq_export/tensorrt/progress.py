"""Build progress on stderr: TensorRT's IProgressMonitor when the module has it (TensorRT >= 10.0
and TensorRT-RTX), else a spinner thread around the blocking build call."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from contextlib import contextmanager


def make_progress_monitor(trt, stream=sys.stderr):
    """An IProgressMonitor instance printing nested phases, or None when `trt` has none."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Monitor(base):
        def __init__(self):
            base.__init__(self)
            self.phases: dict[str, tuple[int, int]] = {}   # name -> (depth, steps)
            self.tty = stream.isatty()
            self.started = time.monotonic()

        def _line(self, text: str) -> None:
            elapsed = time.monotonic() - self.started
            if self.tty:
                stream.write(f"\r\033[K[{elapsed:6.1f}s] {text}")
            else:
                stream.write(f"[{elapsed:6.1f}s] {text}\n")
            stream.flush()

        def phase_start(self, phase_name, parent_phase, num_steps):
            depth = self.phases[parent_phase][0] + 1 if parent_phase in self.phases else 0
            self.phases[phase_name] = (depth, num_steps)
            if self.tty or depth == 0:
                self._line(f"{'  ' * depth}{phase_name} (0/{num_steps})")

        def step_complete(self, phase_name, step):
            depth, steps = self.phases.get(phase_name, (0, 0))
            if self.tty:
                self._line(f"{'  ' * depth}{phase_name} ({step + 1}/{steps})")
            return True  # never cancel

        def phase_finish(self, phase_name):
            depth, _ = self.phases.pop(phase_name, (0, 0))
            if self.tty and depth == 0:
                self._line(f"{phase_name} done\n")

    return Monitor()


@contextmanager
def spinner(text: str, stream=sys.stderr):
    """Shows `text` with a spinner and the elapsed time while the block runs (tty only)."""
    if not stream.isatty():
        stream.write(f"{text} ...\n")
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def spin():
        for ch in itertools.cycle("|/-\\"):
            if done.wait(0.2):
                break
            stream.write(f"\r{ch} {text} {time.monotonic() - start:6.1f}s")
            stream.flush()
        stream.write("\r\033[K")
        stream.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
