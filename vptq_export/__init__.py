"""vptq-export: VPTQ-quantized LLMs to ONNX, ONNX Runtime and TensorRT."""

__version__ = "0.1.0"
