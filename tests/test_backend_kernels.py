"""The ONNX Runtime op (CUDA EP) and the TensorRT plugin run the fast kernels of csrc/cuda/.

Both backends call `vptq::gemm_cuda`, so they should launch exactly the kernels the Python module
(`_kernels.gemm_cuda`) launches for the same layer, dtype and row count. A backend that passed its
weights misaligned, lost its cuBLAS handle or fell back to the CPU would still be accurate but
slow; the accuracy tests of test_ort_cuda.py and test_tensorrt_plugin.py cannot see that. Here,
for every configuration of the kernel issue (v8-k256-256, v6-k4096, v12-k4096-4096, v8-k4096,
v8-k4096-256, v8-k8192-256, v8-k65536, v8-k65536-256, v16-k65536-65536), fp16 and bf16, and
M = 1, 2, 8 (decode), 12 (16-row variant), 17 (decode slices or prefill) and 40 (prefill):

- the GPU kernels each backend launched are recorded with CUPTI (torch.profiler sees every
  kernel in the process, ORT's included); our kernels (namespace `vptq::`) must be the same
  instantiations, in the same order, as the Python module's;
- for M <= 16 the kernel family is the one docs/kernels.md's dispatch table gives (the staged-
  codebook, v12, fast or gather kernel), an expectation written here, not read from the dispatch;
- outputs match the fp64 reference (the tolerances of tests/test_cuda_kernels.py), and for
  M <= 16 (decode kernels: no atomics, no cuBLAS) they are bitwise equal to the Python module's.

Skipped (with the reason) without a CUDA device, without the CUDA build of the module, without
onnxruntime-gpu or the op library (ORT part), without the plugin host library (TensorRT part).
"""

from __future__ import annotations

import os

import pytest
import torch

from vptq_export import native, synthetic
from vptq_export.errors import BackendUnavailableError
from vptq_export.op_spec import OpAttributes
from vptq_export.reference.dequant import dequantize

from gpu_backends import cuda_kernels_module, device_weights, plugin_host
from test_ort_op_cases import single_node_model

pytestmark = pytest.mark.gpu

# The configurations at one Llama-like width (I = 1024 keeps the test fast; O = 768 is a
# multiple of v = 6, 8, 12 and 16). make_spec keyword arguments.
SHAPE = dict(in_features=1024, out_features=768)
CONFIGS = {
    "v8-k256-256": dict(v=8, k=256, k_res=256),
    "v6-k4096": dict(v=6, k=4096),
    "v12-k4096-4096": dict(v=12, k=4096, k_res=4096),
    "v8-k4096": dict(v=8, k=4096),
    "v8-k4096-256": dict(v=8, k=4096, k_res=256),
    "v8-k8192-256": dict(v=8, k=8192, k_res=256),
    "v8-k65536": dict(v=8, k=65536),
    "v8-k65536-256": dict(v=8, k=65536, k_res=256),
    "v16-k65536-65536": dict(v=16, k=65536, k_res=65536),
}
ROWS = (1, 2, 8, 12, 17, 40)
DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16"}
# As tests/test_cuda_kernels.py: relative error norm; fp16 output rounding (2^-11) plus, on the
# prefill path, centroid sums rounded to fp16 before the GEMM: 2e-3; bf16 the same with 2^-8.
TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def expected_family(config: str, m: int) -> str | None:
    """Kernel (CUDA function name) docs/kernels.md's dispatch table gives for M <= 16 at this
    shape: codebooks of <= 8192 entries staged in shared memory (gemv_mma.cuh; v12 its own
    kernel), k = 65536 the fast kernel at M = 1 and the tensor-core gather kernel from M = 2."""
    if m > 16:
        return None  # decode slices or prefill: by measured crossovers, compared with the module only
    if config == "v12-k4096-4096":
        return "gemv_mma_v12_kernel"
    if "k65536" in config:
        return "gemv_fast_kernel" if m == 1 else "gemv_mma_gather_kernel"
    return "gemv_mma_kernel"


