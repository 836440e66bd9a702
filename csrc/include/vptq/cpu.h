// vptq/cpu.h: CPU entry point of VPTQGemm (implemented in csrc/cpu/).
#pragma once

#include <cstdint>
#include <string>

#include "vptq/layer.h"

namespace vptq {

// Y[m, O] = X[m, I] · W^T (+ bias), W decoded from `t` as docs/op-spec.md defines; fp32
// accumulation; X and Y row-major and contiguous, of `dtype`; host pointers.
// `num_threads` <= 0 means "all hardware threads". Returns "" on success, else a message.
// Thread-safe: no state is kept between calls.
std::string gemm_cpu(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                     void* y, int64_t m, int num_threads);

}  // namespace vptq
