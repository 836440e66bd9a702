// csrc/cuda/gemv_mma_gather.cu: host launchers of the tensor-core gather kernel
// (gemv_mma_gather.cuh: v8 with a 65536-row main codebook) for fp16 and bf16, without and with
// the 256-row residual. CUDA only: under HIP this file compiles to nothing and dispatch.cu has no
// entries for it.
#include "gemv_mma_gather.cuh"

#if !VPTQ_HIP
namespace vptq {
namespace gpu {

template <typename T, int RB>
gpuError_t launch_gemv_mma_gather(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  auto* kernel = mma_activation_variant(a, &gemv_mma_gather_kernel<T, true, true, RB>,
                                        &gemv_mma_gather_kernel<T, true, false, RB>,
                                        &gemv_mma_gather_kernel<T, false, false, RB>);
  return launch_decode_kernel(kernel, kMmaThreads, kSmemDefaultBytes, a, smem_bytes, grid, stream);
}

template <typename T, int RB>
int gemv_mma_gather_blocks_per_sm(size_t smem_bytes) {
  return decode_blocks_per_sm(gemv_mma_gather_kernel<T, true, false, RB>, kMmaThreads, kSmemDefaultBytes,
                              smem_bytes);
}

#define VPTQ_MMA_GATHER_INSTANTIATE(T, RB)                                                      \
  template gpuError_t launch_gemv_mma_gather<T, RB>(const GemvArgs&, size_t, int, gpuStream_t); \
  template int gemv_mma_gather_blocks_per_sm<T, RB>(size_t);
VPTQ_MMA_GATHER_INSTANTIATE(gpu_half, 0)
VPTQ_MMA_GATHER_INSTANTIATE(gpu_half, 8)
VPTQ_MMA_GATHER_INSTANTIATE(gpu_bfloat16, 0)
VPTQ_MMA_GATHER_INSTANTIATE(gpu_bfloat16, 8)
#undef VPTQ_MMA_GATHER_INSTANTIATE

}  // namespace gpu
}  // namespace vptq
#endif
