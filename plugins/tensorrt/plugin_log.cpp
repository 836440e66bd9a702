// plugins/tensorrt/plugin_log.cpp: see plugin_log.h.
#include "plugin_log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace vptq_trt {
namespace {
std::atomic<nvinfer1::ILoggerFinder*> g_finder{nullptr};
}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_finder.store(finder); }

void trace(const char* method) noexcept {
  static const bool enabled = [] {
    const char* v = std::getenv("VPTQ_TRT_TRACE");
    return v && *v && *v != '0';
  }();
  if (enabled) std::fprintf(stderr, "[vptq_trt trace] %s\n", method);
}

void log(nvinfer1::ILogger::Severity severity, const char* message) noexcept {
  nvinfer1::ILoggerFinder* finder = g_finder.load();
  nvinfer1::ILogger* logger = nullptr;
  if (finder) {
    try {
      logger = finder->findLogger();
    } catch (...) {
      logger = nullptr;
    }
  }
  if (logger) {
    logger->log(severity, message);
    return;
  }
  if (severity <= nvinfer1::ILogger::Severity::kWARNING) {
    std::fprintf(stderr, "[vptq_trt] %s: %s\n",
                 severity == nvinfer1::ILogger::Severity::kWARNING ? "warning" : "error", message);
  }
}

}  // namespace vptq_trt
