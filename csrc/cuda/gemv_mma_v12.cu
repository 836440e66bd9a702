// csrc/cuda/gemv_mma_v12.cu: host launchers of the v12-k4096-4096 tensor-core decode kernel
// (gemv_mma_v12.cuh) for fp16 and bf16. CUDA only: under HIP this file compiles to nothing and
// dispatch.cu has no entries for it.
#include "gemv_mma_v12.cuh"

#if !VPTQ_HIP
namespace vptq {
namespace gpu {

template <typename T, int NT>
gpuError_t launch_gemv_mma_v12(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  auto* kernel = mma_activation_variant(a, &gemv_mma_v12_kernel<T, true, true, NT>, &gemv_mma_v12_kernel<T, true, false, NT>,
                                        &gemv_mma_v12_kernel<T, false, false, NT>);
  return launch_decode_kernel(kernel, kV12Threads, kSmemDefaultBytes, a, smem_bytes, grid, stream);
}

template <typename T, int NT>
int gemv_mma_v12_blocks_per_sm(size_t smem_bytes) {
  return resident_blocks_per_sm(gemv_mma_v12_kernel<T, true, false, NT>, kV12Threads, kSmemDefaultBytes, smem_bytes);
}

#define VPTQ_MMA_V12_INSTANTIATE(T, NT)                                                           \
  template gpuError_t launch_gemv_mma_v12<T, NT>(const GemvArgs&, size_t, int, gpuStream_t); \
  template int gemv_mma_v12_blocks_per_sm<T, NT>(size_t);
VPTQ_MMA_V12_INSTANTIATE(gpu_half, 1)
VPTQ_MMA_V12_INSTANTIATE(gpu_half, 2)
VPTQ_MMA_V12_INSTANTIATE(gpu_bfloat16, 1)
VPTQ_MMA_V12_INSTANTIATE(gpu_bfloat16, 2)
#undef VPTQ_MMA_V12_INSTANTIATE

}  // namespace gpu
}  // namespace vptq
#endif
