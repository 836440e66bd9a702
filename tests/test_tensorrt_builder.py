"""Engine-builder logic that needs no TensorRT: optimization-profile shapes for the exported
decoder I/O (names and shapes from export/io_spec.py), backend selection errors, the CLI's
user errors. The build itself runs in tests/test_tensorrt_engine.py (marked tensorrt)."""

from __future__ import annotations

import builtins

import pytest

from vptq_export.cli import main
from vptq_export.errors import BackendUnavailableError, VPTQError
from vptq_export.export.io_spec import decoder_io
from vptq_export.tensorrt import backend as backend_mod
from vptq_export.tensorrt.profiles import ProfileLimits, input_profile


class _Cfg:   # the fields decoder_io reads
    num_kv_heads, head_dim, vocab_size, num_layers, num_heads, hidden_size, model_type = 2, 16, 97, 3, 4, 64, "llama"


def _declared_inputs():
    """The decoder's inputs as TensorRT's parser declares them: named dims -> -1."""
    io = decoder_io(_Cfg())
    return {t["name"]: tuple(d if isinstance(d, int) else -1 for d in t["shape"]) for t in io["inputs"]}


@pytest.mark.parametrize("limits", [ProfileLimits(), ProfileLimits(max_batch=4, max_seq=128, max_past=2048,
                                                                   opt_batch=2, opt_seq=1, opt_past=100)])
def test_profiles_cover_prefill_and_decode(limits):
    inputs = _declared_inputs()
    assert len(inputs) == 3 + 2 * _Cfg.num_layers
    for name, shape in inputs.items():
        lo, opt, hi = input_profile(name, shape, limits)
        assert len(lo) == len(opt) == len(hi) == len(shape)
        assert all(a <= b <= c for a, b, c in zip(lo, opt, hi)), name
        for axis, d in enumerate(shape):          # fixed dims stay fixed
            if d >= 0:
                assert lo[axis] == opt[axis] == hi[axis] == d
        assert (lo[0], hi[0]) == (1, limits.max_batch)
    assert input_profile("input_ids", inputs["input_ids"], limits)[2] == (limits.max_batch, limits.max_seq)
    assert input_profile("position_ids", inputs["position_ids"], limits)[0] == (1, 1)
    # the mask spans past + new tokens; the cache may be empty (prefill) up to max_past
    assert input_profile("attention_mask", inputs["attention_mask"], limits)[2] == \
        (limits.max_batch, limits.max_past + limits.max_seq)
    lo, _, hi = input_profile("past_key_values.2.value", inputs["past_key_values.2.value"], limits)
    assert lo == (1, _Cfg.num_kv_heads, 0, _Cfg.head_dim)
    assert hi == (limits.max_batch, _Cfg.num_kv_heads, limits.max_past, _Cfg.head_dim)


def test_unknown_dynamic_input_is_named():
    with pytest.raises(VPTQError, match="input pixel_values has dynamic shape"):
        input_profile("pixel_values", (-1, 3, 224, 224), ProfileLimits())
    assert input_profile("scale", (4,), ProfileLimits()) == ((4,), (4,), (4,))


def test_bad_limits_are_reported():
    with pytest.raises(VPTQError, match="max_seq"):
        ProfileLimits(max_seq=0).check()
    with pytest.raises(VPTQError, match="opt_batch"):
        ProfileLimits(max_batch=1, opt_batch=2).check()


def test_missing_modules_give_an_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_tensorrt(name, *args, **kwargs):
        if name.split(".")[0] in ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorrt)
    monkeypatch.setattr(backend_mod.importlib, "import_module", lambda n: no_tensorrt(n))
    with pytest.raises(BackendUnavailableError, match="tried tensorrt_rtx, tensorrt_rtx_bindings.*pip install tensorrt-rtx"):
        backend_mod.load_backend("tensorrt-rtx")
    with pytest.raises(BackendUnavailableError, match="unknown TensorRT backend"):
        backend_mod.load_backend("onnxruntime")


def test_cli_reports_a_missing_model(tmp_path, capsys):
    assert main(["build", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "m.engine")]) == 2
    err = capsys.readouterr().err
    assert "vptq-export build: error:" in err and "missing.onnx" in err
    assert not (tmp_path / "m.engine").exists()


def test_networks_without_plugin_v3_layers_are_refused_before_parsing():
    """TensorRT-RTX 1.7's INetworkDefinition has no add_plugin_v3 and its parser aborts the
    process on a plugin node: the builder must refuse first, naming the backend and the way out."""
    from vptq_export.tensorrt.builder import EngineBuildError, require_plugin_v3_layers

    class Backend:
        def describe(self):
            return "tensorrt-rtx 1.7.1.116 (Python module tensorrt_rtx)"

    class RtxNetwork:        # what TensorRT-RTX 1.7 exposes: no add_plugin_v3
        def add_input(self, *a):
            pass

    class TrtNetwork(RtxNetwork):
        def add_plugin_v3(self, *a):
            pass

    with pytest.raises(EngineBuildError, match=r"tensorrt-rtx 1\.7\.1\.116.*cannot hold IPluginV3 layers.*--backend tensorrt"):
        require_plugin_v3_layers(Backend(), RtxNetwork())
    require_plugin_v3_layers(Backend(), TrtNetwork())    # no error
