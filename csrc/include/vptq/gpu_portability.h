// vptq/gpu_portability.h: the one place where CUDA and HIP differ for the VPTQ kernels.
//
// The kernels in csrc/cuda/ include only this header for runtime, half/bfloat16 types, warp
// shuffles and BLAS, so the same .cu files compile with nvcc (CUDA) and hipcc (HIP, AMD).
// Warp width: device code reads VPTQ_WARP_SIZE (32 on NVIDIA, 64 on CDNA, 32 on RDNA wave32
// builds); nothing else in the kernels assumes 32.
#pragma once

#if defined(__HIPCC__) || defined(__HIP_PLATFORM_AMD__) || defined(USE_ROCM)
#define VPTQ_HIP 1
#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>
#include <hip/hip_bfloat16.h>
// BLAS (hipBLAS / cuBLAS) only where the build found it: VPTQ_WITH_BLAS=1.
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
#if __has_include(<hipblas/hipblas.h>)
#include <hipblas/hipblas.h>
#else
#include <hipblas.h>
#endif
#define VPTQ_HAS_BLAS 1
#else
#define VPTQ_HAS_BLAS 0
#endif

using gpuStream_t = hipStream_t;
using gpuError_t = hipError_t;
using gpu_half = __half;
using gpu_bfloat16 = hip_bfloat16;
#define gpuSuccess hipSuccess
#define gpuErrorInvalidValue hipErrorInvalidValue
#define gpuGetLastError hipGetLastError
#define gpuGetErrorString hipGetErrorString
#define gpuGetDevice hipGetDevice
#define gpuDeviceGetAttribute hipDeviceGetAttribute
#define gpuDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define gpuDevAttrComputeCapabilityMajor hipDeviceAttributeComputeCapabilityMajor
#define gpuDevAttrMaxSharedMemoryPerBlockOptin hipDeviceAttributeSharedMemPerBlockOptin
#define gpuFuncSetAttribute(f, attr, v) hipFuncSetAttribute((const void*)(f), attr, v)
#define gpuFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
#define gpuMemsetAsync hipMemsetAsync
#define gpuOccupancyMaxActiveBlocksPerMultiprocessor hipOccupancyMaxActiveBlocksPerMultiprocessor


// hip_bfloat16 converts through float explicitly.
__host__ __device__ inline float vptq_bf16_to_float(gpu_bfloat16 v) { return static_cast<float>(v); }
__host__ __device__ inline gpu_bfloat16 vptq_float_to_bf16(float f) { return gpu_bfloat16(f); }

// HIP shuffles take no mask; the full-wavefront forms are the portable subset we use.
#define VPTQ_SHFL_XOR(v, lane_mask) __shfl_xor((v), (lane_mask))
#define VPTQ_SYNCWARP() __syncthreads()  // only used where the whole block participates

#else  // CUDA
#define VPTQ_HIP 0
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
// cuBLAS only where the build found it: VPTQ_WITH_BLAS=1 (CI machines have nvcc, no cuBLAS).
#if defined(VPTQ_WITH_BLAS) && VPTQ_WITH_BLAS
#include <cublas_v2.h>
#define VPTQ_HAS_BLAS 1
#else
#define VPTQ_HAS_BLAS 0
#endif

using gpuStream_t = cudaStream_t;
using gpuError_t = cudaError_t;
using gpu_half = __half;
using gpu_bfloat16 = __nv_bfloat16;
#define gpuSuccess cudaSuccess
#define gpuErrorInvalidValue cudaErrorInvalidValue
#define gpuGetLastError cudaGetLastError
#define gpuGetErrorString cudaGetErrorString
#define gpuGetDevice cudaGetDevice
#define gpuDeviceGetAttribute cudaDeviceGetAttribute
#define gpuDevAttrMultiProcessorCount cudaDevAttrMultiProcessorCount
#define gpuDevAttrComputeCapabilityMajor cudaDevAttrComputeCapabilityMajor
#define gpuDevAttrMaxSharedMemoryPerBlockOptin cudaDevAttrMaxSharedMemoryPerBlockOptin
#define gpuFuncSetAttribute(f, attr, v) cudaFuncSetAttribute((f), attr, v)
#define gpuFuncAttributeMaxDynamicSharedMemorySize cudaFuncAttributeMaxDynamicSharedMemorySize
#define gpuMemsetAsync cudaMemsetAsync
#define gpuOccupancyMaxActiveBlocksPerMultiprocessor cudaOccupancyMaxActiveBlocksPerMultiprocessor

__host__ __device__ inline float vptq_bf16_to_float(gpu_bfloat16 v) { return __bfloat162float(v); }
__host__ __device__ inline gpu_bfloat16 vptq_float_to_bf16(float f) { return __float2bfloat16(f); }

#define VPTQ_SHFL_XOR(v, lane_mask) __shfl_xor_sync(0xffffffffu, (v), (lane_mask))
#define VPTQ_SYNCWARP() __syncwarp()
#endif

// Warp width as device code sees it. `warpSize` is a run-time value on both toolchains; HIP
// also defines __AMDGCN_WAVEFRONT_SIZE at compile time, which lets register arrays and
// shuffle loops be sized statically.
#if VPTQ_HIP
#if defined(__AMDGCN_WAVEFRONT_SIZE)
#define VPTQ_WARP_SIZE __AMDGCN_WAVEFRONT_SIZE
#else
#define VPTQ_WARP_SIZE 64
#endif
#else
#define VPTQ_WARP_SIZE 32
#endif

namespace vptq {
namespace gpu {

// Element conversions used by every kernel: storage type <-> fp32 accumulation.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(gpu_half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(gpu_bfloat16 v) { return vptq_bf16_to_float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ gpu_half from_float<gpu_half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ gpu_bfloat16 from_float<gpu_bfloat16>(float v) {
  return vptq_float_to_bf16(v);
}

// Sum of `v` over the warp (butterfly: every lane ends with the total, same order on every
// lane, so the result is deterministic).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = VPTQ_WARP_SIZE / 2; off > 0; off >>= 1) v += VPTQ_SHFL_XOR(v, off);
  return v;
}

}  // namespace gpu
}  // namespace vptq
