// libvptq_ort.so: ONNX Runtime custom-op library registering vptq.VPTQGemm (version 1) for the
// CPU execution provider (vptq::gemm_cpu on ORT's intra-op thread pool) and, when built with the
// CUDA kernels, the CUDA execution provider (vptq::gemm_cuda on ORT's compute stream).
// Contract: docs/op-spec.md; ABI policy: plugins/ort/README.md.
//
// Errors never cross the C boundary as exceptions: every entry point catches and returns an
// OrtStatus naming the node. Built against the ORT C API version VPTQ_ORT_API_VERSION (the
// oldest runtime it loads into), whatever the headers' ORT_API_VERSION is.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vptq/cpu.h"
#include "vptq/layer.h"
#ifdef VPTQ_ORT_WITH_CUDA
#include "vptq/cuda.h"
#endif

#define VPTQ_ORT_STRINGIFY_(x) #x
#define VPTQ_ORT_STRINGIFY(x) VPTQ_ORT_STRINGIFY_(x)

#ifndef VPTQ_ORT_API_VERSION
#define VPTQ_ORT_API_VERSION 17  // ONNX Runtime 1.17: CreateKernelV2, ParallelFor, GetResource
#endif
static_assert(VPTQ_ORT_API_VERSION <= ORT_API_VERSION, "headers older than the API we target");

namespace {

const OrtApi* g_api = nullptr;
constexpr const char* kOpName = "VPTQGemm";
constexpr const char* kDomain = "vptq";

// CUDA EP resource ids (onnxruntime/core/providers/cuda/cuda_resource.h, not in the -dev
// package): cuda_resource_offset (10000) + CudaResource enum position.
constexpr int kCudaResourceVersion = 1;
constexpr int kCudaResourceCublasHandle = 10002;

OrtStatus* make_status(OrtErrorCode code, const std::string& node, const std::string& message) {
  return g_api->CreateStatus(code, (std::string(kOpName) + " node '" + node + "': " + message).c_str());
}

std::string take_message(OrtStatus* status) {
  std::string msg = status ? g_api->GetErrorMessage(status) : "";
  if (status) g_api->ReleaseStatus(status);
  return msg;
}

const char* type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    default: return "another type";
  }
}

