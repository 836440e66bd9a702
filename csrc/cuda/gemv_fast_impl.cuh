// csrc/cuda/gemv_fast_impl.cuh: host launchers of the specialised decode kernel and the macro
// that instantiates the variants of gemv_fast_table.h (included by gemv_fast_<dtype>_m<MB>.cu).
#pragma once

#include "gemv_fast.cuh"
#include "gemv_fast_table.h"

namespace vptq {
namespace gpu {

template <typename T, int V, int IB, int RB, int MB>
gpuError_t launch_gemv_fast(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  return launch_decode_kernel(gemv_fast_kernel<T, V, IB, RB, MB>, kFastThreads, kSmemDefaultBytes, a, smem_bytes,
                              grid, stream);
}

template <typename T, int V, int IB, int RB, int MB>
int gemv_fast_blocks_per_sm(size_t smem_bytes) {
  return resident_blocks_per_sm(gemv_fast_kernel<T, V, IB, RB, MB>, kFastThreads, kSmemDefaultBytes, smem_bytes);
}

}  // namespace gpu
}  // namespace vptq

#define VPTQ_GEMV_FAST_INSTANTIATE_ONE(T, V, IB, RB, MB)                                          \
  template gpuError_t vptq::gpu::launch_gemv_fast<T, V, IB, RB, MB>(const vptq::gpu::GemvArgs&,   \
                                                                    size_t, int, gpuStream_t);    \
  template int vptq::gpu::gemv_fast_blocks_per_sm<T, V, IB, RB, MB>(size_t);
