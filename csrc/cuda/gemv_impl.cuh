// csrc/cuda/gemv_impl.cuh: host launchers of the decode kernel and the macro that instantiates
// every variant of gemv_table.h for one element type (included by gemv_<dtype>.cu only).
#pragma once

#include "gemv.cuh"
#include "gemv_table.h"

namespace vptq {
namespace gpu {

template <typename T, int VT, int MB, int R, bool EXACT>
gpuError_t launch_gemv(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  auto* kernel = gemv_kernel<T, VT, MB, R, EXACT>;
  if (smem_bytes > 16 * 1024) {  // dynamic + static shared memory may pass the 48 KB default
    gpuError_t e = gpuFuncSetAttribute(kernel, gpuFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem_bytes));
    if (e != gpuSuccess) return e;
  }
  kernel<<<grid, kGemvThreads, smem_bytes, stream>>>(a);
  return gpuGetLastError();
}

template <typename T, int VT, int MB, int R, bool EXACT>
int gemv_blocks_per_sm(size_t smem_bytes) {
  auto* kernel = gemv_kernel<T, VT, MB, R, EXACT>;
  if (smem_bytes > 16 * 1024) {  // dynamic + static shared memory may pass the 48 KB default
    if (gpuFuncSetAttribute(kernel, gpuFuncAttributeMaxDynamicSharedMemorySize,
                            static_cast<int>(smem_bytes)) != gpuSuccess)
      return 0;
  }
  int n = 0;
  if (gpuOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kGemvThreads, smem_bytes) != gpuSuccess)
    return 0;
  return n;
}

}  // namespace gpu
}  // namespace vptq

#define VPTQ_GEMV_INSTANTIATE_ONE(T, VT, MB, R, EXACT)                                         \
  template gpuError_t vptq::gpu::launch_gemv<T, VT, MB, R, EXACT>(const vptq::gpu::GemvArgs&,   \
                                                                  size_t, int, gpuStream_t);    \
  template int vptq::gpu::gemv_blocks_per_sm<T, VT, MB, R, EXACT>(size_t);
