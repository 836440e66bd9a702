// plugins/tensorrt/plugin_library.cpp: the entry points of libvptq_trt.so as a dynamic plugin
// library (trtexec --dynamicPlugins, IPluginRegistry::loadLibrary, plugins serialized into
// version-compatible engines). The library never links libnvinfer: it uses only the headers'
// inline and virtual API, so one build serves TensorRT 10.x and TensorRT-RTX.
#include <NvInferRuntime.h>

#include "plugin_log.h"
#include "vptq_gemm_creator.h"

#define VPTQ_TRT_EXPORT __attribute__((visibility("default")))

extern "C" {

VPTQ_TRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept {
  vptq_trt::set_logger_finder(finder);
}

VPTQ_TRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) noexcept {
  static vptq_trt::VPTQGemmCreator gemm_creator;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&gemm_creator};
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}

}  // extern "C"
