// csrc/cuda/gemv_mma.cu: host launchers of the tensor-core decode kernel (gemv_mma.cuh) for fp16
// and bf16. CUDA only: under HIP this file compiles to nothing and dispatch.cu has no mma entries.
#include "gemv_mma.cuh"

#if !VPTQ_HIP
namespace vptq {
namespace gpu {

template <typename T, int IB, int RB, int P, int NT, int W, int V>
gpuError_t launch_gemv_mma(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  auto* kernel = mma_activation_variant(a, &gemv_mma_kernel<T, true, true, P, NT, IB, RB, W, V>,
                                        &gemv_mma_kernel<T, true, false, P, NT, IB, RB, W, V>,
                                        &gemv_mma_kernel<T, false, false, P, NT, IB, RB, W, V>);
  return launch_decode_kernel(kernel, W * 32, kSmemDefaultBytes, a, smem_bytes, grid, stream);
}

// Resident blocks per SM (the variants share __launch_bounds__ and shared memory).
template <typename T, int IB, int RB, int P, int NT, int W, int V>
int gemv_mma_blocks_per_sm(size_t smem_bytes) {
  return resident_blocks_per_sm(gemv_mma_kernel<T, true, false, P, NT, IB, RB, W, V>, W * 32, kSmemDefaultBytes,
                                smem_bytes);
}

#define VPTQ_MMA_INSTANTIATE_VW(T, IB, RB, P, NT, W, V)                                                         \
  template gpuError_t launch_gemv_mma<T, IB, RB, P, NT, W, V>(const GemvArgs&, size_t, int, gpuStream_t); \
  template int gemv_mma_blocks_per_sm<T, IB, RB, P, NT, W, V>(size_t);
#define VPTQ_MMA_INSTANTIATE_W(T, IB, RB, P, NT, W) VPTQ_MMA_INSTANTIATE_VW(T, IB, RB, P, NT, W, 8)
#define VPTQ_MMA_INSTANTIATE(T, IB, RB, P, NT) VPTQ_MMA_INSTANTIATE_W(T, IB, RB, P, NT, mma_warps_of(IB))
// IB = 8 (v8-k256-256): (P, NT) = (1, 1), (2, 1), (1, 2): P = 2 with two n-tiles spills (72-272-byte
// stack frames, ptxas, sm_90). IB = 12 (v8-k4096-256, RB = 8; v8-k4096, RB = 0) and IB = 13
// (v8-k8192-256, 16 warps): P = 1.
VPTQ_MMA_INSTANTIATE(gpu_half, 8, 8, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_half, 8, 8, 2, 1)
VPTQ_MMA_INSTANTIATE(gpu_half, 8, 8, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 8, 8, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 8, 8, 2, 1)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 8, 8, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_half, 12, 8, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_half, 12, 8, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 12, 8, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 12, 8, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_half, 12, 0, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_half, 12, 0, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 12, 0, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 12, 0, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_half, 13, 8, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_half, 13, 8, 1, 2)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 13, 8, 1, 1)
VPTQ_MMA_INSTANTIATE(gpu_bfloat16, 13, 8, 1, 2)
// IB = 12 as one block of 16 warps per SM (the ",W=16" entries; VPTQ_GEMV_MMA_WIDE_WARPS)
VPTQ_MMA_INSTANTIATE_W(gpu_half, 12, 8, 1, 1, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_half, 12, 8, 1, 2, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_bfloat16, 12, 8, 1, 1, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_bfloat16, 12, 8, 1, 2, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_half, 12, 0, 1, 1, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_half, 12, 0, 1, 2, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_bfloat16, 12, 0, 1, 1, 16)
VPTQ_MMA_INSTANTIATE_W(gpu_bfloat16, 12, 0, 1, 2, 16)
// v6-k4096 (12-byte codebook entries padded to 16 in shared memory): 8 warps
VPTQ_MMA_INSTANTIATE_VW(gpu_half, 12, 0, 1, 1, 8, 6)
VPTQ_MMA_INSTANTIATE_VW(gpu_half, 12, 0, 1, 2, 8, 6)
VPTQ_MMA_INSTANTIATE_VW(gpu_bfloat16, 12, 0, 1, 1, 8, 6)
VPTQ_MMA_INSTANTIATE_VW(gpu_bfloat16, 12, 0, 1, 2, 8, 6)
#undef VPTQ_MMA_INSTANTIATE
#undef VPTQ_MMA_INSTANTIATE_W
#undef VPTQ_MMA_INSTANTIATE_VW

}  // namespace gpu
}  // namespace vptq
#endif
