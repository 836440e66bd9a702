"""Error types with enough context to act on: which file, which layer, which tensor, what was
expected and what was found."""

from __future__ import annotations


class VPTQError(Exception):
    """Base class for every error vptq-export raises on purpose (the CLI prints these without a
    traceback and exits with status 2)."""


class CheckpointError(VPTQError):
    """A checkpoint (config.json or safetensors) does not match the VPTQ format."""

    def __init__(self, problem: str, *, file: str | None = None, layer: str | None = None,
                 tensor: str | None = None, expected: object = None, found: object = None):
        self.problem = problem
        self.file = file
        self.layer = layer
        self.tensor = tensor
        self.expected = expected
        self.found = found
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.layer:
            where.append(f"layer {self.layer}")
        if self.tensor:
            where.append(f"tensor {self.tensor}")
        text = self.problem
        if where:
            text = f"{', '.join(where)}: {text}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text


class UnsupportedModelError(VPTQError):
    """The checkpoint is valid VPTQ but uses something this tool does not export/run."""


class BackendUnavailableError(VPTQError):
    """A runtime backend (op library, onnxruntime-gpu, TensorRT) is not installed or not built."""
