"""`LayerSpec`: the typed description of one VPTQ linear layer.

One source of truth for the per-layer configuration of microsoft/VPTQ (`VQuantLinear`
constructor arguments, `quantization_config.config_for_layers[...]`) and for every quantity
derived from it (padding, index rows, bit widths, packed row length). The reader, the
reference, the quantizer, the exporter and the op attributes all go through this class.

Notation (see docs/op-spec.md): O = out_features, I = in_features, v = vector length,
k = centroids, k_res = residual centroids (0 = none), G = group_num, gs = group_size,
NI = ceil(O / v) index rows, v_o / k_o / outlier_size for the outlier part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict, field

from .errors import CheckpointError

# Keys of a per-layer config that we read; everything else (norm_dim, enable_proxy_error, ...)
# is tolerated and ignored.
KNOWN_KEYS = (
    "in_features", "out_features", "vector_lens", "num_centroids", "num_res_centroids",
    "group_num", "group_size", "outlier_size", "indices_as_float", "enable_norm",
    "enable_perm", "is_indice_packed", "bias", "vector_quant_dim",
)


def _is_pow2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


@dataclass(frozen=True)
class LayerSpec:
    name: str
    in_features: int
    out_features: int
    vector_len: int
    num_centroids: int
    num_res_centroids: int = 0          # 0: no residual codebook
    group_num: int = 1
    group_size: int = 0                 # 0 is filled in as in_features - outlier_size
    outlier_size: int = 0               # 0: no outlier part
    outlier_vector_len: int = 0
    outlier_num_centroids: int = 0
    enable_perm: bool = False
    enable_norm: bool = False
    bias: bool = False
    is_indice_packed: bool = True
    indices_as_float: bool = False
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------ derived quantities
    @property
    def has_residual(self) -> bool:
        return self.num_res_centroids > 0

    @property
    def has_outliers(self) -> bool:
        return self.outlier_size > 0

    @property
    def padding(self) -> int:
        """Rows added at the end of the output dimension to reach a multiple of v."""
        return (-self.out_features) % self.vector_len

    @property
    def num_index_rows(self) -> int:
        """NI = ceil(O / v): index rows per group."""
        return (self.out_features + self.padding) // self.vector_len

    @property
    def outlier_padding(self) -> int:
        return (-self.out_features) % self.outlier_vector_len if self.has_outliers else 0

    @property
    def outlier_num_index_rows(self) -> int:
        if not self.has_outliers:
            return 0
        return (self.out_features + self.outlier_padding) // self.outlier_vector_len

    @property
    def index_bits(self) -> int:
        return int(math.log2(self.num_centroids))

    @property
    def res_index_bits(self) -> int:
        return int(math.log2(self.num_res_centroids)) if self.has_residual else 0

    @property
    def total_index_bits(self) -> int:
        return self.index_bits + self.res_index_bits

    @property
    def packed_words_per_row(self) -> int:
        """int32 words per (group, index row) in the packed layout: ceil(gs * bits / 32)."""
        return (self.group_size * self.total_index_bits + 31) // 32

    @property
    def bits_per_weight(self) -> float:
        """Index bits per weight (codebooks excluded), as VPTQ's README counts them."""
        main = self.total_index_bits / self.vector_len
        if not self.has_outliers:
            return main
        frac = self.outlier_size / self.in_features
        return (1 - frac) * main + frac * math.log2(self.outlier_num_centroids) / self.outlier_vector_len

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, name: str, cfg: dict, *, file: str | None = None) -> "LayerSpec":
        """Build from a microsoft/VPTQ per-layer config dict, validating every invariant."""

        def err(problem, expected=None, found=None):
            return CheckpointError(problem, file=file, layer=name, expected=expected, found=found)

        if not isinstance(cfg, dict):
            raise err("layer config is not a JSON object", "object", type(cfg).__name__)
        for key in ("in_features", "out_features", "vector_lens", "num_centroids"):
            if key not in cfg:
                raise err(f"layer config lacks '{key}'")

        def as_int(key, value):
            if isinstance(value, bool) or not isinstance(value, int):
                raise err(f"'{key}' must be an integer", "int", repr(value))
            return value

        def pair(key, default=None):
            value = cfg.get(key, default)
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)):
                raise err(f"'{key}' must be a list of two integers [outlier, main]",
                          "[int, int]", repr(value))
            return list(value)

        in_features = as_int("in_features", cfg["in_features"])
        out_features = as_int("out_features", cfg["out_features"])
        v_o, v = pair("vector_lens")
        k_o, k = pair("num_centroids")
        k_res_o, k_res = pair("num_res_centroids", [-1, -1])
        outlier_size = as_int("outlier_size", cfg.get("outlier_size", 0) or 0)
        group_num = as_int("group_num", cfg.get("group_num", 1))
        group_size = as_int("group_size", cfg.get("group_size", in_features - outlier_size))

        # `bias` was sometimes serialised as the bias tensor itself (fix_tensor_in_config upstream):
        # anything that is not a plain bool/None means "there is a bias".
        bias_field = cfg.get("bias", False)
        has_bias = bool(bias_field) if isinstance(bias_field, (bool, type(None))) else True

        quant_dim = cfg.get("vector_quant_dim", "out")
        if quant_dim != "out":
            raise err("only vector_quant_dim 'out' exists in microsoft/VPTQ", "'out'", repr(quant_dim))
        if in_features <= 0 or out_features <= 0:
            raise err("in_features and out_features must be positive", "> 0",
                      (in_features, out_features))
        if v < 1:
            raise err("main vector length (vector_lens[1]) must be >= 1", ">= 1", v)
        if not _is_pow2(k):
            raise err("num_centroids[1] must be a power of two (index bits = log2 k)",
                      "power of two", k)
        if k_res_o > 0:
            raise err("residual codebooks on the outlier part are not part of the VPTQ format",
                      "num_res_centroids[0] = -1", k_res_o)
        if k_res > 0 and not _is_pow2(k_res):
            raise err("num_res_centroids[1] must be a power of two or -1", "power of two", k_res)
        if group_num < 1:
            raise err("group_num must be >= 1", ">= 1", group_num)
        if outlier_size < 0:
            raise err("outlier_size must be >= 0", ">= 0", outlier_size)
        if outlier_size + group_num * group_size != in_features:
            raise err("outlier_size + group_num * group_size must equal in_features",
                      in_features, f"{outlier_size} + {group_num} * {group_size} = "
                      f"{outlier_size + group_num * group_size}")
        if outlier_size > 0:
            if v_o < 1 or k_o < 1:
                raise err("outlier_size > 0 needs vector_lens[0] >= 1 and num_centroids[0] >= 1",
                          "outlier vector length and centroids", (v_o, k_o))
            if not _is_pow2(k_o):
                raise err("num_centroids[0] (outlier codebook) must be a power of two",
                          "power of two", k_o)
        else:
            v_o, k_o = 0, 0
        res_bits = int(math.log2(k_res)) if k_res > 0 else 0
        total_bits = int(math.log2(k)) + res_bits
        if total_bits > 32:
            raise err("index bits + residual index bits must be <= 32", "<= 32", total_bits)
        enable_perm = bool(cfg.get("enable_perm", False))
        if enable_perm and in_features > 65536:
            raise err("perm is stored as uint16, so in_features must be <= 65536 with enable_perm",
                      "<= 65536", in_features)
        # HF transformers forces is_indice_packed=True when it is absent; so do we.
        packed = bool(cfg.get("is_indice_packed", True))
        if not packed and (k > 65536 or k_res > 65536):
            raise err("unpacked indices are uint16, so num_centroids must be <= 65536",
                      "<= 65536", max(k, k_res))

        return cls(
            name=name, in_features=in_features, out_features=out_features, vector_len=v,
            num_centroids=k, num_res_centroids=max(k_res, 0), group_num=group_num,
            group_size=group_size, outlier_size=outlier_size, outlier_vector_len=v_o,
            outlier_num_centroids=k_o, enable_perm=enable_perm,
            enable_norm=bool(cfg.get("enable_norm", False)), bias=has_bias,
            is_indice_packed=packed, indices_as_float=bool(cfg.get("indices_as_float", False)),
            extra={key: val for key, val in cfg.items() if key not in KNOWN_KEYS},
        )

    def to_config(self) -> dict:
        """The per-layer config dict as microsoft/VPTQ writes it (config_for_layers value)."""
        return {
            "bias": self.bias,
            "enable_norm": self.enable_norm,
            "enable_perm": self.enable_perm,
            "group_num": self.group_num,
            "group_size": self.group_size,
            "in_features": self.in_features,
            "indices_as_float": self.indices_as_float,
            "is_indice_packed": self.is_indice_packed,
            "num_centroids": [self.outlier_num_centroids if self.has_outliers else -1,
                              self.num_centroids],
            "num_res_centroids": [-1, self.num_res_centroids if self.has_residual else -1],
            "out_features": self.out_features,
            "outlier_size": self.outlier_size,
            "vector_lens": [self.outlier_vector_len if self.has_outliers else -1, self.vector_len],
        }

    # ------------------------------------------------------------------ tensors
    def expected_tensors(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Checkpoint tensors (key suffix -> (shape, kind)). kind: 'float' (model dtype),
        'int32' or 'int16' (bits of unsigned integers), 'int16|int64' for perm."""
        G, NI, gs, v = self.group_num, self.num_index_rows, self.group_size, self.vector_len
        out: dict[str, tuple[tuple[int, ...], str]] = {
            "centroids.weight": ((G, self.num_centroids * v), "float"),
        }
        if self.is_indice_packed:
            out["indices"] = ((G, NI, self.packed_words_per_row), "int32")
        else:
            out["indices"] = ((G, NI, gs), "float16" if self.indices_as_float else "int16")
            if self.has_residual:
                out["res_indices"] = ((G, NI, gs), "float16" if self.indices_as_float else "int16")
        if self.has_residual:
            out["res_centroids.weight"] = ((G, self.num_res_centroids * v), "float")
        if self.has_outliers:
            out["outlier_centroids.weight"] = (
                (1, self.outlier_num_centroids * self.outlier_vector_len), "float")
            out["outlier_indices"] = ((1, self.outlier_num_index_rows, self.outlier_size), "int16")
        if self.enable_perm:
            out["perm"] = ((self.in_features,), "int16|int64")
        if self.enable_norm:
            out["weight_scale"] = ((self.in_features,), "float")
            out["weight_bias"] = ((self.in_features,), "float")
        if self.bias:
            out["bias"] = ((self.out_features,), "float")
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d
