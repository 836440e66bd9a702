// plugins/tensorrt/vptq_gemm_plugin.cpp: see vptq_gemm_plugin.h. The op's contract is
// docs/op-spec.md; rules live in csrc/ (vptq::validate, vptq::expected_input_shape).
#include "vptq_gemm_plugin.h"

#include <algorithm>
#include <new>

#include "plugin_log.h"
#include "vptq/cuda.h"

#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
#include <cublas_v2.h>
#endif

namespace vptq_trt {

using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;

namespace {

bool to_vptq_dtype(DataType t, vptq::DType& out) {
  switch (t) {
    case DataType::kFLOAT: out = vptq::DType::kFloat32; return true;
    case DataType::kHALF: out = vptq::DType::kFloat16; return true;
    case DataType::kBF16: out = vptq::DType::kBFloat16; return true;
    default: return false;
  }
}

bool is_float(DataType t) {
  vptq::DType unused;
  return to_vptq_dtype(t, unused);
}

const char* trt_type_name(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "float32";
    case DataType::kHALF: return "float16";
    case DataType::kBF16: return "bfloat16";
    case DataType::kINT8: return "int8";
    case DataType::kINT32: return "int32";
    case DataType::kINT64: return "int64";
    case DataType::kBOOL: return "bool";
    case DataType::kUINT8: return "uint8";
    default: return "another type";
  }
}

const char* input_name(const vptq::InputSlots& s, int pos) {
  if (pos == s.x) return "X";
  if (pos == s.packed_indices) return "packed_indices";
  if (pos == s.centroids) return "centroids";
  if (pos == s.res_centroids) return "res_centroids";
  if (pos == s.outlier_indices) return "outlier_indices";
  if (pos == s.outlier_centroids) return "outlier_centroids";
  if (pos == s.perm) return "perm";
  if (pos == s.weight_scale) return "weight_scale";
  if (pos == s.weight_bias) return "weight_bias";
  if (pos == s.bias) return "bias";
  return "?";
}

std::string shape_text(const int64_t* d, int rank) {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + (d[i] < 0 ? std::string("?") : std::to_string(d[i]));
  return s + "]";
}

std::string input_count_problem(const vptq::LayerAttributes& a, int32_t nbInputs, int32_t nbOutputs) {
  if (nbInputs != a.num_inputs()) {
    return "has " + std::to_string(nbInputs) + " inputs, but its attributes need " +
           std::to_string(a.num_inputs()) + " (X, packed_indices, centroids" +
           (a.has_residual() ? ", res_centroids" : "") +
           (a.has_outliers() ? ", outlier_indices, outlier_centroids" : "") +
           (a.has_perm ? ", perm" : "") + (a.has_norm ? ", weight_scale, weight_bias" : "") +
           (a.has_bias ? ", bias" : "") +
           "); optional inputs are omitted, never passed empty (docs/op-spec.md)";
  }
  if (nbOutputs != 1) return "has " + std::to_string(nbOutputs) + " outputs, expected 1 (Y)";
  return "";
}

// Rows of X: the product of all dimensions but the last (-1 when one is unknown).
int64_t rows_of(const Dims& d) {
  int64_t m = 1;
  for (int i = 0; i + 1 < d.nbDims; ++i) {
    if (d.d[i] < 0) return -1;
    m *= d.d[i];
  }
  return m;
}

}  // namespace

VPTQGemmPlugin::VPTQGemmPlugin(std::string name, const PluginConfig& cfg)
    : name_(std::move(name)), cfg_(cfg), slots_(vptq::input_slots(cfg.attrs)), description_(describe(cfg)) {}

VPTQGemmPlugin::VPTQGemmPlugin(const VPTQGemmPlugin& other)
    : nvinfer1::IPluginV3(other),
      nvinfer1::IPluginV3OneCore(other),
      nvinfer1::IPluginV3OneBuild(other),
      nvinfer1::IPluginV3OneRuntime(other),
      name_(other.name_),
      cfg_(other.cfg_),
      slots_(other.slots_),
      description_(other.description_) {}

