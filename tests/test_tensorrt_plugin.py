"""The TensorRT plugin library (plugins/tensorrt/, libvptq_trt.so) driven the way TensorRT drives
it, through the TensorRT-free host libvptq_trt_host.so (vptq_export/tensorrt/plugin_host.py):
creator lookup, createPlugin from the PluginFields TensorRT's ONNX parser makes from an exported
node, clone / attachToContext, getFieldsToSerialize -> createPlugin(kRUNTIME) round trip,
getOutputShapes through an IExprBuilder, getOutputDataTypes, supportsFormatCombination,
configurePlugin, getWorkspaceSize, rejection of bad nodes (at createPlugin / getOutputShapes /
configurePlugin, with the node name in the message), and, on a GPU, onShapeChange + enqueue on
torch CUDA tensors against the fp64 PyTorch reference.

Everything but the `gpu`-marked tests runs without a GPU (the library loads with libcudart only).
Skipped with the reason when the plugin library was not built (no TensorRT headers / no nvcc).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from vptq_export import synthetic
from vptq_export.op_spec import INPUTS, INT_ATTRIBUTES, STRING_ATTRIBUTES, OpAttributes, op_weight_inputs
from vptq_export.reference.dequant import dequantize
from vptq_export.tensorrt.plugin_host import (DataType, FieldType, PluginError, Symbol,
                                              TensorFormat, op_fields, torch_to_trt)

from gpu_backends import cuda_kernels_module, device_weights, plugin_host

INT_INPUTS = {"packed_indices", "outlier_indices", "perm"}   # docs/op-spec.md: int32 inputs
FLOAT_TYPES = (DataType.FLOAT, DataType.HALF, DataType.BF16)
OTHER_TYPES = (DataType.INT8, DataType.INT32, DataType.INT64, DataType.BOOL)

# Configurations: presence of every optional input, several widths. make_spec keyword arguments.
CONFIGS = {
    "plain": dict(in_features=64, out_features=48, v=8, k=256),
    "all-optional": dict(in_features=320, out_features=61, v=8, k=8192, k_res=256, group_num=2,
                         outlier_size=64, v_o=4, k_o=16, perm=True, norm=True, bias=True),
    "residual-bias": dict(in_features=160, out_features=45, v=4, k=32, k_res=256, bias=True),
    "perm-norm": dict(in_features=384, out_features=72, v=8, k=256, k_res=256, perm=True, norm=True),
    "generic-v": dict(in_features=150, out_features=31, v=3, k=4096, k_res=16, perm=True, norm=True,
                      bias=True),
    "outliers-G4": dict(in_features=272, out_features=50, v=4, k=1024, group_num=4, outlier_size=16,
                        v_o=3, k_o=8),
}


@pytest.fixture(scope="module")
def host():
    h = plugin_host()
    yield h
    h.close()


def attrs_of(config: str) -> OpAttributes:
    return OpAttributes.from_spec(synthetic.make_spec(name=config, **CONFIGS[config]))


def weight_shapes(a: OpAttributes) -> list[tuple]:
    return list(a.input_shapes().values())


def io_types(a: OpAttributes, x_type: DataType) -> list[DataType]:
    """The types TensorRT would bind: X's float type for float inputs, int32 for index inputs."""
    return [DataType.INT32 if n in INT_INPUTS else x_type for n in a.input_names()]


# ------------------------------------------------------------------ creator and fields
def test_creator_identity_and_advertised_fields(host):
    info = host.creator_info()
    assert (info["name"], info["version"], info["namespace"]) == ("VPTQGemm", "1", "vptq")
    assert info["interface"] == "PLUGIN CREATOR_V3ONE"
    assert list(info["fields"]) == list(INT_ATTRIBUTES) + list(STRING_ATTRIBUTES)
    assert all(info["fields"][n][0] == "int32" for n in INT_ATTRIBUTES)
    assert all(info["fields"][n][0] == "char" for n in STRING_ATTRIBUTES)


