// python/bind_cuda.cpp: the CUDA functions of vptq_export._kernels (module.cpp calls
// register_cuda when the module is built with the CUDA kernels). The module does not link
// libtorch: tensors are read through their Python attributes (data_ptr, shape, dtype, device,
// bind_common.h), raw-pointer variants take integers.
//
//   gemm_cuda(x, attrs, *weights, use_blas=True) -> Y
//       x and the weights (positional in node order after X, or one dict by input name) are
//       CUDA torch tensors on one device; Y is a new tensor there. Runs on torch's current
//       stream of that device; the workspace is a torch uint8 tensor (torch's caching
//       allocator); use_blas: prefill through cuBLAS with a handle this module creates once per
//       device (False: the library's tiled GEMM).
//   gemm_cuda_ptr(attrs, dtype, x_ptr, y_ptr, m, weights, workspace_ptr, workspace_bytes,
//                 stream, use_blas=True)
//       the same on raw device pointers (ints): weights is a dict {input name: pointer}; for
//       benchmarks and CUDA graphs (no allocation, no Python objects touched on the GPU side).
//   gemm_cuda_host_us(<gemm_cuda_ptr arguments>, calls=1000) -> host µs per gemm_cuda call
//       (a C++ loop: the per-call overhead without Python / pybind; benchmarks)
//   gpu_empty_launch_host_us(stream, launches=1000) -> host µs per empty kernel launch
//   gemm_cuda_workspace_bytes(attrs, dtype, m), gemm_cuda_kernel_name(attrs, dtype, m)
//   cuda_has_blas: True when the kernels were built with cuBLAS.
// dtype strings: "float32", "float16", "bfloat16".
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cuda_runtime_api.h>
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
#include <cublas_v2.h>
#endif

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "bind_common.h"
#include "vptq/cuda.h"
#include "vptq/layer.h"

namespace py = pybind11;

namespace {

constexpr int kMaxDevices = 64;

vptq::DType dtype_from_string(const std::string& s) {
  if (s == "float32" || s == "torch.float32") return vptq::DType::kFloat32;
  if (s == "float16" || s == "torch.float16") return vptq::DType::kFloat16;
  if (s == "bfloat16" || s == "torch.bfloat16") return vptq::DType::kBFloat16;
  throw py::value_error("VPTQGemm: dtype must be float32, float16 or bfloat16, got '" + s + "'");
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("VPTQGemm: ") + what + ": " + cudaGetErrorString(e));
}

// One cuBLAS handle per device, created on first use and kept for the life of the process.
void* blas_handle(int device) {
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
  static std::mutex mu;
  static cublasHandle_t handles[kMaxDevices] = {};
  if (device < 0 || device >= kMaxDevices) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[device]) {
    cublasHandle_t h = nullptr;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error("VPTQGemm: cublasCreate failed on device " + std::to_string(device));
    handles[device] = h;
  }
  return handles[device];
#else
  (void)device;
  return nullptr;
#endif
}

vptq::LayerAttributes checked_attributes(const py::dict& attrs) {
  vptq::LayerAttributes a = vptq_py::attributes_from_dict(attrs);
  const std::string err = vptq::validate(a);
  if (!err.empty()) throw py::value_error("VPTQGemm: " + err);
  return a;
}

vptq::LayerTensors tensors_from_pointers(const vptq::LayerAttributes& a, const py::dict& w) {
  auto get = [&](const char* name, bool present) -> const void* {
    if (!present) return nullptr;
    if (!w.contains(name)) throw py::value_error(std::string("VPTQGemm: weight pointer '") + name + "' missing");
    return reinterpret_cast<const void*>(py::cast<uintptr_t>(w[name]));
  };
  vptq::LayerTensors t;
  t.packed_indices = static_cast<const int32_t*>(get("packed_indices", true));
  t.centroids = get("centroids", true);
  t.res_centroids = get("res_centroids", a.has_residual());
  t.outlier_indices = static_cast<const int32_t*>(get("outlier_indices", a.has_outliers()));
  t.outlier_centroids = get("outlier_centroids", a.has_outliers());
  t.perm = static_cast<const int32_t*>(get("perm", a.has_perm != 0));
  t.weight_scale = get("weight_scale", a.has_norm != 0);
  t.weight_bias = get("weight_bias", a.has_norm != 0);
  t.bias = get("bias", a.has_bias != 0);
  return t;
}