VPTQGemmPlugin::~VPTQGemmPlugin() {
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
  if (blas_) cublasDestroy(static_cast<cublasHandle_t>(blas_));
#endif
  blas_ = nullptr;
}

int32_t VPTQGemmPlugin::fail(const std::string& what) const noexcept {
  VPTQ_TRT_TRACE();
  try {
    log_error(std::string(kPluginName) + " node '" + name_ + "': " + what);
  } catch (...) {
    log(nvinfer1::ILogger::Severity::kERROR, "VPTQGemm: error (out of memory formatting the message)");
  }
  return 1;
}

bool VPTQGemmPlugin::is_int_input(int32_t pos) const {
  return pos == slots_.packed_indices || pos == slots_.outlier_indices || pos == slots_.perm;
}

nvinfer1::IPluginCapability* VPTQGemmPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
  VPTQ_TRT_TRACE();
  switch (type) {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
  }
  return nullptr;
}

nvinfer1::IPluginV3* VPTQGemmPlugin::clone() noexcept {
  VPTQ_TRT_TRACE();
  try {
    return new VPTQGemmPlugin(*this);
  } catch (...) {
    fail("clone failed (out of memory)");
    return nullptr;
  }
}

std::string VPTQGemmPlugin::check_inputs(const Dims* dims, const DataType* types, int32_t nbInputs,
                                         int32_t nbOutputs) const {
  const vptq::LayerAttributes& a = cfg_.attrs;
  std::string err = input_count_problem(a, nbInputs, nbOutputs);
  if (!err.empty()) return err;
  if (dims) {
    const Dims& x = dims[0];
    if (x.nbDims < 1) return "input X must have rank >= 1, found rank " + std::to_string(x.nbDims);
    const int64_t last = x.d[x.nbDims - 1];
    if (last >= 0 && last != a.in_features)
      return "input X has last dimension " + std::to_string(last) + ", expected in_features = " +
             std::to_string(a.in_features) + " (X shape " + shape_text(x.d, x.nbDims) + ")";
    for (int pos = 1; pos < nbInputs; ++pos) {
      int64_t want[3];
      const int rank = vptq::expected_input_shape(a, slots_, pos, want);
      const Dims& d = dims[pos];
      bool ok = d.nbDims == rank;
      for (int i = 0; ok && i < rank; ++i) ok = d.d[i] < 0 || d.d[i] == want[i];
      if (!ok)
        return std::string("input ") + std::to_string(pos) + " '" + input_name(slots_, pos) + "' has shape " +
               shape_text(d.d, d.nbDims) + ", expected " + shape_text(want, rank) +
               " for these attributes (docs/op-spec.md)";
    }
  }
  if (types) {
    if (!is_float(types[0]))
      return std::string("input X has type ") + trt_type_name(types[0]) +
             ", expected float32, float16 or bfloat16";
    for (int pos = 1; pos < nbInputs; ++pos) {
      const DataType want = is_int_input(pos) ? DataType::kINT32 : types[0];
      if (types[pos] != want)
        return std::string("input ") + std::to_string(pos) + " '" + input_name(slots_, pos) + "' has type " +
               trt_type_name(types[pos]) + ", expected " + trt_type_name(want) +
               (is_int_input(pos) ? "" : " (every float input shares X's type)");
    }
  }
  return "";
}

int32_t VPTQGemmPlugin::configurePlugin(const DynamicPluginTensorDesc* in, int32_t nbInputs,
                                        const DynamicPluginTensorDesc* out, int32_t nbOutputs) noexcept {
  VPTQ_TRT_TRACE();
  try {
    (void)out;
    if (!in || nbInputs < 1) return fail(input_count_problem(cfg_.attrs, nbInputs, nbOutputs));
    Dims dims[16];
    DataType types[16];
    if (nbInputs > 16) return fail(input_count_problem(cfg_.attrs, nbInputs, nbOutputs));
    for (int i = 0; i < nbInputs; ++i) {
      dims[i] = in[i].desc.dims;
      types[i] = in[i].desc.type;
    }
    std::string err = check_inputs(dims, types, nbInputs, nbOutputs);
    return err.empty() ? 0 : fail(err);
  } catch (...) {
    return fail("configurePlugin: out of memory");
  }
}

