// csrc/cuda/gemv_impl.cuh: host launchers of the decode kernel and the macro that instantiates
// every variant of gemv_table.h for one element type (included by gemv_<dtype>.cu only).
#pragma once

#include "gemv.cuh"
#include "gemv_table.h"

namespace vptq {
namespace gpu {

// dynamic + static shared memory may pass the 48 KB default above 16 KB of dynamic
constexpr size_t kGemvSmemOptInAbove = 16 * 1024;

template <typename T, int VT, int MB, int R, bool EXACT>
gpuError_t launch_gemv(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  return launch_decode_kernel(gemv_kernel<T, VT, MB, R, EXACT>, kGemvThreads, kGemvSmemOptInAbove, a,
                              smem_bytes, grid, stream);
}

template <typename T, int VT, int MB, int R, bool EXACT>
int gemv_blocks_per_sm(size_t smem_bytes) {
  return resident_blocks_per_sm(gemv_kernel<T, VT, MB, R, EXACT>, kGemvThreads, kGemvSmemOptInAbove, smem_bytes);
}

}  // namespace gpu
}  // namespace vptq

#define VPTQ_GEMV_INSTANTIATE_ONE(T, VT, MB, R, EXACT)                                         \
  template gpuError_t vptq::gpu::launch_gemv<T, VT, MB, R, EXACT>(const vptq::gpu::GemvArgs&,   \
                                                                  size_t, int, gpuStream_t);    \
  template int vptq::gpu::gemv_blocks_per_sm<T, VT, MB, R, EXACT>(size_t);