vptq::DType to_dtype(ONNXTensorElementDataType t) {
  return t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 ? vptq::DType::kFloat16
         : t == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 ? vptq::DType::kBFloat16
                                                       : vptq::DType::kFloat32;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const char* kInputNames[] = {"X", "packed_indices", "centroids", "res_centroids",
                             "outlier_indices", "outlier_centroids", "perm", "weight_scale",
                             "weight_bias", "bias"};

// ------------------------------------------------------------------ the kernel (one per node)

struct Kernel {
  std::string node;
  vptq::LayerAttributes attrs;
  vptq::InputSlots slots;
  std::vector<std::string> input_names;  // by position
  ONNXTensorElementDataType type;
  bool cuda;

  OrtStatus* ComputeV2(OrtKernelContext* context) noexcept {
    try {
      return compute(context);
    } catch (const std::exception& e) {
      return make_status(ORT_FAIL, node, e.what());
    } catch (...) {
      return make_status(ORT_FAIL, node, "unknown error");
    }
  }

  // Reads input `i`: checks its element type and (weights) its shape.
  OrtStatus* input(OrtKernelContext* context, int i, const void** data,
                   std::vector<int64_t>* shape) const {
    const OrtValue* value = nullptr;
    OrtStatus* st = g_api->KernelContext_GetInput(context, static_cast<size_t>(i), &value);
    if (st || !value)
      return make_status(ORT_INVALID_ARGUMENT, node, "input " + std::to_string(i) + " (" +
                         input_names[i] + ") is missing: " + take_message(st));
    Ort::ConstValue v(value);
    if (!v.IsTensor())
      return make_status(ORT_INVALID_ARGUMENT, node, "input '" + input_names[i] + "' is not a tensor");
    auto info = v.GetTensorTypeAndShapeInfo();
    const ONNXTensorElementDataType t = info.GetElementType();
    const bool is_int = i == slots.packed_indices || i == slots.outlier_indices || i == slots.perm;
    const ONNXTensorElementDataType want = is_int ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 : type;
    if (t != want)
      return make_status(ORT_INVALID_ARGUMENT, node,
                         "input '" + input_names[i] + "' must be " + type_name(want) +
                             (is_int ? "" : " (X's type)") + ", got " + type_name(t));
    *shape = info.GetShape();
    if (i != slots.x) {
      int64_t dims[3];
      const int rank = vptq::expected_input_shape(attrs, slots, i, dims);
      std::vector<int64_t> expected(dims, dims + rank);
      if (*shape != expected)
        return make_status(ORT_INVALID_ARGUMENT, node,
                           "input '" + input_names[i] + "' must have shape " +
                               shape_str(expected) + ", got " + shape_str(*shape));
    }
    *data = v.GetTensorRawData();
    return nullptr;
  }

  OrtStatus* compute(OrtKernelContext* context) const {
    size_t count = 0;
    if (OrtStatus* st = g_api->KernelContext_GetInputCount(context, &count))
      return make_status(ORT_FAIL, node, take_message(st));
    if (static_cast<int>(count) != slots.count)
      return make_status(ORT_INVALID_ARGUMENT, node,
                         "the attributes (residual / outliers / has_perm / has_norm / has_bias) "
                         "call for " + std::to_string(slots.count) + " inputs, the node has " +
                             std::to_string(count));
    std::vector<const void*> data(count, nullptr);
    std::vector<int64_t> xshape, shape;
    for (int i = 0; i < slots.count; ++i) {
      if (OrtStatus* st = input(context, i, &data[i], i == slots.x ? &xshape : &shape)) return st;
    }
    if (xshape.empty() || xshape.back() != attrs.in_features)
      return make_status(ORT_INVALID_ARGUMENT, node,
                         "X must have shape [..., in_features = " +
                             std::to_string(attrs.in_features) + "], got " + shape_str(xshape));
    int64_t m = 1;
    for (size_t d = 0; d + 1 < xshape.size(); ++d) m *= xshape[d];
    std::vector<int64_t> yshape(xshape.begin(), xshape.end() - 1);
    yshape.push_back(attrs.out_features);
    OrtValue* out = nullptr;
    if (OrtStatus* st = g_api->KernelContext_GetOutput(context, 0, yshape.data(), yshape.size(), &out))
      return make_status(ORT_FAIL, node, "cannot allocate Y " + shape_str(yshape) + ": " + take_message(st));
    void* y = nullptr;
    if (OrtStatus* st = g_api->GetTensorMutableData(out, &y)) return make_status(ORT_FAIL, node, take_message(st));
    if (m == 0) return nullptr;

    const vptq::LayerTensors t = vptq::layer_tensors(slots, data.data());

    std::string err;
    if (cuda) {
      err = compute_cuda(context, t, data[slots.x], y, m);
    } else {
      vptq::CpuExecutor ex;
      ex.run = &run_on_ort_pool;
      ex.ctx = context;
      ex.concurrency = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      err = vptq::gemm_cpu(attrs, t, to_dtype(type), data[slots.x], y, m, ex);
    }
    if (!err.empty()) return make_status(ORT_FAIL, node, err);
    return nullptr;
  }

  // gemm_cpu's parallel loops on ORT's intra-op thread pool (serially when it is unavailable).
  static void run_on_ort_pool(void* ctx, void (*fn)(void*, size_t), void* fn_ctx, size_t n) {
    OrtStatus* st = g_api->KernelContext_ParallelFor(static_cast<const OrtKernelContext*>(ctx), fn,
                                                     n, 0, fn_ctx);
    if (st) {
      g_api->ReleaseStatus(st);
      for (size_t i = 0; i < n; ++i) fn(fn_ctx, i);
    }
  }

  std::string compute_cuda(OrtKernelContext* context, const vptq::LayerTensors& t, const void* x,
                           void* y, int64_t m) const {
#ifdef VPTQ_ORT_WITH_CUDA
    void* stream = nullptr;
    if (OrtStatus* st = g_api->KernelContext_GetGPUComputeStream(context, &stream))
      return "no CUDA compute stream: " + take_message(st);
    void* cublas = nullptr;
    if (OrtStatus* st = g_api->KernelContext_GetResource(context, kCudaResourceVersion,
                                                         kCudaResourceCublasHandle, &cublas)) {
      g_api->ReleaseStatus(st);
      cublas = nullptr;  // the kernels then use their own prefill path
    }
    const vptq::DType dtype = to_dtype(type);
    const size_t bytes = vptq::gemm_cuda_workspace_bytes(attrs, dtype, m);
    void* workspace = nullptr;
    OrtAllocator* allocator = nullptr;
    if (bytes) {
      // ORT's CUDA allocator for the device of X; the buffer is released right after the enqueue:
      // the arena is ordered on the compute stream, which runs our kernel before later users.
      const OrtValue* xv = nullptr;
      if (OrtStatus* st = g_api->KernelContext_GetInput(context, 0, &xv)) return take_message(st);
      const OrtMemoryInfo* xinfo = nullptr;
      if (OrtStatus* st = g_api->GetTensorMemoryInfo(xv, &xinfo)) return take_message(st);
      if (OrtStatus* st = g_api->KernelContext_GetAllocator(context, xinfo, &allocator))
        return "no CUDA allocator: " + take_message(st);
      workspace = allocator->Alloc(allocator, bytes);
      if (!workspace) return "cannot allocate " + std::to_string(bytes) + " bytes of workspace";
    }
    std::string err = vptq::gemm_cuda(attrs, t, dtype, x, y, m, workspace, bytes, cublas, stream);
    if (workspace) allocator->Free(allocator, workspace);
    if (allocator) g_api->ReleaseAllocator(allocator);
    return err;
#else
    (void)context; (void)t; (void)x; (void)y; (void)m;
    return "this libvptq_ort.so was built without the CUDA kernels";
#endif
  }
};

// Reads and validates the node's attributes; on success *out is a new Kernel.
OrtStatus* create_kernel(const OrtKernelInfo* info, ONNXTensorElementDataType type, bool cuda,
                         void** out) {
  std::string node = "?";
  size_t size = 0;
  if (OrtStatus* st = g_api->KernelInfo_GetNodeName(info, nullptr, &size)) {
    g_api->ReleaseStatus(st);
  } else if (size > 0) {
    std::vector<char> buf(size);
    if (OrtStatus* st = g_api->KernelInfo_GetNodeName(info, buf.data(), &size))
      g_api->ReleaseStatus(st);
    else
      node.assign(buf.data());
  }
  auto kernel = std::make_unique<Kernel>();
  kernel->node = node.empty() ? "<unnamed>" : node;
  kernel->type = type;
  kernel->cuda = cuda;
  vptq::LayerAttributes& a = kernel->attrs;
  struct { const char* name; int64_t* field; } ints[] = {
      {"in_features", &a.in_features}, {"out_features", &a.out_features},
      {"vector_len", &a.vector_len}, {"num_centroids", &a.num_centroids},
      {"num_res_centroids", &a.num_res_centroids}, {"group_num", &a.group_num},
      {"group_size", &a.group_size}, {"outlier_size", &a.outlier_size},
      {"outlier_vector_len", &a.outlier_vector_len},
      {"outlier_num_centroids", &a.outlier_num_centroids}, {"index_bits", &a.index_bits},
      {"res_index_bits", &a.res_index_bits}, {"has_perm", &a.has_perm},
      {"has_norm", &a.has_norm}, {"has_bias", &a.has_bias}};
  for (const auto& f : ints) {
    if (OrtStatus* st = g_api->KernelInfoGetAttribute_int64(info, f.name, f.field))
      return make_status(ORT_INVALID_GRAPH, kernel->node,
                         std::string("missing or non-integer attribute '") + f.name + "' (" +
                             take_message(st) + ")");
  }
  std::string layout;
  size = 0;
  if (OrtStatus* st = g_api->KernelInfoGetAttribute_string(info, "index_layout", nullptr, &size)) {
    return make_status(ORT_INVALID_GRAPH, kernel->node,
                       "missing string attribute 'index_layout' (" + take_message(st) + ")");
  }
  std::vector<char> buf(size + 1, 0);
  if (OrtStatus* st = g_api->KernelInfoGetAttribute_string(info, "index_layout", buf.data(), &size))
    return make_status(ORT_INVALID_GRAPH, kernel->node, take_message(st));
  layout.assign(buf.data());
  std::string err = vptq::validate_index_layout(layout);
  if (err.empty()) err = vptq::validate(a);
  if (!err.empty()) return make_status(ORT_INVALID_GRAPH, kernel->node, err);
  kernel->slots = vptq::input_slots(a);
  const vptq::InputSlots& s = kernel->slots;
  kernel->input_names.assign(s.count, "");
  const int positions[] = {s.x, s.packed_indices, s.centroids, s.res_centroids, s.outlier_indices,
                           s.outlier_centroids, s.perm, s.weight_scale, s.weight_bias, s.bias};
  for (int i = 0; i < 10; ++i)
    if (positions[i] >= 0) kernel->input_names[positions[i]] = kInputNames[i];
  size_t inputs = 0;
  if (OrtStatus* st = g_api->KernelInfo_GetInputCount(info, &inputs)) g_api->ReleaseStatus(st);
  else if (static_cast<int>(inputs) != s.count)
    return make_status(ORT_INVALID_GRAPH, kernel->node,
                       "the attributes call for " + std::to_string(s.count) +
                           " inputs (X, packed_indices, centroids and the parts whose presence "
                           "attributes are set), the node has " + std::to_string(inputs));
  *out = kernel.release();
  return nullptr;
}

// ------------------------------------------------------------------ the op (one per type x EP)

template <ONNXTensorElementDataType T, bool CUDA>
struct VPTQGemmOp : Ort::CustomOpBase<VPTQGemmOp<T, CUDA>, Kernel, /*WithStatus=*/true> {
  VPTQGemmOp() {
    // Declare the API version we were written for (older runtimes accept it) instead of the
    // headers' ORT_API_VERSION, so that the library loads into every ORT >= 1.17.
    OrtCustomOp::version = VPTQ_ORT_API_VERSION;
    this->end_ver_ = 1;  // VPTQGemm version 1 only
  }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    try {
      return create_kernel(info, T, CUDA, kernel);
    } catch (const std::exception& e) {
      return g_api->CreateStatus(ORT_FAIL, (std::string(kOpName) + ": " + e.what()).c_str());
    } catch (...) {
      return g_api->CreateStatus(ORT_FAIL, "VPTQGemm: unknown error creating the kernel");
    }
  }
  const char* GetName() const { return kOpName; }
  const char* GetExecutionProviderType() const {
    return CUDA ? "CUDAExecutionProvider" : "CPUExecutionProvider";
  }
  // X, packed_indices, then a heterogeneous variadic tail (centroids and the optional inputs;
  // their types and shapes are checked per node in Compute).
  size_t GetInputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetInputType(size_t i) const {
    return i == 0 ? T : i == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const {
    return i == 2 ? INPUT_OUTPUT_VARIADIC : INPUT_OUTPUT_REQUIRED;
  }
  int GetVariadicInputMinArity() const { return 1; }
  bool GetVariadicInputHomogeneity() const { return false; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return T; }
};

template <bool CUDA>
struct OpSet {
  VPTQGemmOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, CUDA> f32;
  VPTQGemmOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, CUDA> f16;
  VPTQGemmOp<ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, CUDA> bf16;
};

OrtStatus* add_ops(OrtCustomOpDomain* domain) {
  static OpSet<false> cpu_ops;
  OrtCustomOp* ops[] = {&cpu_ops.f32, &cpu_ops.f16, &cpu_ops.bf16};
  for (OrtCustomOp* op : ops)
    if (OrtStatus* st = g_api->CustomOpDomain_Add(domain, op)) return st;
#ifdef VPTQ_ORT_WITH_CUDA
  static OpSet<true> cuda_ops;
  OrtCustomOp* gpu[] = {&cuda_ops.f32, &cuda_ops.f16, &cuda_ops.bf16};
  for (OrtCustomOp* op : gpu)
    if (OrtStatus* st = g_api->CustomOpDomain_Add(domain, op)) return st;
#endif
  return nullptr;
}

}  // namespace

