"""TensorRT side of vptq-export: build an engine from an exported `model.onnx` with the VPTQGemm
plugin library (`builder.build_engine`), run it (`runner.EngineRunner`), and drive the plugin
without TensorRT for tests (`plugin_host`). TensorRT 10.x (`tensorrt`) and TensorRT-RTX
(`tensorrt_rtx`, or `tensorrt_rtx_bindings`) are both accepted (`backend.load_backend`).
"""

from .backend import BACKENDS, BackendUnavailableError, TensorRTBackend, load_backend  # noqa: F401
