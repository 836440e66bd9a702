"""VPTQ quantizer for small Hugging Face models (tests, demos): weighted k-means codebooks,
residual codebooks, outliers, permutation and normalisation, written in VPTQ-community layout.

    from vptq_export.quantize import QuantizeOptions, quantize_model
    quantize_model("tiny-llama", "tiny-llama-vptq", QuantizeOptions(centroids=256, res_centroids=16))
"""

from .kmeans import nearest, weighted_kmeans
from .linear import LinearQuantization, quantize_linear
from .model import quantize_model
from .options import DEFAULT_LAYERS, QuantizeError, QuantizeOptions

__all__ = ["QuantizeOptions", "QuantizeError", "DEFAULT_LAYERS", "quantize_model",
           "quantize_linear", "LinearQuantization", "weighted_kmeans", "nearest"]