extern "C" {

// Entry point for SessionOptions.register_custom_ops_library / RegisterCustomOpsLibrary*.
__attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base ? api_base->GetApi(VPTQ_ORT_API_VERSION) : nullptr;
  if (!api) {
    const OrtApi* any = api_base ? api_base->GetApi(1) : nullptr;
    return any ? any->CreateStatus(ORT_FAIL, "libvptq_ort.so needs ONNX Runtime >= 1.17 (C API "
                                             "version 17)")
               : nullptr;
  }
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  g_api = api;
  Ort::InitApi(api);
  // One domain per registration; domains must outlive every session using them, so they are
  // kept for the life of the process (a few bytes each).
  OrtCustomOpDomain* domain = nullptr;
  if (OrtStatus* st = api->CreateCustomOpDomain(kDomain, &domain)) return st;
  if (OrtStatus* st = add_ops(domain)) return st;
  return api->AddCustomOpDomain(options, domain);
}

// Library version (for `vptq-export doctor` and bug reports).
__attribute__((visibility("default"))) const char* VPTQGetOpLibraryInfo() {
#ifdef VPTQ_ORT_WITH_CUDA
  return "vptq.VPTQGemm v1; CPUExecutionProvider, CUDAExecutionProvider; ORT C API >= " 
         VPTQ_ORT_STRINGIFY(VPTQ_ORT_API_VERSION);
#else
  return "vptq.VPTQGemm v1; CPUExecutionProvider; ORT C API >= " VPTQ_ORT_STRINGIFY(VPTQ_ORT_API_VERSION);
#endif
}

}  // extern "C"
