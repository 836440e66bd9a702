// plugins/tensorrt/vptq_gemm_creator.cpp: see vptq_gemm_creator.h.
#include "vptq_gemm_creator.h"

#include <string>
#include <vector>

#include "plugin_fields.h"
#include "plugin_log.h"
#include "vptq_gemm_plugin.h"

namespace vptq_trt {

nvinfer1::IPluginV3* VPTQGemmCreator::createPlugin(const char* name, const nvinfer1::PluginFieldCollection* fc,
                                                   nvinfer1::TensorRTPhase phase) noexcept {
  VPTQ_TRT_TRACE();
  const std::string node = name ? name : "";
  try {
    const std::string where = std::string(kPluginName) + " node '" + node + "': ";
    PluginConfig cfg;
    std::vector<std::string> warnings;
    std::string err = parse_fields(fc, cfg, warnings);
    for (const std::string& w : warnings) log_warning(where + w);
    if (err.empty()) err = vptq::validate(cfg.attrs);
    if (err.empty()) err = vptq::validate_index_layout(cfg.index_layout);
    if (!err.empty()) {
      log_error(where + err + (phase == nvinfer1::TensorRTPhase::kRUNTIME
                                   ? " (while deserializing an engine)"
                                   : ""));
      return nullptr;
    }
    return new VPTQGemmPlugin(node, cfg);
  } catch (...) {
    log(nvinfer1::ILogger::Severity::kERROR, "VPTQGemm: createPlugin failed (out of memory)");
    return nullptr;
  }
}

const nvinfer1::PluginFieldCollection* VPTQGemmCreator::getFieldNames() noexcept {
  VPTQ_TRT_TRACE();
  return advertised_fields();
}
const char* VPTQGemmCreator::getPluginName() const noexcept {
  VPTQ_TRT_TRACE();
  return kPluginName;
}
const char* VPTQGemmCreator::getPluginVersion() const noexcept {
  VPTQ_TRT_TRACE();
  return kPluginVersion;
}
const char* VPTQGemmCreator::getPluginNamespace() const noexcept {
  VPTQ_TRT_TRACE();
  return kPluginNamespace;
}

}  // namespace vptq_trt