// vptq::gemm_cuda on raw device pointers, `calls` times back to back; returns the host wall time
// per call in µs (argument checks, plan, launches; the pybind conversion happens once, outside).
double gemm_cuda_ptr_calls(const py::dict& attrs, const std::string& dtype, uintptr_t x, uintptr_t y, int64_t m,
                           const py::dict& weights, uintptr_t workspace, size_t workspace_bytes, uintptr_t stream,
                           bool use_blas, int calls) {
  const vptq::LayerAttributes a = checked_attributes(attrs);
  const vptq::DType dt = dtype_from_string(dtype);
  const vptq::LayerTensors t = tensors_from_pointers(a, weights);
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  void* handle = use_blas ? blas_handle(device) : nullptr;
  std::string err;
  double us = 0;
  {
    py::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls && err.empty(); ++i)
      err = vptq::gemm_cuda(a, t, dt, reinterpret_cast<const void*>(x), reinterpret_cast<void*>(y), m,
                            reinterpret_cast<void*>(workspace), workspace_bytes, handle,
                            reinterpret_cast<void*>(stream));
    us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / calls;
  }
  if (!err.empty()) throw std::runtime_error("VPTQGemm: " + err);
  return us;
}

void gemm_cuda_ptr(const py::dict& attrs, const std::string& dtype, uintptr_t x, uintptr_t y, int64_t m,
                   const py::dict& weights, uintptr_t workspace, size_t workspace_bytes, uintptr_t stream,
                   bool use_blas) {
  gemm_cuda_ptr_calls(attrs, dtype, x, y, m, weights, workspace, workspace_bytes, stream, use_blas, 1);
}

// Host time of vptq::gemm_cuda alone (no Python, no pybind conversion): `calls` back-to-back
// calls from C++, µs per call. The launches are asynchronous and the GPU work queues up behind
// them, so this is the enqueue cost a runtime (ORT, TensorRT) pays per VPTQGemm node, not the
// kernel time.
double gemm_cuda_host_us(const py::dict& attrs, const std::string& dtype, uintptr_t x, uintptr_t y, int64_t m,
                         const py::dict& weights, uintptr_t workspace, size_t workspace_bytes, uintptr_t stream,
                         bool use_blas, int calls) {
  if (calls < 1) throw py::value_error("gemm_cuda_host_us: calls must be >= 1");
  return gemm_cuda_ptr_calls(attrs, dtype, x, y, m, weights, workspace, workspace_bytes, stream, use_blas, calls);
}