@pytest.mark.parametrize("config", CONFIGS)
def test_create_clone_serialize_round_trip(host, config):
    a = attrs_of(config)
    p = host.create(f"model.layers.0.{config}", op_fields(a))
    info = p.info()
    assert (info["name"], info["version"], info["namespace"]) == ("VPTQGemm", "1", "vptq")
    assert info["interfaces"] == ["PLUGIN_V3ONE_CORE", "PLUGIN_V3ONE_BUILD", "PLUGIN_V3ONE_RUNTIME"]
    assert info["nb_outputs"] == 1
    fields = p.serialized_fields()
    # every integer attribute as one int32, index_layout as a string; nothing else
    assert set(fields) == set(INT_ATTRIBUTES) | {"index_layout"}
    for name in INT_ATTRIBUTES:
        assert fields[name] == ("int32", 1, getattr(a, name)), name
    assert fields["index_layout"][0] == "char" and fields["index_layout"][2] == "packed"
    # engine deserialization: createPlugin(kRUNTIME) from the serialized fields
    again = p.deserialize(f"model.layers.0.{config}")
    assert again.serialized_fields() == fields
    assert again.info() == info
    # clone and attachToContext keep the configuration
    assert p.clone().serialized_fields() == fields
    assert p.attach_to_context().serialized_fields() == fields
    # the timing-cache id depends on the attributes
    assert str(a.in_features) in info["timing_cache_id"]


def test_timing_cache_ids_differ_between_layers(host):
    ids = {host.create(c, op_fields(attrs_of(c))).info()["timing_cache_id"] for c in CONFIGS}
    assert len(ids) == len(CONFIGS)


def test_parser_fields_without_plugin_version_namespace_are_accepted(host):
    a = attrs_of("plain")
    p = host.create("n", op_fields(a, parser_extras=False))
    assert p.serialized_fields()["in_features"][2] == a.in_features


def test_int64_fields_are_accepted(host):
    a = attrs_of("all-optional")
    fields = {n: (FieldType.INT64 if t == FieldType.INT32 else t, v) for n, (t, v) in op_fields(a).items()}
    p = host.create("n64", fields)
    assert p.serialized_fields()["outlier_size"][2] == a.outlier_size


def test_unknown_field_is_a_warning(host):
    fields = op_fields(attrs_of("plain"))
    fields["some_future_hint"] = (FieldType.INT32, 3)
    host.take_log()
    host.create("warned.node", fields)
    log = host.take_log()
    assert "WARNING" in log and "warned.node" in log and "some_future_hint" in log


# (field, new value or None to remove, text the error must contain)
BAD_FIELDS = [
    ("group_size", (FieldType.INT32, 3), "group_size"),
    ("num_centroids", (FieldType.INT32, 100), "num_centroids"),
    ("index_bits", (FieldType.INT32, 7), "index_bits"),
    ("res_index_bits", (FieldType.INT32, 1), "res_index_bits"),
    ("has_perm", (FieldType.INT32, 2), "has_perm"),
    ("in_features", (FieldType.INT32, 0), "in_features"),
    ("vector_len", None, "vector_len"),
    ("out_features", (FieldType.FLOAT32, 48), "out_features"),
    ("index_layout", (FieldType.CHAR, "interleaved"), "index_layout"),
    ("index_layout", (FieldType.INT32, 1), "index_layout"),
    ("plugin_version", (FieldType.CHAR, "2"), "plugin_version"),
    ("plugin_namespace", (FieldType.CHAR, "other"), "plugin_namespace"),
]


@pytest.mark.parametrize("field,value,needle", BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_FIELDS)])
@pytest.mark.parametrize("phase", ["build", "runtime"])
def test_bad_attributes_are_rejected_with_the_node_name(host, field, value, needle, phase):
    fields = op_fields(attrs_of("plain"))
    if value is None:
        del fields[field]
    else:
        fields[field] = value
    host.take_log()
    with pytest.raises(PluginError) as err:
        host.create("model.layers.3.mlp.down_proj", fields, phase=phase)
    text = str(err.value)
    assert "ERROR" in text and "VPTQGemm node 'model.layers.3.mlp.down_proj'" in text and needle in text


