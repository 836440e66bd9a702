// benchmarks/dsmem_gather.cu: can a k = 65536 codebook (1 MiB of 16-byte v8 fp16 rows) be gathered
// faster from the distributed shared memory of a thread-block cluster than from L2?
// Random 16-byte gathers (xorshift codes, one per thread per iteration, 8 in flight per thread),
// one 512-thread block per SM, 8-block clusters:
//   (a) own shared memory, 8192 entries (128 KB) — the local rate for comparison;
//   (b) cluster DSMEM: the 1 MiB table as 8 x 128 KB slices, entry e read from block e >> 13 of the
//       cluster (cooperative_groups map_shared_rank);
//   (c) the same 1 MiB table from global memory (L2-resident after the first launch).
// Build and run on the GPU host (sm_90):
//   nvcc -arch=sm_90 -O3 -std=c++17 -o /tmp/dsmem_gather benchmarks/dsmem_gather.cu && /tmp/dsmem_gather
// Results: docs/kernels.md (k = 65536 paragraph).
#include <cooperative_groups.h>
#include <cstdio>
#include <cstdint>
namespace cg = cooperative_groups;
constexpr int kSliceEntries = 8192;  // 128 KB of 16-byte entries per CTA
constexpr int kIters = 4096;

template <int MODE>
__global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(512, 1) gather(const uint4* g, uint4* out) {
  extern __shared__ uint4 slice[];
  cg::cluster_group cluster = cg::this_cluster();
  for (int i = threadIdx.x; i < kSliceEntries; i += blockDim.x) slice[i] = g[cluster.block_rank() * kSliceEntries + i];
  cluster.sync();
  uint32_t r = 0x9E3779B9u * (blockIdx.x * blockDim.x + threadIdx.x + 1);
  uint4 acc = make_uint4(0, 0, 0, 0);
#pragma unroll 8
  for (int it = 0; it < kIters; ++it) {
    r ^= r << 13; r ^= r >> 17; r ^= r << 5;
    const uint32_t e = r & 65535u;
    uint4 v;
    if (MODE == 0) v = slice[e & (kSliceEntries - 1)];
    else if (MODE == 1) {
      const uint4* base = cluster.map_shared_rank(slice, e >> 13);
      v = base[e & (kSliceEntries - 1)];
    } else v = __ldg(g + e);
    acc.x ^= v.x; acc.y += v.y; acc.z ^= v.z; acc.w += v.w;
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
  cluster.sync();  // keep slices alive until every remote read is done
}

int main() {
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int blocks = sms / 8 * 8, threads = 512;
  uint4 *g, *out;
  cudaMalloc(&g, 65536 * 16); cudaMemset(g, 1, 65536 * 16);
  cudaMalloc(&out, (size_t)blocks * threads * 16);
  const size_t smem = kSliceEntries * 16;
  auto run = [&](auto kern, const char* name) {
    cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    kern<<<blocks, threads, smem>>>(g, out);
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    cudaEventRecord(a);
    for (int i = 0; i < 5; ++i) kern<<<blocks, threads, smem>>>(g, out);
    cudaEventRecord(b); cudaEventSynchronize(b);
    float ms; cudaEventElapsedTime(&ms, a, b);
    const double lookups = 5.0 * blocks * threads * kIters;
    printf("%-28s %s  %8.1f G lookups/s (%.3f ms per launch)\n", name, cudaGetErrorString(cudaGetLastError()), lookups / (ms * 1e-3) / 1e9, ms / 5);
  };
  run(gather<0>, "own shared memory (8192)");
  run(gather<1>, "cluster DSMEM (65536)");
  run(gather<2>, "global/L2 (65536)");
  return 0;
}
