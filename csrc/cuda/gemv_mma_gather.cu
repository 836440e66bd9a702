// csrc/cuda/gemv_mma_gather.cu: host launchers of the tensor-core gather kernel
// (gemv_mma_gather.cuh) for fp16 and bf16, one per layout of VPTQ_GEMV_MMA_GATHER_LAYOUTS (main
// codebook gathered) and of VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS (main codebook staged; both in
// gemv_fast_table.h). CUDA only: under HIP this file compiles to nothing and dispatch.cu has no
// entries for it.
#include "gemv_fast_table.h"
#include "gemv_mma_gather.cuh"

#if !VPTQ_HIP
namespace vptq {
namespace gpu {

template <typename T, int V, int IB, int RB, int NT, bool SM>
gpuError_t launch_gemv_mma_gather(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  auto* kernel = mma_activation_variant(a, &gemv_mma_gather_kernel<T, true, true, V, IB, RB, NT, SM>,
                                        &gemv_mma_gather_kernel<T, true, false, V, IB, RB, NT, SM>,
                                        &gemv_mma_gather_kernel<T, false, false, V, IB, RB, NT, SM>);
  return launch_decode_kernel(kernel, kMmaThreads, kSmemDefaultBytes, a, smem_bytes, grid, stream);
}

template <typename T, int V, int IB, int RB, int NT, bool SM>
int gemv_mma_gather_blocks_per_sm(size_t smem_bytes) {
  return resident_blocks_per_sm(gemv_mma_gather_kernel<T, true, false, V, IB, RB, NT, SM>, kMmaThreads,
                                kSmemDefaultBytes, smem_bytes);
}

#define VPTQ_MMA_GATHER_INSTANTIATE_NT(T, V, IB, RB, NT, SM)                                                   \
  template gpuError_t launch_gemv_mma_gather<T, V, IB, RB, NT, SM>(const GemvArgs&, size_t, int, gpuStream_t); \
  template int gemv_mma_gather_blocks_per_sm<T, V, IB, RB, NT, SM>(size_t);
#define VPTQ_MMA_GATHER_INSTANTIATE(T, V, IB, RB, SM) \
  VPTQ_MMA_GATHER_INSTANTIATE_NT(T, V, IB, RB, 1, SM) VPTQ_MMA_GATHER_INSTANTIATE_NT(T, V, IB, RB, 2, SM)
#define VPTQ_MMA_GATHER_F16(V, IB, RB) VPTQ_MMA_GATHER_INSTANTIATE(gpu_half, V, IB, RB, false)
#define VPTQ_MMA_GATHER_BF16(V, IB, RB) VPTQ_MMA_GATHER_INSTANTIATE(gpu_bfloat16, V, IB, RB, false)
#define VPTQ_MMA_STAGE_MAIN_F16(V, IB, RB) VPTQ_MMA_GATHER_INSTANTIATE(gpu_half, V, IB, RB, true)
#define VPTQ_MMA_STAGE_MAIN_BF16(V, IB, RB) VPTQ_MMA_GATHER_INSTANTIATE(gpu_bfloat16, V, IB, RB, true)
VPTQ_GEMV_MMA_GATHER_LAYOUTS(VPTQ_MMA_GATHER_F16)
VPTQ_GEMV_MMA_GATHER_LAYOUTS(VPTQ_MMA_GATHER_BF16)
VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS(VPTQ_MMA_STAGE_MAIN_F16)
VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS(VPTQ_MMA_STAGE_MAIN_BF16)
#undef VPTQ_MMA_GATHER_F16
#undef VPTQ_MMA_GATHER_BF16
#undef VPTQ_MMA_STAGE_MAIN_F16
#undef VPTQ_MMA_STAGE_MAIN_BF16
#undef VPTQ_MMA_GATHER_INSTANTIATE
#undef VPTQ_MMA_GATHER_INSTANTIATE_NT

}  // namespace gpu
}  // namespace vptq
#endif
