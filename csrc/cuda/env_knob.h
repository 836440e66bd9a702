// csrc/cuda/env_knob.h: integer environment variables that override a tuning choice of the CUDA
// kernels for A/B runs and sweeps (VPTQ_GEMV_MMA, VPTQ_GEMV_MMA_MIN_M, VPTQ_GEMV_MMA_PAIRS,
// VPTQ_GEMV_MMA_SPLIT, VPTQ_GEMV_MMA_GATHER_MIN_M, VPTQ_GEMV_FAST, VPTQ_GEMV_FAST_SPLIT,
// VPTQ_GEMV_CHUNKED_MAX_M, VPTQ_PREFILL_CHUNK_MB, VPTQ_DEQUANT_TILES).
// Callers read each once per process (a function-local static).
#pragma once

#include <cstdlib>

namespace vptq {
namespace gpu {

// The leading integer of environment variable `name`, or `fallback` when it is unset or does not
// start with a number.
inline long env_knob(const char* name, long fallback) {
  const char* e = std::getenv(name);
  if (!e) return fallback;
  char* end = nullptr;
  const long v = std::strtol(e, &end, 10);
  return end == e ? fallback : v;
}

}  // namespace gpu
}  // namespace vptq
