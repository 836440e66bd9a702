// plugins/tensorrt/vptq_gemm_creator.h: IPluginCreatorV3One for VPTQGemm (name "VPTQGemm",
// version "1", namespace "vptq"). TensorRT's ONNX parser finds it by the node's op_type, domain
// (>= 10.10) or plugin_namespace attribute, and plugin_version; it passes the node's attributes
// as PluginFields. At engine deserialization TensorRT passes the fields the plugin serialized.
#pragma once

#include <NvInferRuntime.h>

namespace vptq_trt {

class VPTQGemmCreator final : public nvinfer1::IPluginCreatorV3One {
 public:
  // Parses and validates the fields (vptq::validate, index_layout); returns nullptr after
  // logging "VPTQGemm node 'NAME': <problem>" when they are not a valid VPTQGemm v1 node.
  nvinfer1::IPluginV3* createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;
  const nvinfer1::PluginFieldCollection* getFieldNames() noexcept override;
  const char* getPluginName() const noexcept override;
  const char* getPluginVersion() const noexcept override;
  const char* getPluginNamespace() const noexcept override;
};

}  // namespace vptq_trt
