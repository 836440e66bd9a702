// csrc/cuda/gemv_mma.cu: host launchers of the tensor-core decode kernel (gemv_mma.cuh) for fp16
// and bf16. CUDA only: under HIP this file compiles to nothing and dispatch.cu has no mma entries.
#include "gemv_mma.cuh"

#if !VPTQ_HIP
namespace vptq {
namespace gpu {
namespace {

template <typename Kernel>
gpuError_t launch_mma_kernel(Kernel* kernel, const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  if (smem_bytes > 48 * 1024) {
    gpuError_t e = gpuFuncSetAttribute(kernel, gpuFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem_bytes));
    if (e != gpuSuccess) return e;
  }
  kernel<<<grid, kMmaThreads, smem_bytes, stream>>>(a);
  return gpuGetLastError();
}

}  // namespace

// Variant by activations: hi / lo (prepared workspace buffers, aligned), X aligned to 16 bytes
// (vector loads) or not (element loads).
template <typename T>
gpuError_t launch_gemv_mma(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream) {
  if (a.x_lo) return launch_mma_kernel(gemv_mma_kernel<T, true, true, kMmaStages>, a, smem_bytes, grid, stream);
  if ((reinterpret_cast<uintptr_t>(a.x) & 15u) == 0)
    return launch_mma_kernel(gemv_mma_kernel<T, true, false, kMmaStages>, a, smem_bytes, grid, stream);
  return launch_mma_kernel(gemv_mma_kernel<T, false, false, kMmaStages>, a, smem_bytes, grid, stream);
}

// Resident blocks per SM (the variants share __launch_bounds__ and shared memory).
template <typename T>
int gemv_mma_blocks_per_sm(size_t smem_bytes) {
  auto* kernel = gemv_mma_kernel<T, true, false, kMmaStages>;
  if (smem_bytes > 48 * 1024 &&
      gpuFuncSetAttribute(kernel, gpuFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes)) !=
          gpuSuccess)
    return 0;
  int n = 0;
  if (gpuOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kMmaThreads, smem_bytes) != gpuSuccess) return 0;
  return n;
}

template gpuError_t launch_gemv_mma<gpu_half>(const GemvArgs&, size_t, int, gpuStream_t);
template gpuError_t launch_gemv_mma<gpu_bfloat16>(const GemvArgs&, size_t, int, gpuStream_t);
template int gemv_mma_blocks_per_sm<gpu_half>(size_t);
template int gemv_mma_blocks_per_sm<gpu_bfloat16>(size_t);

}  // namespace gpu
}  // namespace vptq
#endif