int32_t VPTQGemmPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, const DataType* inputTypes,
                                           int32_t nbInputs) const noexcept {
  VPTQ_TRT_TRACE();
  try {
    std::string err = input_count_problem(cfg_.attrs, nbInputs, nbOutputs);
    if (!err.empty()) return fail(err);
    if (!is_float(inputTypes[0]))
      return fail(std::string("input X has type ") + trt_type_name(inputTypes[0]) +
                  ", expected float32, float16 or bfloat16");
    outputTypes[0] = inputTypes[0];
    return 0;
  } catch (...) {
    return fail("getOutputDataTypes: out of memory");
  }
}

int32_t VPTQGemmPlugin::getOutputShapes(const DimsExprs* inputs, int32_t nbInputs, const DimsExprs* shapeInputs,
                                        int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs,
                                        nvinfer1::IExprBuilder& exprBuilder) noexcept {
  VPTQ_TRT_TRACE();
  try {
    (void)shapeInputs;
    (void)nbShapeInputs;
    if (nbInputs > 16 || !inputs) return fail(input_count_problem(cfg_.attrs, nbInputs, nbOutputs));
    // Build-time constants of every input (weights are initializers: all constant) -> the same
    // checks as configurePlugin, so a bad node fails while the network is being parsed.
    Dims dims[16];
    for (int i = 0; i < nbInputs; ++i) {
      dims[i].nbDims = inputs[i].nbDims;
      for (int k = 0; k < inputs[i].nbDims && k < Dims::MAX_DIMS; ++k)
        dims[i].d[k] = inputs[i].d[k]->isConstant() ? inputs[i].d[k]->getConstantValue() : -1;
    }
    std::string err = check_inputs(dims, nullptr, nbInputs, nbOutputs);
    if (!err.empty()) return fail(err);
    const DimsExprs& x = inputs[0];
    outputs[0] = x;
    const nvinfer1::IDimensionExpr* o = exprBuilder.constant(cfg_.attrs.out_features);
    if (!o) return fail("getOutputShapes: the expression builder returned no constant");
    outputs[0].d[x.nbDims - 1] = o;
    return 0;
  } catch (...) {
    return fail("getOutputShapes: out of memory");
  }
}

bool VPTQGemmPlugin::supportsFormatCombination(int32_t pos, const DynamicPluginTensorDesc* inOut,
                                               int32_t nbInputs, int32_t nbOutputs) noexcept {
  VPTQ_TRT_TRACE();
  if (nbInputs != cfg_.attrs.num_inputs() || nbOutputs != 1 || pos < 0 || pos >= nbInputs + nbOutputs)
    return false;
  const PluginTensorDesc& d = inOut[pos].desc;
  if (d.format != TensorFormat::kLINEAR) return false;
  if (pos < nbInputs && is_int_input(pos)) return d.type == DataType::kINT32;
  if (pos == 0) return is_float(d.type);
  return d.type == inOut[0].desc.type;  // other float inputs and Y follow X
}

size_t VPTQGemmPlugin::getWorkspaceSize(const DynamicPluginTensorDesc* inputs, int32_t nbInputs,
                                        const DynamicPluginTensorDesc* outputs, int32_t nbOutputs) const noexcept {
  VPTQ_TRT_TRACE();
  (void)outputs;
  (void)nbOutputs;
  if (!inputs || nbInputs < 1) return 0;
  vptq::DType dtype;
  if (!to_vptq_dtype(inputs[0].desc.type, dtype)) return 0;
  int64_t m_max = rows_of(inputs[0].max);
  if (m_max < 0) m_max = rows_of(inputs[0].desc.dims);
  if (m_max <= 0) return 0;
  // Enough for every M <= m_max: the decode and prefill plans differ, so take the maximum over
  // the small M where the kernel choice changes, and over m_max (each plan grows with M).
  size_t bytes = vptq::gemm_cuda_workspace_bytes(cfg_.attrs, dtype, m_max);
  for (int64_t m = 1; m <= std::min<int64_t>(m_max, 64); ++m)
    bytes = std::max(bytes, vptq::gemm_cuda_workspace_bytes(cfg_.attrs, dtype, m));
  return bytes;
}

