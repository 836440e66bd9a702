// plugins/tensorrt/vptq_gemm_plugin.h: the VPTQGemm TensorRT plugin (IPluginV3, version "1",
// namespace "vptq"), one object per network layer / execution context.
//
// A thin adapter: attribute checks (vptq::validate), shapes, formats, workspace and the stream;
// the math is vptq::gemm_cuda (csrc/cuda). Every message names the node (the layer name TensorRT
// passed to createPlugin). No exception leaves any method: errors are logged through the
// library's logger (plugin_log.h) and returned as non-zero codes / false / nullptr.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>

#include "plugin_fields.h"
#include "plugin_log.h"

namespace vptq_trt {

class VPTQGemmPlugin final : public nvinfer1::IPluginV3,
                             public nvinfer1::IPluginV3OneCore,
                             public nvinfer1::IPluginV3OneBuild,
                             public nvinfer1::IPluginV3OneRuntime {
 public:
  // `cfg` must already be validated (the creator does it). `name` is the node / layer name.
  VPTQGemmPlugin(std::string name, const PluginConfig& cfg);
  ~VPTQGemmPlugin() override;
  VPTQGemmPlugin& operator=(const VPTQGemmPlugin&) = delete;

  const PluginConfig& config() const { return cfg_; }
  const std::string& node_name() const { return name_; }

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore
  const char* getPluginName() const noexcept override { VPTQ_TRT_TRACE(); return kPluginName; }
  const char* getPluginVersion() const noexcept override { VPTQ_TRT_TRACE(); return kPluginVersion; }
  const char* getPluginNamespace() const noexcept override { VPTQ_TRT_TRACE(); return kPluginNamespace; }

  // IPluginV3OneBuild
  int32_t configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                          const nvinfer1::DynamicPluginTensorDesc* out, int32_t nbOutputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                             const nvinfer1::DataType* inputTypes, int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                          const nvinfer1::DimsExprs* shapeInputs, int32_t nbShapeInputs,
                          nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut,
                                 int32_t nbInputs, int32_t nbOutputs) noexcept override;
  int32_t getNbOutputs() const noexcept override { VPTQ_TRT_TRACE(); return 1; }
  size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nbInputs,
                          const nvinfer1::DynamicPluginTensorDesc* outputs,
                          int32_t nbOutputs) const noexcept override;
  const char* getTimingCacheID() noexcept override { VPTQ_TRT_TRACE(); return description_.c_str(); }
  const char* getMetadataString() noexcept override { VPTQ_TRT_TRACE(); return description_.c_str(); }

  // IPluginV3OneRuntime
  int32_t onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs,
                        const nvinfer1::PluginTensorDesc* out, int32_t nbOutputs) noexcept override;
  int32_t enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc* outputDesc,
                  const void* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  const nvinfer1::PluginFieldCollection* getFieldsToSerialize() noexcept override;

 private:
  VPTQGemmPlugin(const VPTQGemmPlugin& other);  // clone(): configuration only, no handle

  // "VPTQGemm node 'NAME': " + what, logged as an error; returns 1 (the failure code).
  int32_t fail(const std::string& what) const noexcept;
  // "" or why the input count / weight shapes / X's last dimension do not match the op.
  std::string check_inputs(const nvinfer1::Dims* dims, const nvinfer1::DataType* types, int32_t nbInputs,
                           int32_t nbOutputs) const;
  bool is_int_input(int32_t pos) const;
  void ensure_blas() noexcept;

  std::string name_;
  PluginConfig cfg_;
  vptq::InputSlots slots_;
  std::string description_;   // timing-cache id / metadata: the attributes
  SerializedFields serialized_;
  void* blas_ = nullptr;       // cublasHandle_t owned by this object (null: none / not built)
  bool blas_tried_ = false;
};

}  // namespace vptq_trt
