// vptq/cpu.h: CPU entry point of VPTQGemm (implemented in csrc/cpu/).
#pragma once

#include <cstddef>
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

// Runs gemm_cpu's parallel loops on a caller's thread pool (ONNX Runtime's intra-op pool through
// OrtApi::KernelContext_ParallelFor, for example). `run(ctx, fn, fn_ctx, n)` must call
// fn(fn_ctx, i) exactly once for every i in [0, n), in any order and on any threads, and return
// when all calls have finished. `concurrency` is how many of those calls may run at once (the
// work is split into a few tasks per unit of concurrency).
struct CpuExecutor {
  void (*run)(void* ctx, void (*fn)(void* fn_ctx, size_t i), void* fn_ctx, size_t n) = nullptr;
  void* ctx = nullptr;
  int concurrency = 1;
};

// gemm_cpu on `executor` (null `run`: the calling thread only). Same contract as above.
std::string gemm_cpu(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                     void* y, int64_t m, const CpuExecutor& executor);

}  // namespace vptq