# ------------------------------------------------------------------ shapes and types
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("x_shape", [(None,), (None, None), (2, None, None), (None, 5, 7, None)])
def test_output_shape_keeps_x_dims_and_sets_out_features(host, config, x_shape):
    a = attrs_of(config)
    p = host.create(config, op_fields(a))
    x = x_shape[:-1] + (a.in_features,)
    out = p.output_shape([x] + weight_shapes(a))
    expected = [Symbol(0, i) if d is None else d for i, d in enumerate(x[:-1])] + [a.out_features]
    assert out == expected


@pytest.mark.parametrize("config", ["plain", "all-optional"])
def test_shape_problems_fail_at_build_time(host, config):
    a = attrs_of(config)
    p = host.create("model.layers.1.self_attn.o_proj", op_fields(a))
    shapes = weight_shapes(a)
    host.take_log()
    with pytest.raises(PluginError, match=r"o_proj'.*last dimension .*in_features = %d" % a.in_features):
        p.output_shape([(None, a.in_features + 1)] + shapes)
    with pytest.raises(PluginError, match=r"o_proj'.*has %d inputs, but its attributes need %d"
                       % (len(shapes), len(shapes) + 1)):
        p.output_shape([(None, a.in_features)] + shapes[:-1])
    bad = list(shapes)
    bad[1] = (bad[1][0], bad[1][1] + 1, bad[1][2])   # centroids [G, k+1, v]
    with pytest.raises(PluginError, match=r"input 2 'centroids' has shape .* expected"):
        p.output_shape([(None, a.in_features)] + bad)


@pytest.mark.parametrize("x_type", FLOAT_TYPES)
def test_output_type_follows_x(host, x_type):
    a = attrs_of("all-optional")
    p = host.create("n", op_fields(a))
    assert p.output_type(io_types(a, x_type)) == x_type


def test_output_type_rejects_integer_x(host):
    a = attrs_of("plain")
    p = host.create("int.x", op_fields(a))
    with pytest.raises(PluginError, match="'int.x'.*X has type int32"):
        p.output_type([DataType.INT32] * len(a.input_names()))


@pytest.mark.parametrize("config", ["plain", "all-optional", "generic-v"])
def test_supports_format_combination(host, config):
    """For each position, given supported types before it (as TensorRT asks), exactly these are
    accepted: X and Y one of fp32/fp16/bf16, float weights X's type, index inputs int32, all linear."""
    a = attrs_of(config)
    p = host.create(config, op_fields(a))
    names = a.input_names() + ["Y"]
    for x_type in FLOAT_TYPES:
        chosen = io_types(a, x_type) + [x_type]
        for pos, name in enumerate(names):
            for candidate in FLOAT_TYPES + OTHER_TYPES:
                types = chosen[:pos] + [candidate] + chosen[pos + 1:]
                want = candidate == (DataType.INT32 if name in INT_INPUTS else x_type) if pos else \
                    candidate in FLOAT_TYPES
                assert p.supports(pos, types) == want, (name, x_type, candidate)
            formats = [TensorFormat.LINEAR] * len(names)
            formats[pos] = TensorFormat.CHW2
            assert not p.supports(pos, chosen, formats), f"{name}: non-linear format accepted"
    # a wrong input count is never supported
    assert not p.supports(0, chosen[1:])


@pytest.mark.parametrize("x_type", FLOAT_TYPES)
def test_configure_checks_types(host, x_type):
    a = attrs_of("all-optional")
    p = host.create("cfg.node", op_fields(a))
    shapes = [(None, a.in_features)] + weight_shapes(a)
    types = io_types(a, x_type)
    p.configure(shapes, types, [(1, a.in_features)] + shapes[1:], [(64, a.in_features)] + shapes[1:])
    other = DataType.HALF if x_type == DataType.FLOAT else DataType.FLOAT
    for pos, name in enumerate(a.input_names()[1:], start=1):
        bad = list(types)
        bad[pos] = other if name not in INT_INPUTS else DataType.INT64
        with pytest.raises(PluginError, match=f"'cfg.node'.*input {pos} '{name}' has type"):
            p.configure(shapes, bad)


