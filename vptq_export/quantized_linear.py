"""`QuantizedLinear`: the tensors of one VPTQ linear, as the checkpoint stores them.

Shapes and dtypes follow microsoft/VPTQ's `VQuantLinear` state dict (see LayerSpec.expected_tensors).
Indices keep their storage dtypes (int32 packed words, int16 / float16 bit patterns); use
`decoded_indices()` for unsigned int64 values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .layer_spec import LayerSpec
from .packing import as_unsigned16, unpack_indices

# Checkpoint key suffix of each tensor field.
TENSOR_SUFFIXES = {
    "centroids": "centroids.weight",
    "indices": "indices",
    "res_centroids": "res_centroids.weight",
    "res_indices": "res_indices",
    "outlier_centroids": "outlier_centroids.weight",
    "outlier_indices": "outlier_indices",
    "perm": "perm",
    "weight_scale": "weight_scale",
    "weight_bias": "weight_bias",
    "bias": "bias",
}


@dataclass
class QuantizedLinear:
    spec: LayerSpec
    centroids: torch.Tensor                       # [G, k*v] model dtype
    indices: torch.Tensor                         # packed int32 [G, NI, W] or int16 [G, NI, gs]
    res_centroids: torch.Tensor | None = None     # [G, k_res*v]
    res_indices: torch.Tensor | None = None       # int16 [G, NI, gs], unpacked checkpoints only
    outlier_centroids: torch.Tensor | None = None  # [1, k_o*v_o]
    outlier_indices: torch.Tensor | None = None    # int16 [1, NO, outlier_size]
    perm: torch.Tensor | None = None              # int16 (packed ckpt) or int64 [I]
    weight_scale: torch.Tensor | None = None      # [I]
    weight_bias: torch.Tensor | None = None       # [I]
    bias: torch.Tensor | None = None              # [O]

    @property
    def dtype(self) -> torch.dtype:
        return self.centroids.dtype

    def tensors(self) -> dict[str, torch.Tensor]:
        """Present tensors by checkpoint key suffix."""
        out = {}
        for f in fields(self):
            if f.name == "spec":
                continue
            value = getattr(self, f.name)
            if value is not None:
                out[TENSOR_SUFFIXES[f.name]] = value
        return out

    # ------------------------------------------------------------------ decoded views
    def decoded_indices(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(main [G, NI, gs], residual [G, NI, gs] or None) as int64 unsigned values."""
        s = self.spec
        if s.is_indice_packed:
            words = self.indices.detach().cpu().numpy()
            return unpack_indices(words, s.group_size, s.index_bits, s.res_index_bits)
        main = as_unsigned16(_np16(self.indices))
        res = as_unsigned16(_np16(self.res_indices)) if s.has_residual else None
        return main, res

    def decoded_outlier_indices(self) -> np.ndarray | None:
        """[1, NO, outlier_size] int64, or None."""
        if not self.spec.has_outliers:
            return None
        return as_unsigned16(_np16(self.outlier_indices))

    def decoded_perm(self) -> np.ndarray | None:
        """perm [I] int64: stored column s is original input column perm[s]."""
        if not self.spec.enable_perm:
            return None
        return as_unsigned16(_np16(self.perm))


def _np16(t: torch.Tensor) -> np.ndarray:
    """A torch tensor as numpy, keeping 16-bit patterns (bf16 has no numpy dtype: view as int16)."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy()
