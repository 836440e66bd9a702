"""`QuantizeOptions`: what the quantizer makes (codebook shapes, transforms, storage form) and
how the layer layout (outliers, groups) follows from them for one linear."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import VPTQError
from ..layer_spec import LayerSpec

# Every projection of a decoder layer (llama / qwen2 / mistral naming); lm_head and embeddings
# are not nn.Linear inside `layers.N`, so they stay in full precision.
DEFAULT_LAYERS = (r"(^|\.)layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)"
                  r"|mlp\.(gate_proj|up_proj|down_proj))$")


class QuantizeError(VPTQError):
    """Options that cannot describe a valid VPTQ layer, or a model the quantizer cannot read."""


@dataclass(frozen=True)
class QuantizeOptions:
    vector_len: int = 8               # v: consecutive output rows per vector
    centroids: int = 256              # k (power of two)
    res_centroids: int = 0            # k_res (power of two), 0: no residual codebook
    group_num: int = 1                # G codebooks along in_features
    outlier_fraction: float = 0.0     # first ceil(f*I) stored columns get their own codebook
    outlier_vector_len: int = 4       # v_o
    outlier_centroids: int = 256      # k_o
    perm: bool = False                # store columns by descending Hessian diagonal
    norm: bool = False                # per-input-column min/max normalisation
    packed: bool = True               # int32 bit-packed indices (False: int16, separate residual)
    indices_as_float: bool = False    # unpacked only: indices as float16 bit patterns (legacy)
    seed: int = 0
    layers: str = DEFAULT_LAYERS      # regex (re.search) over module names of nn.Linear
    kmeans_iters: int = 100
    second_order: bool = True         # GPTQ-style column pass with error feedback (VPTQ step 4)
    calibration_sequences: int = 8    # sequences of the built-in text for the Hessians
    calibration_seq_len: int = 64     # (0 sequences: unweighted k-means, no error feedback)
    dtype: str | None = None          # codebook / model dtype; None: the model's fp16/bf16, else fp16

    def __post_init__(self):
        def pow2(name, value, allow_zero=False):
            if allow_zero and value == 0:
                return
            if not isinstance(value, int) or value < 1 or value & (value - 1):
                raise QuantizeError(f"{name} must be a power of two{' or 0' if allow_zero else ''}, "
                                    f"got {value!r}")
        pow2("centroids", self.centroids)
        pow2("res_centroids", self.res_centroids, allow_zero=True)
        pow2("outlier_centroids", self.outlier_centroids)
        if self.vector_len < 1 or self.outlier_vector_len < 1:
            raise QuantizeError("vector_len and outlier_vector_len must be >= 1, got "
                                f"{self.vector_len} and {self.outlier_vector_len}")
        if self.group_num < 1:
            raise QuantizeError(f"group_num must be >= 1, got {self.group_num}")
        if not 0.0 <= self.outlier_fraction < 1.0:
            raise QuantizeError(f"outlier_fraction must be in [0, 1), got {self.outlier_fraction}")
        bits = int(math.log2(self.centroids)) + (int(math.log2(self.res_centroids))
                                                 if self.res_centroids else 0)
        if bits > 32:
            raise QuantizeError(f"log2(centroids) + log2(res_centroids) = {bits} exceeds the 32 "
                                "bits of a packed index")
        if not self.packed and max(self.centroids, self.res_centroids) > 65536:
            raise QuantizeError("unpacked indices are uint16: centroids must be <= 65536")
        if self.indices_as_float and self.packed:
            raise QuantizeError("indices_as_float applies to unpacked indices only (packed=False)")
        if self.dtype not in (None, "float16", "bfloat16"):
            raise QuantizeError(f"dtype must be float16 or bfloat16, got {self.dtype!r}")
        try:
            re.compile(self.layers)
        except re.error as exc:
            raise QuantizeError(f"layers is not a regular expression: {exc}") from None

    def key(self) -> tuple:
        """Hashable identity (for caches)."""
        return tuple(sorted(self.__dict__.items()))

    def outlier_size(self, in_features: int) -> int:
        """ceil(f * I), plus (I - that) mod G so that the groups divide evenly (VPTQ
        `get_group_setting`, vptq-reference.md section 3.2 step 2)."""
        size = math.ceil(self.outlier_fraction * in_features)
        return size + (in_features - size) % self.group_num

    def layer_spec(self, name: str, in_features: int, out_features: int, bias: bool) -> LayerSpec:
        """The LayerSpec these options give one nn.Linear (validated like a checkpoint's)."""
        outliers = self.outlier_size(in_features)
        group_size = (in_features - outliers) // self.group_num
        if group_size < 1:
            raise QuantizeError(f"layer {name}: {outliers} outlier columns of {in_features} leave "
                                f"no columns for {self.group_num} group(s)")
        if self.perm and in_features > 65536:
            raise QuantizeError(f"layer {name}: perm is uint16, in_features {in_features} > 65536")
        return LayerSpec.from_config(name, {
            "in_features": in_features, "out_features": out_features,
            "vector_lens": [self.outlier_vector_len if outliers else -1, self.vector_len],
            "num_centroids": [self.outlier_centroids if outliers else -1, self.centroids],
            "num_res_centroids": [-1, self.res_centroids if self.res_centroids else -1],
            "group_num": self.group_num, "group_size": group_size, "outlier_size": outliers,
            "enable_perm": self.perm, "enable_norm": self.norm, "bias": bias,
            "is_indice_packed": self.packed, "indices_as_float": self.indices_as_float,
        })
