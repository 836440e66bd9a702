"""LayerSpec: derived quantities (hand-computed), config round trip, validation, tolerated keys."""

from __future__ import annotations

import pytest

from vptq_export.errors import CheckpointError
from vptq_export.layer_spec import LayerSpec


def _cfg(**over):
    cfg = {"in_features": 128, "out_features": 100, "vector_lens": [-1, 8],
           "num_centroids": [-1, 256], "num_res_centroids": [-1, -1], "group_num": 1,
           "group_size": 128, "outlier_size": 0, "indices_as_float": False,
           "enable_norm": False, "enable_perm": False, "is_indice_packed": True, "bias": False}
    cfg.update(over)
    return cfg


def test_main_part_derived_quantities():
    s = LayerSpec.from_config("l", _cfg())
    assert s.padding == 4                    # 100 -> 104 = 13 * 8
    assert s.num_index_rows == 13
    assert (s.index_bits, s.res_index_bits, s.total_index_bits) == (8, 0, 8)
    assert s.packed_words_per_row == 32      # 128 codes * 8 bits / 32
    assert s.bits_per_weight == 1.0          # 8 bits per 8 weights
    assert not s.has_residual and not s.has_outliers and s.outlier_num_index_rows == 0


def test_residual_outliers_groups_derived_quantities():
    s = LayerSpec.from_config("l", _cfg(
        in_features=130, vector_lens=[3, 6], num_centroids=[64, 4096],
        num_res_centroids=[-1, 16], group_num=2, group_size=60, outlier_size=10))
    assert s.padding == 2 and s.num_index_rows == 17            # 100 -> 102 = 17 * 6
    assert s.outlier_padding == 2 and s.outlier_num_index_rows == 34   # 100 -> 102 = 34 * 3
    assert (s.index_bits, s.res_index_bits, s.total_index_bits) == (12, 4, 16)
    assert s.packed_words_per_row == 30                          # 60 * 16 / 32
    # (120/130) * 16/6 + (10/130) * 6/3
    assert s.bits_per_weight == pytest.approx(120 / 130 * 16 / 6 + 10 / 130 * 2)
    shapes = {k: v[0] for k, v in s.expected_tensors().items()}
    assert shapes == {"centroids.weight": (2, 4096 * 6), "res_centroids.weight": (2, 16 * 6),
                      "indices": (2, 17, 30), "outlier_centroids.weight": (1, 64 * 3),
                      "outlier_indices": (1, 34, 10)}


def test_packed_words_round_up():
    # 13 bits * 7 codes = 91 bits -> 3 words
    s = LayerSpec.from_config("l", _cfg(in_features=7, group_size=7, num_centroids=[-1, 8192]))
    assert s.packed_words_per_row == 3


def test_unpacked_and_optional_tensors():
    s = LayerSpec.from_config("l", _cfg(is_indice_packed=False, num_res_centroids=[-1, 4],
                                        enable_perm=True, enable_norm=True, bias=True))
    exp = s.expected_tensors()
    assert exp["indices"] == ((1, 13, 128), "int16")
    assert exp["res_indices"] == ((1, 13, 128), "int16")
    assert exp["perm"] == ((128,), "int16|int64")
    assert exp["weight_scale"] == ((128,), "float") and exp["weight_bias"] == ((128,), "float")
    assert exp["bias"] == ((100,), "float")
    f = LayerSpec.from_config("l", _cfg(is_indice_packed=False, indices_as_float=True))
    assert f.expected_tensors()["indices"] == ((1, 13, 128), "float16")


def test_config_round_trip():
    s = LayerSpec.from_config("l", _cfg(
        in_features=130, vector_lens=[4, 8], num_centroids=[16, 1024],
        num_res_centroids=[-1, 256], group_num=3, group_size=40, outlier_size=10,
        enable_perm=True, enable_norm=True, bias=True, is_indice_packed=False))
    again = LayerSpec.from_config("l", s.to_config())
    assert again == s
    assert s.to_config()["num_res_centroids"] == [-1, 256]
    assert s.to_config()["vector_lens"] == [4, 8]
    plain = LayerSpec.from_config("p", _cfg())
    assert plain.to_config()["vector_lens"] == [-1, 8]
    assert plain.to_config()["num_res_centroids"] == [-1, -1]


def test_defaults_when_keys_absent():
    s = LayerSpec.from_config("l", {"in_features": 64, "out_features": 32, "vector_lens": [-1, 4],
                                    "num_centroids": [-1, 16]})
    assert s.group_num == 1 and s.group_size == 64 and s.outlier_size == 0
    assert s.is_indice_packed                # HF forces packed when the key is absent
    assert not s.has_residual and not s.enable_perm and not s.bias


def test_tolerated_extra_keys_and_misserialized_bias():
    s = LayerSpec.from_config("l", _cfg(norm_dim=0, enable_proxy_error=False,
                                        bias=[0.1, -0.2, 0.3], vector_quant_dim="out"))
    assert s.bias is True                    # the bias tensor itself was serialised (upstream bug)
    assert s.extra == {"norm_dim": 0, "enable_proxy_error": False}
    assert LayerSpec.from_config("l", _cfg(bias=None)).bias is False


@pytest.mark.parametrize("over, message", [
    ({"num_centroids": [-1, 100]}, "num_centroids[1] must be a power of two"),
    ({"num_res_centroids": [-1, 12]}, "num_res_centroids[1] must be a power of two"),
    ({"num_res_centroids": [16, 16]}, "residual codebooks on the outlier part"),
    ({"group_size": 100}, "outlier_size + group_num * group_size must equal in_features"),
    ({"num_centroids": [-1, 65536], "num_res_centroids": [-1, 131072]}, "must be <= 32"),
    ({"vector_quant_dim": "in"}, "only vector_quant_dim 'out'"),
    ({"vector_lens": 8}, "'vector_lens' must be a list of two integers"),
    ({"in_features": "128"}, "'in_features' must be an integer"),
    ({"outlier_size": 8, "group_size": 120, "num_centroids": [-1, 256]},
     "outlier_size > 0 needs vector_lens[0] >= 1"),
    ({"outlier_size": 8, "group_size": 120, "vector_lens": [4, 8], "num_centroids": [12, 256]},
     "num_centroids[0] (outlier codebook) must be a power of two"),
    ({"is_indice_packed": False, "num_centroids": [-1, 131072]}, "must be <= 65536"),
    ({"enable_perm": True, "in_features": 70000, "group_size": 70000}, "in_features must be <= 65536"),
    ({"group_num": 0}, "group_num must be >= 1"),
])
def test_invalid_configs(over, message):
    with pytest.raises(CheckpointError) as info:
        LayerSpec.from_config("model.layers.0.mlp.up_proj", _cfg(**over), file="config.json")
    text = str(info.value)
    assert message in text
    assert "layer model.layers.0.mlp.up_proj" in text and "config.json" in text


def test_missing_required_key():
    cfg = _cfg()
    del cfg["num_centroids"]
    with pytest.raises(CheckpointError, match="lacks 'num_centroids'"):
        LayerSpec.from_config("l", cfg)