def test_workspace_covers_every_row_count(host):
    """getWorkspaceSize(max profile) must cover gemm_cuda's workspace for every M <= max."""
    mod = cuda_kernels_module(require_device=False)  # workspace sizes are host-side
    names = {DataType.FLOAT: "float32", DataType.HALF: "float16", DataType.BF16: "bfloat16"}
    for config in CONFIGS:
        a = attrs_of(config)
        p = host.create(config, op_fields(a))
        for x_type, dtype_name in names.items():
            for max_rows in (1, 7, 40, 300):
                lo = [(1, 1, a.in_features)] + weight_shapes(a)
                hi = [(1, max_rows, a.in_features)] + weight_shapes(a)
                ws = p.workspace_size([(1, None, a.in_features)] + weight_shapes(a), io_types(a, x_type), lo, hi)
                need = max(mod.gemm_cuda_workspace_bytes(a.as_dict(), dtype_name, m) for m in range(1, max_rows + 1))
                assert ws >= need, (config, x_type, max_rows, ws, need)


# ------------------------------------------------------------------ enqueue on the GPU
# Relative tolerances as in tests/test_cuda_kernels.py (the plugin adds no arithmetic): inputs
# are generated in the dtype, the fp64 reference sees the same values; fp32 accumulation.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")


@pytest.mark.gpu
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_enqueue_matches_reference(host, config, dtype):
    _gpu()
    seed = int.from_bytes(os.urandom(4), "little")
    spec = synthetic.make_spec(name=config, **CONFIGS[config])
    a = OpAttributes.from_spec(spec)
    layer = synthetic.random_layer(spec, dtype, seed)
    w64 = dequantize(layer, torch.float64)
    weights = list(device_weights(layer, dtype).values())
    plugin = host.create(f"enqueue.{config}", op_fields(a)).deserialize(f"enqueue.{config}").attach_to_context()
    rng = np.random.default_rng(seed)
    types = [torch_to_trt(dtype)] + [torch_to_trt(w.dtype) for w in weights]
    for x_shape in [(a.in_features,), (1, 1, a.in_features), (2, 3, a.in_features), (1, 17, a.in_features),
                    (3, 100, a.in_features)]:
        x = torch.from_numpy(rng.normal(0, 1, x_shape).astype(np.float32)).to(dtype)
        shapes = [tuple(x.shape)] + [tuple(w.shape) for w in weights]
        ws_bytes = plugin.workspace_size(shapes, types)
        ws = torch.full((max(ws_bytes, 1),), 0xFF, dtype=torch.uint8, device="cuda")
        y = torch.full(x_shape[:-1] + (a.out_features,), float("nan"), dtype=dtype, device="cuda")
        plugin.enqueue([x.cuda()] + weights, y, ws)
        torch.cuda.synchronize()
        ref = x.double() @ w64.T + (layer.bias.double() if spec.bias else 0)
        what = f"{config} {dtype} X{x_shape} seed {seed}"
        assert not torch.isnan(y).any(), f"{what}: outputs not written"
        err = (y.double().cpu() - ref).norm() / ref.norm().clamp_min(1e-30)
        assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


@pytest.mark.gpu
def test_enqueue_reports_kernel_errors_with_the_node_name(host):
    _gpu()
    a = attrs_of("plain")
    plugin = host.create("ws.too.small", op_fields(a))
    spec = synthetic.make_spec(name="plain", **CONFIGS["plain"])
    layer = synthetic.random_layer(spec, torch.float16, 0)
    weights = [(v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))).cuda()
               for v in op_weight_inputs(layer, torch.float16).values()]
    x = torch.zeros((300, a.in_features), dtype=torch.float16, device="cuda")   # prefill: needs workspace
    y = torch.empty((300, a.out_features), dtype=torch.float16, device="cuda")
    with pytest.raises(PluginError, match="'ws.too.small'.*workspace"):
        plugin.enqueue([x] + weights, y, None)
