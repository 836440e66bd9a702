// csrc/cuda/gemv_mma.cuh: the tensor-core decode kernel (M <= 8) for v = 8 with both codebooks of
// at most 256 rows (v8-k256-256: index bits IB = 8, residual bits RB = 8), fp16 / bf16, CUDA
// sm_80+ only (HIP and older archs keep gemv_fast.cuh; dispatch.cu decides).
//
// Why: the CUDA-core kernels spend ~30 instructions per code (decode, 16-byte gather, packed add,
// 8 conversions, 8 FFMA per activation row). Here the gather IS the operand load: ldmatrix takes
// one shared-memory row address per lane, so 32 lanes gather 32 codebook rows (16 bytes, the 8
// outputs of one code) and .trans hands them out already in the mma A-fragment layout; one
// mma.m16n8k16 (fp32 accumulation) then does 16 lookups x 8 outputs x 8 activation rows.
//
// One mma = 2 index rows (r0, r1: the 16 A rows = outputs r0*8 + j, r1*8 + j) x 16 k-slots
// (8 codes x {main, residual}); B = the activations of the 8 codes (rows n = activation row m,
// the residual k-slots repeat the main ones), so main + residual are summed by the mma in fp32
// (exact products, nothing rounded to T before the accumulation).
//
// Layout and work split
//   step        = 32 consecutive columns (one 32-code unit = 16 packed words) of 2 index rows:
//                 4 mma. Code slot i of mma b is column 8*(i/2) + 2b + i%2, so lane (g, t) of
//                 the B fragment needs columns 8t .. 8t + 7 of activation row g: one 16-byte load
//                 for all 4 mma, word b for mma b.
//   address lane= lane 8q + i supplies row i of matrix q of ldmatrix.x4: index row r0 + (q & 1),
//                 codebook q / 2 (main, residual), code slot i; its 4 codes (one per mma) are in
//                 the 16 bytes at word 4*(i/2) of the unit, byte 2*(i%2) + q/2 of word b, so the
//                 lane loads one uint4 per step and decodes each code with one byte_perm.
//   codebooks   = staged once per block in shared memory as 8 interleaved copies (entry c, copy
//                 i at 16-byte slot 8c + i); address lane i reads copy i, so each 8-row matrix of
//                 an ldmatrix hits 8 distinct 16-byte bank groups: conflict-free.
//   warp item   = one index-row pair x U steps (U a multiple of 4: the index words of 4 steps are
//                 loaded together, the next 4 steps' words before the current ones are used).
//   block       = 256 threads; tile = RT row pairs x S items (split-K), items w, w + 8, ... per
//                 warp; each item's D fragment (16 outputs x 8 rows, fp32) goes to shared memory,
//                 one thread per output sums the S items in order (deterministic, no atomics)
//                 and applies the epilogue (row constant, bias, rounding to T once).
//   activations = T, row-major [m][I] (rows >= m read as zero): X itself when there is no perm /
//                 norm; otherwise prep_activations writes x' = X[perm] * scale split into
//                 hi = T(x') and lo = T(x' - hi) (a.x, a.x_lo) and every mma runs twice (hi, lo),
//                 so x' keeps ~2x the mantissa of T (fp16: 22 bits).
#pragma once

#include <cstdint>

#include "gemv.cuh"
#include "gemv_fast.cuh"

namespace vptq {
namespace gpu {

constexpr int kMmaThreads = 256;
constexpr int kMmaStepCols = 32;    // columns per step (one 32-code unit)
constexpr int kMmaChunk = 4;        // steps whose index words are loaded together
constexpr int kMmaItemFloats = 128; // D fragment of one warp item: 16 outputs x 8 rows
constexpr int kMmaMaxRows = 8;      // activation rows (the mma's n)

// Dynamic shared memory: both codebooks (8 copies of 16-byte rows) + the items' D fragments.
inline size_t mma_smem_bytes(int groups, int ib, int rb, int items) {
  return static_cast<size_t>(groups) * ((size_t{1} << ib) + (size_t{1} << rb)) * 16 * kFastCopies +
         static_cast<size_t>(items) * kMmaItemFloats * sizeof(float);
}

#if !VPTQ_HIP
// 8 consecutive T (16 bytes) as 4 words: one vector load when aligned, else element loads.
template <typename T>
__device__ __forceinline__ uint4 mma_load_x8(const T* p, bool vec) {
  if (vec) return *reinterpret_cast<const uint4*>(p);
  const unsigned short* h = reinterpret_cast<const unsigned short*>(p);
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(h[2 * i]) | (static_cast<uint32_t>(h[2 * i + 1]) << 16);
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <typename T>
struct MmaOp;
template <>
struct MmaOp<gpu_half> {
  __device__ static __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b), "r"(b));
#endif
  }
};
template <>
struct MmaOp<gpu_bfloat16> {
  __device__ static __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b), "r"(b));