void VPTQGemmPlugin::ensure_blas() noexcept {
  VPTQ_TRT_TRACE();
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
  if (blas_ || blas_tried_) return;
  blas_tried_ = true;
  cublasHandle_t h = nullptr;
  const cublasStatus_t s = cublasCreate(&h);
  if (s == CUBLAS_STATUS_SUCCESS) {
    blas_ = h;
  } else {
    log_warning(std::string(kPluginName) + " node '" + name_ + "': cublasCreate failed (status " +
                std::to_string(static_cast<int>(s)) + "); prefill uses the library's tiled GEMM");
  }
#endif
}

int32_t VPTQGemmPlugin::onShapeChange(const PluginTensorDesc* in, int32_t nbInputs, const PluginTensorDesc* out,
                                      int32_t nbOutputs) noexcept {
  VPTQ_TRT_TRACE();
  try {
    (void)out;
    if (!in || nbInputs < 1 || nbInputs > 16) return fail(input_count_problem(cfg_.attrs, nbInputs, nbOutputs));
    Dims dims[16];
    DataType types[16];
    for (int i = 0; i < nbInputs; ++i) {
      dims[i] = in[i].dims;
      types[i] = in[i].type;
    }
    std::string err = check_inputs(dims, types, nbInputs, nbOutputs);
    if (!err.empty()) return fail(err);
    ensure_blas();  // here rather than in enqueue: keeps enqueue free of allocations
    return 0;
  } catch (...) {
    return fail("onShapeChange: out of memory");
  }
}

int32_t VPTQGemmPlugin::enqueue(const PluginTensorDesc* inputDesc, const PluginTensorDesc* outputDesc,
                                const void* const* inputs, void* const* outputs, void* workspace,
                                cudaStream_t stream) noexcept {
  VPTQ_TRT_TRACE();
  try {
    (void)outputDesc;
    vptq::DType dtype;
    if (!to_vptq_dtype(inputDesc[0].type, dtype))
      return fail(std::string("enqueue: X has type ") + trt_type_name(inputDesc[0].type));
    const Dims& xd = inputDesc[0].dims;
    if (xd.nbDims < 1 || xd.d[xd.nbDims - 1] != cfg_.attrs.in_features)
      return fail("enqueue: X's last dimension is not in_features = " + std::to_string(cfg_.attrs.in_features));
    const int64_t m = rows_of(xd);
    if (m < 0) return fail("enqueue: X has an unresolved dimension");
    const vptq::InputSlots& s = slots_;
    const vptq::LayerTensors t = vptq::layer_tensors(s, inputs);
    ensure_blas();  // no-op after onShapeChange; covers hosts that skip it
    const size_t ws = vptq::gemm_cuda_workspace_bytes(cfg_.attrs, dtype, m);
    const std::string err =
        vptq::gemm_cuda(cfg_.attrs, t, dtype, inputs[0], outputs[0], m, workspace, ws, blas_, stream);
    return err.empty() ? 0 : fail(err);
  } catch (...) {
    return fail("enqueue: unexpected exception");
  }
}

nvinfer1::IPluginV3* VPTQGemmPlugin::attachToContext(nvinfer1::IPluginResourceContext* context) noexcept {
  VPTQ_TRT_TRACE();
  (void)context;
  return clone();  // each execution context gets its own object (and its own cuBLAS handle)
}

const nvinfer1::PluginFieldCollection* VPTQGemmPlugin::getFieldsToSerialize() noexcept {
  VPTQ_TRT_TRACE();
  try {
    return serialized_.fill(cfg_);
  } catch (...) {
    fail("getFieldsToSerialize: out of memory");
    return nullptr;
  }
}

}  // namespace vptq_trt