def launched_kernels(run) -> list[str]:
    """Names of our GPU kernels (`vptq::...`) that `run()` launched, in launch order (CUPTI)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if not str(getattr(e, "device_type", "")).endswith("CPU")]
    kernels.sort(key=lambda e: e.time_range.start)
    return [e.name for e in kernels if "vptq::" in e.name]


class Layer:
    """A random layer of one configuration, its fp64 weight and device copies of its inputs."""

    def __init__(self, config: str, dtype: torch.dtype, seed: int):
        self.spec = synthetic.make_spec(name=config, **SHAPE, **CONFIGS[config])
        self.attrs = OpAttributes.from_spec(self.spec)
        self.dtype = dtype
        self.layer = synthetic.random_layer(self.spec, dtype, seed)
        self.w64 = dequantize(self.layer, torch.float64)
        self.weights = device_weights(self.layer, dtype)

    def x(self, m: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(m, self.spec.in_features, generator=g).to(self.dtype)

    def check(self, y: torch.Tensor, x: torch.Tensor, what: str) -> None:
        ref = x.double() @ self.w64.T
        y = y.double().cpu()
        assert not torch.isnan(y).any(), f"{what}: outputs not written"
        err = float((y - ref).norm() / ref.norm().clamp_min(1e-30))
        assert err <= TOLERANCE[self.dtype], f"{what}: relative error {err:.3g}"


def module_run(mod, lay: Layer, x: torch.Tensor):
    """(kernels, Y) of the Python module's gemm_cuda."""
    out = {}

    def run():
        out["y"] = mod.gemm_cuda(x.cuda(), lay.attrs.as_dict(), lay.weights)

    return launched_kernels(run), out["y"]


def check_backend(mod, lay: Layer, config: str, backend: str, run_backend) -> None:
    """run_backend(x) -> Y (a tensor) for each M of ROWS: same kernels as the module, expected
    family, accuracy, and bitwise equality with the module on the decode path."""
    for m in ROWS:
        x = lay.x(m, seed=1000 + m)
        what = f"{backend} {config} {DTYPES[lay.dtype]} M={m}"
        want, y_module = module_run(mod, lay, x)
        out = {}
        got = launched_kernels(lambda: out.__setitem__("y", run_backend(x)))
        assert want, f"{what}: the Python module launched none of our kernels"
        assert got == want, f"{what}: kernels differ from the Python module's:\n  {got}\n  {want}"
        family = expected_family(config, m)
        if family is not None:
            assert any(f"vptq::gpu::{family}<" in k for k in got), f"{what}: expected {family}, ran {got}"
        lay.check(out["y"], x, what)
        if m <= 16:
            assert torch.equal(out["y"].cpu(), y_module.cpu()), f"{what}: not bitwise equal to the module's"


# ------------------------------------------------------------------ ONNX Runtime, CUDA EP

@pytest.fixture(scope="module")
def ort_cuda():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (install onnxruntime-gpu "
                    "on a machine with an NVIDIA GPU)")
    try:
        lib = str(native.ort_library_path())
    except BackendUnavailableError as exc:
        pytest.skip(f"ONNX Runtime op library not built: {exc}")
    return ort, lib


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPES.values())
@pytest.mark.parametrize("config", CONFIGS)
def test_ort_cuda_runs_the_module_kernels(ort_cuda, config, dtype):
    mod = cuda_kernels_module()
    ort, lib = ort_cuda
    lay = Layer(config, dtype, seed=int.from_bytes(os.urandom(4), "little"))
    # bf16: X and Y float32 in the graph with Cast nodes around the op (numpy has no bfloat16;
    # the casts are exact for bf16 values)
    io_float32 = dtype == torch.bfloat16
    so = ort.SessionOptions()
    so.register_custom_ops_library(lib)
    model = single_node_model(lay.spec, lay.layer, dtype, io_float32=io_float32)
    sess = ort.InferenceSession(model, so, providers=["CUDAExecutionProvider"])
    assert sess.get_providers()[0] == "CUDAExecutionProvider"

    def run(x):
        feed = x.float().numpy() if io_float32 else x.numpy()
        y = torch.from_numpy(sess.run(None, {"X": feed})[0])
        return y.to(dtype)

    check_backend(mod, lay, config, "ort-cuda", run)


# ------------------------------------------------------------------ TensorRT plugin (IPluginV3)

@pytest.fixture(scope="module")
def trt_host():
    h = plugin_host()
    yield h
    h.close()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPES.values())
@pytest.mark.parametrize("config", CONFIGS)
def test_tensorrt_plugin_runs_the_module_kernels(trt_host, config, dtype):
    from vptq_export.tensorrt.plugin_host import op_fields, torch_to_trt

    mod = cuda_kernels_module()
    lay = Layer(config, dtype, seed=int.from_bytes(os.urandom(4), "little"))
    node = f"kernels.{config}"
    plugin = trt_host.create(node, op_fields(lay.attrs)).deserialize(node).attach_to_context()
    weights = list(lay.weights.values())
    types = [torch_to_trt(dtype)] + [torch_to_trt(w.dtype) for w in weights]

    def run(x):
        x = x.cuda()
        shapes = [tuple(x.shape)] + [tuple(w.shape) for w in weights]
        ws_bytes = plugin.workspace_size(shapes, types)
        ws = torch.empty((max(ws_bytes, 1),), dtype=torch.uint8, device="cuda")
        y = torch.full((x.shape[0], lay.spec.out_features), float("nan"), dtype=dtype, device="cuda")
        plugin.enqueue([x] + weights, y, ws)
        return y

    check_backend(mod, lay, config, "tensorrt-plugin", run)
