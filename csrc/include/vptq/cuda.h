// vptq/cuda.h: CUDA (and HIP) entry points of VPTQGemm (implemented in csrc/cuda/).
// Include only from translation units compiled with the GPU toolchain or that link the GPU
// kernels; the types below avoid any CUDA header so that adapters stay light.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vptq/layer.h"

namespace vptq {

// Bytes of device workspace gemm_cuda needs for `m` rows (0 for the decode path).
size_t gemm_cuda_workspace_bytes(const LayerAttributes& a, DType dtype, int64_t m);

// Y[m, O] = X[m, I] · W^T (+ bias) on `stream` (a cudaStream_t / hipStream_t), all pointers on
// the device, X and Y row-major contiguous. `blas_handle` is a cublasHandle_t / hipblasHandle_t
// the caller owns (ORT's, or the plugin's); it may be null, and then the prefill path uses the
// library's own tiled kernel. Enqueues work only: never synchronizes, never allocates.
// Returns "" on success, else a message (launch error, workspace too small).
std::string gemm_cuda(const LayerAttributes& a, const LayerTensors& t, DType dtype, const void* x,
                      void* y, int64_t m, void* workspace, size_t workspace_bytes,
                      void* blas_handle, void* stream);

// Name of the kernel gemm_cuda would run for (a, dtype, m): for benchmarks and logs.
const char* gemm_cuda_kernel_name(const LayerAttributes& a, DType dtype, int64_t m);

// Host µs per launch of an empty kernel that takes the decode kernels' argument block, averaged
// over `launches` back-to-back launches on `stream` (benchmarks: the driver's share of
// gemm_cuda's per-call host time). Negative when a launch fails.
double gpu_empty_launch_host_us(void* stream, int launches);

}  // namespace vptq
