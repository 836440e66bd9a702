// plugins/tensorrt/plugin_log.h: where the plugin's messages go.
//
// TensorRT hands a dynamically loaded plugin library an ILoggerFinder (setLoggerFinder); each
// message goes to the logger of the builder / runtime that called the plugin method (findLogger
// must be called from that thread). Without a finder (a host that never called setLoggerFinder)
// errors and warnings go to stderr, so nothing is lost. No exception ever leaves these functions.
#pragma once

#include <NvInferRuntime.h>

#include <string>

namespace vptq_trt {

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;

void log(nvinfer1::ILogger::Severity severity, const char* message) noexcept;

// VPTQ_TRT_TRACE=1 in the environment: every plugin / creator method prints its name to stderr on
// entry (diagnosing which call a host was making when it failed; off by default).
void trace(const char* method) noexcept;
#define VPTQ_TRT_TRACE() ::vptq_trt::trace(__PRETTY_FUNCTION__)

inline void log_error(const std::string& message) noexcept {
  log(nvinfer1::ILogger::Severity::kERROR, message.c_str());
}
inline void log_warning(const std::string& message) noexcept {
  log(nvinfer1::ILogger::Severity::kWARNING, message.c_str());
}
inline void log_verbose(const std::string& message) noexcept {
  log(nvinfer1::ILogger::Severity::kVERBOSE, message.c_str());
}

}  // namespace vptq_trt
