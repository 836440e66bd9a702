"""PyTorch reference: the ground truth every backend is compared with."""

from .dequant import dequantize, dequantize_stored, vptq_linear

__all__ = ["dequantize", "dequantize_stored", "vptq_linear"]