#endif
  }
};

// Four 8x8 b16 matrices, transposed: lane 8q + i gives the address of row i of matrix q.
__device__ __forceinline__ void mma_ldsm_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  // not volatile: the 4 gathers of a step are issued before its mma (distinct registers); the
  // addresses depend on index words loaded after the staging barrier, so it cannot move above it
  asm("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#else
  r[0] = r[1] = r[2] = r[3] = addr;
#endif
}

template <typename T>
__global__ void __launch_bounds__(kMmaThreads, 2) gemv_mma_kernel(GemvArgs a) {
  extern __shared__ __align__(16) unsigned char mma_smem[];
  constexpr int kWarps = kMmaThreads / 32;
  constexpr int kRows = 256;  // entries per codebook (IB = RB = 8)
  constexpr int kEntryBytes = 16 * kFastCopies;
  const LayerView& L = a.L;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  // ---- stage main then residual codebooks, 8 interleaved copies
  const int n_cb = L.groups * kRows * kFastCopies;  // 16-byte slots per codebook
  {
    // 8 loads in flight per thread and codebook before the stores (one L2 round trip per 8 slots)
    constexpr int kBatch = 8;
    uint4* s = reinterpret_cast<uint4*>(mma_smem);
    const uint4* gm = static_cast<const uint4*>(L.cb);
    const uint4* gr = static_cast<const uint4*>(L.rcb);
    for (int i0 = 0; i0 < n_cb; i0 += kMmaThreads * kBatch) {
      uint4 vm[kBatch], vr[kBatch];
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const int i = i0 + k * kMmaThreads + static_cast<int>(threadIdx.x);
        if (i < n_cb) { vm[k] = gm[i / kFastCopies]; vr[k] = gr[i / kFastCopies]; }
      }
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const int i = i0 + k * kMmaThreads + static_cast<int>(threadIdx.x);
        if (i < n_cb) { s[i] = vm[k]; s[n_cb + i] = vr[k]; }
      }
    }
  }
  float* part = reinterpret_cast<float*>(mma_smem + static_cast<size_t>(2 * n_cb) * 16);
  __syncthreads();

  // ---- address role (ldmatrix row) and fragment role (B / D) of this lane
  const int q = lane >> 3, i8 = lane & 7;
  const int arow = q & 1;  // index row of the pair
  const int acb = q >> 1;  // 0 main, 1 residual
  const uint32_t sel = 0x4440u | static_cast<uint32_t>(2 * (i8 & 1) + acb);  // byte -> byte 0
  const uint32_t lane_cb = static_cast<uint32_t>(__cvta_generic_to_shared(mma_smem)) +
                           static_cast<uint32_t>(acb * n_cb * 16 + i8 * 16);
  const int word_off = 4 * (i8 >> 1);
  const int fg = lane >> 2, ft = lane & 3;

  const int I = L.in_features;
  const bool x_live = fg < a.m;
  const T* xh = static_cast<const T*>(a.x) + static_cast<size_t>(x_live ? fg : 0) * I + 8 * ft;
  const T* xl = a.x_lo ? static_cast<const T*>(a.x_lo) + static_cast<size_t>(x_live ? fg : 0) * I + 8 * ft
                       : nullptr;
  const bool hilo = xl != nullptr;
  const bool x_vec = (reinterpret_cast<uintptr_t>(a.x) & 15u) == 0;  // prepared buffers always are

  const int upg = L.group_size / kMmaStepCols;  // units per group
  const int upr = upg * L.groups;                // units per index row
  const int S = a.chunks_per_row, U = a.units_per_item, RT = a.rows_per_tile;
  const int items = RT * S;
  const int pairs = (L.index_rows + 1) / 2;
  const int tiles = (pairs + RT - 1) / RT;
  const int W = L.words_per_row;

  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    for (int it = warp; it < items; it += kWarps) {
      const int rr = it / S, qq = it - rr * S;
      const int rp = tile * RT + rr;
      // two accumulator sets (mma b into d[b % 2]): halves the dependent-mma chain; summed in
      // fixed order after the item
      float d[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
      const int ubeg = qq * U, uend = min(ubeg + U, upr);
      if (rp < pairs && ubeg < uend) {
        const int r = min(2 * rp + arow, L.index_rows - 1);
        // index words of unit u for this lane's row: 16 bytes at word 4 * (i8 / 2)
        auto idx_ptr = [&](int u) {
          const int g = u / upg, uu = u - g * upg;
          return reinterpret_cast<const uint4*>(L.packed + (static_cast<size_t>(g) * L.index_rows + r) * W +
                                                uu * 16 + word_off);
        };
        uint4 w[kMmaChunk], xw[kMmaChunk];
        auto load = [&](int u0, uint4 (&wi)[kMmaChunk], uint4 (&xi)[kMmaChunk]) {
#pragma unroll
          for (int s = 0; s < kMmaChunk; ++s) {
            const int u = u0 + s;
            wi[s] = u < uend ? *idx_ptr(u) : make_uint4(0, 0, 0, 0);
            xi[s] = (x_live && u < uend) ? mma_load_x8(xh + u * kMmaStepCols, x_vec) : make_uint4(0, 0, 0, 0);
          }
        };
        load(ubeg, w, xw);
        for (int u0 = ubeg; u0 < uend; u0 += kMmaChunk) {
          uint4 wn[kMmaChunk], xn[kMmaChunk];
          if (u0 + kMmaChunk < uend) load(u0 + kMmaChunk, wn, xn);
          uint4 xlw[kMmaChunk];
          if (hilo) {
#pragma unroll
            for (int s = 0; s < kMmaChunk; ++s)
              xlw[s] = (x_live && u0 + s < uend) ? *reinterpret_cast<const uint4*>(xl + (u0 + s) * kMmaStepCols)
                                                 : make_uint4(0, 0, 0, 0);
          }
#pragma unroll
          for (int s = 0; s < kMmaChunk; ++s) {
            const int u = u0 + s;
            if (u < uend) {  // warp-uniform
              const uint32_t cbase = lane_cb + static_cast<uint32_t>((u / upg) * kRows * kEntryBytes);
              const uint32_t wv[4] = {w[s].x, w[s].y, w[s].z, w[s].w};
              const uint32_t xv[4] = {xw[s].x, xw[s].y, xw[s].z, xw[s].w};
              uint32_t af[4][4];
#pragma unroll
              for (int b = 0; b < 4; ++b) mma_ldsm_x4_trans(cbase + __byte_perm(wv[b], 0u, sel) * kEntryBytes, af[b]);
#pragma unroll
              for (int b = 0; b < 4; ++b) MmaOp<T>::run(d[b & 1], af[b], xv[b]);
              if (hilo) {
                const uint32_t lv[4] = {xlw[s].x, xlw[s].y, xlw[s].z, xlw[s].w};
#pragma unroll
                for (int b = 0; b < 4; ++b) MmaOp<T>::run(d[b & 1], af[b], lv[b]);
              }
            }
          }
#pragma unroll
          for (int s = 0; s < kMmaChunk; ++s) { w[s] = wn[s]; xw[s] = xn[s]; }
        }
      }
      // D fragment of lane (g, t): (row pair output g, act row 2t, 2t+1), (output g + 8, ...)
#pragma unroll
      for (int c = 0; c < 4; ++c) part[it * kMmaItemFloats + lane * 4 + c] = d[0][c] + d[1][c];
    }
    __syncthreads();
    // ---- one thread per (row pair, output 0..15, activation row): S items in order, epilogue
    for (int t = threadIdx.x; t < RT * kMmaItemFloats; t += blockDim.x) {
      const int rr = t / kMmaItemFloats, rem = t - rr * kMmaItemFloats;
      const int ol = rem / kMmaMaxRows, m = rem - ol * kMmaMaxRows;
      const int r = 2 * (tile * RT + rr) + (ol >> 3), o = r * 8 + (ol & 7);
      if (m < a.m && r < L.index_rows && o < L.out_features) {
        const int slot = ((ol & 7) * 4 + (m >> 1)) * 4 + (ol >> 3) * 2 + (m & 1);
        float sum = 0.f;
        for (int qq = 0; qq < S; ++qq) sum += part[(rr * S + qq) * kMmaItemFloats + slot];
        store_output<T>(a, m, o, sum);
      }
    }
    __syncthreads();
  }
}
#endif  // !VPTQ_HIP

// Host launchers (gemv_mma.cu; CUDA only).
template <typename T>
gpuError_t launch_gemv_mma(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream);

template <typename T>
int gemv_mma_blocks_per_sm(size_t smem_bytes);

}  // namespace gpu
}  // namespace vptq
