"""PyTorch reference: `dequantize` against an element-by-element evaluation of the closed form
(docs/op-spec.md, "Math"), and the whole-model reference against a plain transformers model whose
linears hold the dequantized weights, for every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vptq_export.checkpoint import VPTQCheckpoint
from vptq_export.reference.dequant import dequantize, vptq_linear
from vptq_export.synthetic import make_spec, random_layer

SPECS = {
    "plain": {},
    "residual": {"k_res": 16},
    "outliers": {"outlier_size": 8, "v_o": 4, "k_o": 16},
    "outliers_v3": {"outlier_size": 5, "v_o": 3, "k_o": 8, "out_features": 47},
    "perm": {"perm": True},
    "norm": {"norm": True},
    "groups": {"group_num": 4},
    "unpacked_res": {"packed": False, "k_res": 8},
    "out_not_multiple_of_v": {"out_features": 45, "v": 6},
    "combined": {"k_res": 16, "outlier_size": 6, "perm": True, "norm": True, "group_num": 2,
                 "bias": True, "out_features": 45, "k": 64},
}


def _closed_form(layer) -> np.ndarray:
    """W[o, i] one element at a time, straight from the op-spec formulas (fp64)."""
    s = layer.spec
    idx, ridx = layer.decoded_indices()
    C = layer.centroids.double().numpy().reshape(s.group_num, s.num_centroids, s.vector_len)
    R = (layer.res_centroids.double().numpy().reshape(s.group_num, s.num_res_centroids,
                                                       s.vector_len) if s.has_residual else None)
    if s.has_outliers:
        oidx = layer.decoded_outlier_indices()
        Co = layer.outlier_centroids.double().numpy().reshape(s.outlier_num_centroids,
                                                               s.outlier_vector_len)
    perm = layer.decoded_perm() if s.enable_perm else np.arange(s.in_features)
    scale = layer.weight_scale.double().numpy() if s.enable_norm else np.ones(s.in_features)
    shift = layer.weight_bias.double().numpy() if s.enable_norm else np.zeros(s.in_features)
    W = np.zeros((s.out_features, s.in_features))
    for o in range(s.out_features):
        for st in range(s.in_features):
            if st < s.outlier_size:
                r2, j2 = divmod(o, s.outlier_vector_len)
                value = Co[oidx[0, r2, st], j2]
            else:
                g, c = divmod(st - s.outlier_size, s.group_size)
                r, j = divmod(o, s.vector_len)
                value = C[g, idx[g, r, c], j]
                if R is not None:
                    value += R[g, ridx[g, r, c], j]
            col = perm[st]
            W[o, col] = value * scale[col] + shift[col]
    return W


@pytest.mark.parametrize("name", list(SPECS))
def test_dequantize_matches_closed_form(name):
    spec = make_spec("l", **SPECS[name])
    layer = random_layer(spec, torch.float16, seed=7)
    got = dequantize(layer, torch.float64).numpy()
    np.testing.assert_allclose(got, _closed_form(layer), rtol=0, atol=1e-12)   # fp64 both
    # fp32 result: the same up to fp32 rounding of one add and one fma per element
    np.testing.assert_allclose(dequantize(layer).numpy(), got, rtol=1e-6, atol=1e-7)


def test_vptq_linear_is_x_wt_plus_bias():
    spec = make_spec("l", bias=True, k_res=4, perm=True)
    layer = random_layer(spec, torch.float16, seed=2)
    x = torch.randn(3, 5, spec.in_features).half()
    y = vptq_linear(x, layer)
    assert y.dtype == torch.float16 and y.shape == (3, 5, spec.out_features)
    w = torch.from_numpy(_closed_form(layer))
    expected = (x.double() @ w.T + layer.bias.double()).half()
    torch.testing.assert_close(y, expected, rtol=1e-3, atol=1e-3)   # fp16 output rounding


# Whole-model checks: (family, quantize options). qwen2's variant combines every option with
# q/k/v biases; llama's unpacked variant checks the unpacked path through the model.
MODEL_CASES = [
    ("llama", {}),
    ("qwen2", {}),
    ("mistral", {}),
    ("qwen2", dict(vector_len=4, res_centroids=16, group_num=2, outlier_fraction=0.05,
                   perm=True, norm=True)),
    ("llama", dict(packed=False, res_centroids=16, perm=True, vector_len=4)),
]


@pytest.mark.parametrize("family, options", MODEL_CASES,
                         ids=[f"{f}-{'+'.join(o) or 'default'}" for f, o in MODEL_CASES])
def test_reference_model_equals_dequantized_transformers_model(
        tiny_fp_model, tiny_vptq_checkpoint, family, options):
    from transformers import AutoModelForCausalLM

    from vptq_export.reference.model import ReferenceVPTQLinear, load_reference_model

    d = tiny_vptq_checkpoint(family, **options)
    ckpt = VPTQCheckpoint(d)
    ref = load_reference_model(d, torch.float32)
    plain = AutoModelForCausalLM.from_pretrained(str(tiny_fp_model(family)), dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    replaced = 0
    for name in ckpt.layer_names():
        layer = ckpt.layer(name)
        linear = plain.get_submodule(name)
        assert isinstance(ref.get_submodule(name), ReferenceVPTQLinear)
        with torch.no_grad():
            linear.weight.copy_(dequantize(layer))
            if layer.spec.bias:
                linear.bias.copy_(layer.bias.float())
        replaced += 1
    assert replaced == 14
    ids = torch.randint(0, 384, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = ref(ids).logits
        b = plain(ids).logits
    # identical weights, both fp32: differences are matmul rounding only (logits are O(10))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(b, AutoModelForCausalLM.from_pretrained(
        str(tiny_fp_model(family)), dtype=torch.float32)(ids).logits, atol=1e-3), \
        "quantization changed nothing: the comparison would be vacuous"