py::object gemm_cuda_tensors(py::object x_obj, const py::dict& attrs, py::args weights, bool use_blas) {
  using vptq_py::TensorView;
  const vptq::LayerAttributes a = checked_attributes(attrs);
  const vptq::InputSlots slots = vptq::input_slots(a);
  const vptq_py::CheckedInputs in = vptq_py::checked_inputs(x_obj, a, slots, weights, /*want_cuda=*/true);
  const TensorView& x = in.x;
  const vptq::LayerTensors& tensors = in.tensors;
  const py::object device = x.owner.attr("device");

  std::vector<int64_t> yshape(x.shape.begin(), x.shape.end() - 1);
  yshape.push_back(a.out_features);
  int64_t m = 1;
  for (size_t i = 0; i + 1 < x.shape.size(); ++i) m *= x.shape[i];
  const vptq::DType dt = vptq_py::to_dtype(x.kind);

  py::module_ torch = py::module_::import("torch");
  const int device_index = py::cast<int>(device.attr("index"));
  check_cuda(cudaSetDevice(device_index), "cudaSetDevice");
  TensorView y = vptq_py::empty_like_kind(x, yshape);
  const size_t ws_bytes = vptq::gemm_cuda_workspace_bytes(a, dt, m);
  py::object ws = torch.attr("empty")(py::make_tuple(static_cast<int64_t>(ws_bytes > 0 ? ws_bytes : 1)),
                                      py::arg("dtype") = torch.attr("uint8"), py::arg("device") = device);
  void* ws_ptr = reinterpret_cast<void*>(py::cast<uintptr_t>(ws.attr("data_ptr")()));
  const uintptr_t stream =
      py::cast<uintptr_t>(torch.attr("cuda").attr("current_stream")(device).attr("cuda_stream"));
  void* handle = use_blas ? blas_handle(device_index) : nullptr;
  std::string err;
  {
    py::gil_scoped_release release;
    err = vptq::gemm_cuda(a, tensors, dt, x.data, y.mutable_data, m, ws_ptr, ws_bytes, handle,
                          reinterpret_cast<void*>(stream));
  }
  if (!err.empty()) throw std::runtime_error("VPTQGemm: " + err);
  // keep the workspace alive until the stream has used it: torch's caching allocator would hand
  // it to the next allocation on this stream only, which is ordered after our kernels.
  return y.owner;
}

}  // namespace

void register_cuda(py::module_& m) {
  m.def("gemm_cuda", &gemm_cuda_tensors, py::arg("x"), py::arg("attrs"), py::arg("use_blas") = true,
        "Y = X @ W^T (+ bias) on the GPU: X and the VPTQGemm weight inputs are CUDA torch tensors "
        "(positional in node order after X, or one dict by input name); runs on torch's current stream.");
  m.def("gemm_cuda_ptr", &gemm_cuda_ptr, py::arg("attrs"), py::arg("dtype"), py::arg("x_ptr"), py::arg("y_ptr"),
        py::arg("m"), py::arg("weights"), py::arg("workspace_ptr"), py::arg("workspace_bytes"),
        py::arg("stream"), py::arg("use_blas") = true,
        "gemm_cuda on raw device pointers (ints); weights: {input name: pointer}.");
  m.def("gemm_cuda_host_us", &gemm_cuda_host_us, py::arg("attrs"), py::arg("dtype"), py::arg("x_ptr"),
        py::arg("y_ptr"), py::arg("m"), py::arg("weights"), py::arg("workspace_ptr"), py::arg("workspace_bytes"),
        py::arg("stream"), py::arg("use_blas") = true, py::arg("calls") = 1000,
        "Host µs per vptq::gemm_cuda call, `calls` calls in a C++ loop (benchmarks: per-call overhead).");
  m.def(
      "gpu_empty_launch_host_us",
      [](uintptr_t stream, int launches) {
        double us;
        {
          py::gil_scoped_release release;
          us = vptq::gpu_empty_launch_host_us(reinterpret_cast<void*>(stream), launches);
        }
        if (us < 0) throw std::runtime_error("gpu_empty_launch_host_us: launch failed");
        return us;
      },
      py::arg("stream"), py::arg("launches") = 1000,
      "Host µs per launch of an empty kernel (the driver's share of gemm_cuda_host_us).");
  m.def(
      "gemm_cuda_workspace_bytes",
      [](const py::dict& attrs, const std::string& dtype, int64_t rows) {
        return vptq::gemm_cuda_workspace_bytes(checked_attributes(attrs), dtype_from_string(dtype), rows);
      },
      py::arg("attrs"), py::arg("dtype"), py::arg("m"));
  m.def(
      "gemm_cuda_kernel_name",
      [](const py::dict& attrs, const std::string& dtype, int64_t rows) {
        return std::string(vptq::gemm_cuda_kernel_name(checked_attributes(attrs), dtype_from_string(dtype), rows));
      },
      py::arg("attrs"), py::arg("dtype"), py::arg("m"));
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
  m.attr("cuda_has_blas") = true;
#else
  m.attr("cuda_has_blas") = false;
#endif
}
