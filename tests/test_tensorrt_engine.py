"""End to end with a real TensorRT module (TensorRT 10.x or TensorRT-RTX): export a tiny VPTQ
model, build an engine with the plugin library (every VPTQGemm node must become the plugin),
then run prefill + decode with the KV cache against the PyTorch reference.

Marked `tensorrt` and `gpu`; skipped with the reason when no TensorRT module, GPU or plugin
library is available. When the runtime refuses the engine on this GPU (TensorRT-RTX on an H100:
compute capability 9.0 is not an RTX target), the run part is skipped with TensorRT's message;
the build part has then still been checked.
"""

from __future__ import annotations

import pytest
import torch

from vptq_export.errors import BackendUnavailableError

pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu]

# Logits tolerance (absolute, relative to the logits' scale): fp16 engine vs fp32 reference:
# every layer rounds activations to fp16 (2^-11 relative); a 2-layer tiny model keeps the error
# below ~1e-2 of the logit scale.
REL_TOL = {"float16": 2e-2, "float32": 1e-3}


@pytest.fixture(scope="module")
def trt_backend():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from vptq_export import native
    from vptq_export.tensorrt.backend import load_backend
    try:
        native.trt_plugin_path()
        return load_backend()
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_build_and_run_tiny_model(trt_backend, tiny_vptq_checkpoint, tmp_path, dtype):
    from vptq_export.export import ExportOptions, export_model
    from vptq_export.reference.model import load_reference_model
    from vptq_export.tensorrt.builder import BuildOptions, EngineBuildError, build_engine
    from vptq_export.tensorrt.profiles import ProfileLimits
    from vptq_export.tensorrt.runner import EngineRunError, EngineRunner

    ckpt = tiny_vptq_checkpoint("llama", vector_len=8, centroids=256, res_centroids=16, perm=True, norm=True)
    model = export_model(ckpt, tmp_path / "model.onnx", ExportOptions(dtype=dtype, progress=False))
    engine = tmp_path / "model.engine"
    try:
        result = build_engine(model, engine, BuildOptions(backend=trt_backend.name, progress=False,
                                                          limits=ProfileLimits(max_batch=2, max_seq=32, max_past=64)))
    except EngineBuildError as exc:
        if "cannot hold IPluginV3 layers" in str(exc):   # TensorRT-RTX 1.7 (docs/tensorrt.md)
            pytest.skip(str(exc))
        raise
    assert engine.stat().st_size == result.engine_bytes > 0
    assert result.plugin_layers == result.vptq_nodes > 0
    try:
        runner = EngineRunner(engine, backend=trt_backend.name)
    except EngineRunError as exc:
        if "cannot run on this GPU" in str(exc) or "compute capabilit" in str(exc):
            pytest.skip(f"{trt_backend.describe()} built the engine but refuses to run it here: {exc}")
        raise
    torch_dtype = {"float16": torch.float16, "float32": torch.float32}[dtype]
    ref = load_reference_model(ckpt, torch.float32).cuda().eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, runner.model_io()["vocab_size"], (2, 9), generator=g).cuda()
    pos = torch.arange(9, device="cuda").expand(2, 9)
    logits, present = runner.step(ids, torch.ones_like(ids), pos)
    assert logits.dtype == torch_dtype and present[0][0].shape[2] == 9
    nxt = logits[:, -1:].float().argmax(-1)
    logits2, present2 = runner.step(nxt, torch.ones((2, 10), dtype=torch.int64, device="cuda"),
                                    torch.full((2, 1), 9, device="cuda"), present)
    assert present2[0][0].shape[2] == 10
    with torch.no_grad():
        want = ref(input_ids=torch.cat([ids, nxt], 1), use_cache=False).logits.float()
    scale = want.abs().max()
    assert (logits.float() - want[:, :9]).abs().max() <= REL_TOL[dtype] * scale
    assert (logits2.float() - want[:, 9:]).abs().max() <= REL_TOL[dtype] * scale
