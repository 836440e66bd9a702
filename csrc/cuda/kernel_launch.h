// csrc/cuda/kernel_launch.h: launch helpers shared by the launchers of every kernel that takes
// dynamic shared memory (decode kernels, the staged-codebook dequantizer): the opt-in above 48 KB
// and the resident blocks per multiprocessor.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

#include "vptq/gpu_portability.h"

namespace vptq {
namespace gpu {

// Above `opt_in_above` bytes (kSmemDefaultBytes less the kernel's static shared memory) dynamic
// shared memory needs the kernel's opt-in attribute.
constexpr size_t kSmemDefaultBytes = 48 * 1024;  // shared memory a block gets without opting in
// The attribute belongs to the kernel in the device's context, so it is set once per (kernel,
// device) and raised only when a launch needs more (a driver call on every launch cost ~1-2 µs of
// host time per VPTQGemm call). Assumes the context is not destroyed (cudaDeviceReset) while the
// process keeps using the library.
template <typename Kernel>
gpuError_t allow_dynamic_smem(Kernel* kernel, size_t smem_bytes, size_t opt_in_above) {
  if (smem_bytes <= opt_in_above) return gpuSuccess;
  int device = 0;
  gpuError_t e = gpuGetDevice(&device);
  if (e != gpuSuccess) return e;
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, size_t> opted_in;  // (kernel, device) -> bytes
  std::lock_guard<std::mutex> lock(mu);
  size_t& high_water = opted_in[{reinterpret_cast<const void*>(kernel), device}];
  if (high_water >= smem_bytes) return gpuSuccess;
  e = gpuFuncSetAttribute(kernel, gpuFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes));
  if (e == gpuSuccess) high_water = smem_bytes;
  return e;
}

// Resident blocks per multiprocessor at `smem_bytes` of dynamic shared memory (0: cannot run).
template <typename Kernel>
int resident_blocks_per_sm(Kernel* kernel, int threads, size_t opt_in_above, size_t smem_bytes) {
  if (allow_dynamic_smem(kernel, smem_bytes, opt_in_above) != gpuSuccess) return 0;
  int n = 0;
  if (gpuOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem_bytes) != gpuSuccess) return 0;
  return n;
}

}  // namespace gpu
}  // namespace vptq
