"""Runtime: one backend interface (PyTorch reference, ONNX Runtime CPU/CUDA, TensorRT), one
generation loop with the KV cache kept by the backend, parity against the reference, perplexity.

    from vptq_export.runtime import OrtBackend, ReferenceBackend, generate, compare_backends
    backend = OrtBackend("out/model.onnx", "ort-cpu")
    tokens = generate(backend, [[1, 450, 4996]], max_new_tokens=16).tokens

See docs/runtime.md. The TensorRT backend (`vptq_export.runtime.trt_backend`) imports only where
TensorRT is installed.
"""

from .backend import Backend, KVCache, ModelIO, StepOutput
from .backends import BACKENDS, open_backend
from .compare import ParityReport, compare_backends, compare_model
from .evaluate import EvalReport, evaluate, evaluate_file
from .generate import GenerationResult, generate
from .ort_backend import OrtBackend
from .reference_backend import ReferenceBackend
from .sampling import SamplingConfig
from .tolerances import TOLERANCES, Tolerance, tolerance_for

__all__ = ["Backend", "KVCache", "ModelIO", "StepOutput", "BACKENDS", "open_backend",
           "ParityReport", "compare_backends", "compare_model", "EvalReport", "evaluate",
           "evaluate_file", "GenerationResult", "generate", "OrtBackend", "ReferenceBackend",
           "SamplingConfig", "TOLERANCES", "Tolerance", "tolerance_for"]
