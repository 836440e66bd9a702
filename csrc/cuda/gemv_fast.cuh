// csrc/cuda/gemv_fast.cuh: the specialised decode kernel (M <= 8) for the common VPTQ
// configurations: fp16 / bf16, vector_len V, index bits IB and residual bits RB known at compile
// time (gemv_fast_table.h lists them), no outlier columns, group_size a multiple of 32.
//
// Layout and work split
//   unit        = 32 consecutive codes of one (group, index row): exactly TB = IB + RB packed
//                 words (32 * TB bits), loaded by one lane with 16-byte (TB % 4 == 0), 8-byte
//                 or 4-byte vector loads; adjacent lanes hold adjacent units, so a warp reads
//                 32 * TB * 4 contiguous bytes of the index stream.
//   warp item   = 32 units (one per lane) of one index row: up to 1024 codes of the reduction
//                 dimension. A row has S = ceil(G * gs / 1024) items (split-K).
//   lane        = decodes its 32 codes from registers with compile-time shifts (a code that
//                 straddles two words is known at compile time), gathers the main (+ residual)
//                 codebook rows (16 bytes for V = 8), adds main + residual in packed half /
//                 bfloat16 arithmetic, converts to fp32 and accumulates V x MB fp32 sums with the
//                 activations of its 32 columns (M = 1 without perm / norm: 4 x 16-byte loads of
//                 X; otherwise fp32 x' [I][MB] from prep_activations).
//   codebooks   = k <= 256 with 16-byte rows: staged once per block in shared memory as 8
//                 interleaved copies (entry c, copy i at 16-byte slot 8c + i; lane l reads copy
//                 l % 8, so the 8 lanes of each quarter-warp phase hit 8 distinct bank groups:
//                 conflict-free); larger codebooks are read through L1 / L2 (global loads).
//   block       = 256 threads; tile = RT index rows = RT * S warp items (RT chosen on the host so
//                 that RT * S is a multiple of the warps per block when possible); warps take
//                 items w, w + 8, ...; after each item the warp folds its V * MB sums
//                 (reduce-scatter, fixed order) into shared memory part[item][..]; after the
//                 tile one thread per output sums the S partials in item order (deterministic,
//                 no atomics) and applies the epilogue (row constant, bias, rounding to T).
//   grid        = persistent (min(tiles, SMs x blocks per SM)) when codebooks are staged in
//                 shared memory, one block per tile otherwise.
#pragma once

#include <cstdint>

#include "gemv.cuh"

namespace vptq {
namespace gpu {

constexpr int kFastThreads = 256;
constexpr int kFastUnitCodes = 32;  // codes per lane per warp item
constexpr int kFastCopies = 8;      // shared-memory codebook copies (bank groups of 16 bytes)

// Host and device: does a codebook of 2^bits rows of row_bytes go to shared memory (8 copies)?
constexpr bool fast_cb_in_smem(int bits, int row_bytes) { return bits > 0 && bits <= 8 && row_bytes == 16; }

constexpr int fast_pow2_ceil(int n) { return n <= 1 ? 1 : 2 * fast_pow2_ceil((n + 1) / 2); }

// accumulators per lane (V * MB rounded up to a power of two) -> shared floats per warp item
constexpr int fast_acc_padded(int v, int mb) { return fast_pow2_ceil(v * mb); }

// Codebook row (V elements of T) as V/2 packed 32-bit words.
template <int NW, bool SMEM>
__device__ __forceinline__ void fast_load_row(const unsigned char* base, uint32_t idx, int copy,
                                              uint32_t (&w)[NW]) {
  constexpr int kBytes = NW * 4;
  if constexpr (SMEM) {
    static_assert(kBytes == 16, "shared-memory codebooks hold 16-byte rows");
    const uint4 v = reinterpret_cast<const uint4*>(base)[idx * kFastCopies + copy];
    w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
  } else if constexpr (kBytes % 16 == 0) {
#pragma unroll
    for (int i = 0; i < kBytes / 16; ++i) {
      const uint4 v = reinterpret_cast<const uint4*>(base)[idx * (kBytes / 16) + i];
      w[4 * i] = v.x; w[4 * i + 1] = v.y; w[4 * i + 2] = v.z; w[4 * i + 3] = v.w;
    }
  } else if constexpr (kBytes % 8 == 0) {
#pragma unroll
    for (int i = 0; i < kBytes / 8; ++i) {
      const uint2 v = reinterpret_cast<const uint2*>(base)[idx * (kBytes / 8) + i];
      w[2 * i] = v.x; w[2 * i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < NW; ++i) w[i] = reinterpret_cast<const uint32_t*>(base)[idx * NW + i];
  }
}

// Two packed elements -> two floats.
template <typename T>
__device__ __forceinline__ float2 fast_unpack(uint32_t w);
template <>
__device__ __forceinline__ float2 fast_unpack<gpu_half>(uint32_t w) {
  __half2 h;
  static_assert(sizeof(h) == 4, "half2 is 4 bytes");
  memcpy(&h, &w, 4);
  return __half22float2(h);
}
template <>
__device__ __forceinline__ float2 fast_unpack<gpu_bfloat16>(uint32_t w) {
  // bfloat16 is the high half of a float: exact on every toolchain
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
}

// main + residual, element-wise, in the element type (packed add) where the toolchain has it;
// returns the words to unpack. HIP bfloat16 has no packed add: RES_F32 is set and the caller adds
// in fp32 instead.
template <typename T>
struct FastPackedAdd {
  static constexpr bool kAvailable = false;
  __device__ static uint32_t add(uint32_t a, uint32_t) { return a; }
};
template <>
struct FastPackedAdd<gpu_half> {
  static constexpr bool kAvailable = true;
  __device__ static uint32_t add(uint32_t a, uint32_t b) {
    __half2 x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    const __half2 s = __hadd2(x, y);
    uint32_t r;
    memcpy(&r, &s, 4);
    return r;
  }
};
#if !VPTQ_HIP
template <>
struct FastPackedAdd<gpu_bfloat16> {
  static constexpr bool kAvailable = true;
  __device__ static uint32_t add(uint32_t a, uint32_t b) {
    __nv_bfloat162 x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    const __nv_bfloat162 s = __hadd2(x, y);
    uint32_t r;
    memcpy(&r, &s, 4);
    return r;
  }
};
#endif

// Fold NP values over the warp (reduce-scatter while more than one value is left, butterfly
// after): fixed order, deterministic. Afterwards lane holds values [fast_fold_base, +max(1,
// NP/warp)).
template <int NP, int N, int O>
__device__ __forceinline__ void fast_fold(float (&a)[NP], int lane) {
  if constexpr (O >= 1) {
    if constexpr (N > 1) {
      const bool upper = (lane & O) != 0;
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        const float send = upper ? a[i] : a[i + N / 2];
        const float keep = upper ? a[i + N / 2] : a[i];
        a[i] = keep + VPTQ_SHFL_XOR(send, O);
      }
      fast_fold<NP, N / 2, O / 2>(a, lane);
    } else {
      a[0] += VPTQ_SHFL_XOR(a[0], O);
      fast_fold<NP, 1, O / 2>(a, lane);
    }
  }
}

template <int NP>
__device__ __forceinline__ int fast_fold_base(int lane) {
  int base = 0, n = NP;
#pragma unroll
  for (int o = VPTQ_WARP_SIZE / 2; o >= 1; o >>= 1) {
    if (n > 1) {
      if (lane & o) base += n / 2;
      n >>= 1;
    }
  }
  return base;
}

// Blocks per SM the register budget is set for: 2 (128 registers), except V = 16: its 16
// accumulators next to the 32-code index words spilled 108 bytes at 128 registers, so 1 block
// (254 registers, no spills; H100, M = 1: 0.94-0.97x the time on 8B up / down and 70B shapes,
// 0.85x on 8B kv, 1.01-1.04x on 8B q/o and qkv). V = 12 spills 12 bytes at 128 registers and was measured
// slower with 1 block (1.01-1.07x), so it keeps 2.
// One function of V for the kernel and the host (fast_geometry's resident blocks); one argument,
// because a comma inside __launch_bounds__ splits HIP's macro arguments.
__host__ __device__ constexpr int fast_min_blocks(int v) { return v == 16 ? 1 : 2; }

template <typename T, int V, int IB, int RB, int MB>
__global__ void __launch_bounds__(kFastThreads, fast_min_blocks(V)) gemv_fast_kernel(GemvArgs a) {
  constexpr int TB = IB + RB;
  constexpr bool kRes = RB > 0;
  constexpr int kRowBytes = V * static_cast<int>(sizeof(T));
  constexpr int kRowWords = kRowBytes / 4;
  constexpr bool kSmemMain = fast_cb_in_smem(IB, kRowBytes);
  constexpr bool kSmemRes = kRes && fast_cb_in_smem(RB, kRowBytes);
  constexpr int kWarps = kFastThreads / VPTQ_WARP_SIZE;
  constexpr int kAcc = V * MB;
  constexpr int kAccP = fast_acc_padded(V, MB);
  constexpr int kVecWords = TB % 4 == 0 ? 4 : TB % 2 == 0 ? 2 : 1;
  constexpr bool kPackedAdd = FastPackedAdd<T>::kAvailable;
  static_assert(V % 2 == 0 && kRowBytes % 4 == 0, "rows of whole 32-bit words");
  static_assert(TB >= 1 && TB <= 32, "code width");
  extern __shared__ __align__(16) unsigned char fast_smem[];

  const LayerView& L = a.L;
  const int warp = threadIdx.x / VPTQ_WARP_SIZE, lane = threadIdx.x % VPTQ_WARP_SIZE;
  const int copy = lane % kFastCopies;
  constexpr int k_main = 1 << IB;
  constexpr int k_res = kRes ? 1 << RB : 0;

  // ---- stage the small codebooks (8 interleaved copies), then the partial-sum area
  unsigned char* smem = fast_smem;
  const unsigned char* cb_main = static_cast<const unsigned char*>(L.cb);
  const unsigned char* cb_res = static_cast<const unsigned char*>(L.rcb);
  size_t smem_off = 0;
  if constexpr (kSmemMain) {
    uint4* s = reinterpret_cast<uint4*>(smem);
    const uint4* gsrc = static_cast<const uint4*>(L.cb);
    const int n = L.groups * k_main * kFastCopies;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = gsrc[i / kFastCopies];
    cb_main = smem;
    smem_off += static_cast<size_t>(n) * 16;
  }
  if constexpr (kSmemRes) {
    uint4* s = reinterpret_cast<uint4*>(smem + smem_off);
    const uint4* gsrc = static_cast<const uint4*>(L.rcb);
    const int n = L.groups * k_res * kFastCopies;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = gsrc[i / kFastCopies];
    cb_res = smem + smem_off;
    smem_off += static_cast<size_t>(n) * 16;
  }
  float* part = reinterpret_cast<float*>(smem + smem_off);
  // (the first __syncthreads of the tile loop orders the staging before any gather)
  if constexpr (kSmemMain || kSmemRes) __syncthreads();

  const int gs = L.group_size;
  const int upg = gs / kFastUnitCodes;       // units per group
  const int upr = upg * L.groups;            // units per index row
  const int S = a.chunks_per_row;            // warp items per row (split-K)
  const int U = a.units_per_item;            // units per warp item (a multiple of 32)
  const int RT = a.rows_per_tile;
  const int items = RT * S;
  const int tiles = (L.index_rows + RT - 1) / RT;
  const size_t main_group_bytes = static_cast<size_t>(k_main) * (kSmemMain ? 16 * kFastCopies : kRowBytes);
  const size_t res_group_bytes = static_cast<size_t>(k_res) * (kSmemRes ? 16 * kFastCopies : kRowBytes);
  const T* xg = static_cast<const T*>(a.x);
  const bool x_vec = a.xs == nullptr && aligned_to(xg, 16);

  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int r0 = tile * RT;
    for (int it = warp; it < items; it += kWarps) {
      const int rr = it / S, q = it - rr * S;
      const int r = r0 + rr;
      float acc[kAccP];
#pragma unroll
      for (int i = 0; i < kAccP; ++i) acc[i] = 0.f;
      // units [q*U, min(q*U + U, upr)) of row r; lane takes u = q*U + lane + warp*i; the next
      // unit's index words are loaded before the current unit is computed (software pipeline)
      const int ubeg = q * U + lane, uend = min(q * U + U, upr);
      auto load_words = [&](int u, uint32_t (&w)[TB]) {
        // ---- the unit's TB packed words
        const int g = u / upg, uu = u - g * upg;
        const uint32_t* wp = L.packed + (static_cast<size_t>(g) * L.index_rows + r) * L.words_per_row +
                             static_cast<size_t>(uu) * TB;
        if constexpr (kVecWords == 4) {
#pragma unroll
          for (int i = 0; i < TB / 4; ++i) {
            const uint4 v4 = reinterpret_cast<const uint4*>(wp)[i];
            w[4 * i] = v4.x; w[4 * i + 1] = v4.y; w[4 * i + 2] = v4.z; w[4 * i + 3] = v4.w;
          }
        } else if constexpr (kVecWords == 2) {
#pragma unroll
          for (int i = 0; i < TB / 2; ++i) {
            const uint2 v2 = reinterpret_cast<const uint2*>(wp)[i];
            w[2 * i] = v2.x; w[2 * i + 1] = v2.y;
          }
        } else {
#pragma unroll
          for (int i = 0; i < TB; ++i) w[i] = wp[i];
        }
      };
      if (r < L.index_rows && ubeg < uend) {
        uint32_t w[TB];
        load_words(ubeg, w);
        for (int u = ubeg; u < uend; u += VPTQ_WARP_SIZE) {
          uint32_t wn[TB];
          if (u + VPTQ_WARP_SIZE < uend) load_words(u + VPTQ_WARP_SIZE, wn);
          const int g = u / upg, uu = u - g * upg;
        const int s0 = g * gs + uu * kFastUnitCodes;  // stored column of code 0 (no outliers)
        // ---- M = 1 activations of the 32 columns
        float x1[MB == 1 ? kFastUnitCodes : 1];
        if constexpr (MB == 1) {
          if (x_vec) {
#pragma unroll
            for (int i = 0; i < kFastUnitCodes * 2 / 16; ++i) {
              const uint4 v4 = reinterpret_cast<const uint4*>(xg + s0)[i];
              const uint32_t e[4] = {v4.x, v4.y, v4.z, v4.w};
#pragma unroll
              for (int j = 0; j < 4; ++j) {
                const float2 f = fast_unpack<T>(e[j]);
                x1[8 * i + 2 * j] = f.x;
                x1[8 * i + 2 * j + 1] = f.y;
              }
            }
          } else if (a.xs) {
#pragma unroll
            for (int i = 0; i < kFastUnitCodes / 4; ++i) {
              const float4 f = reinterpret_cast<const float4*>(a.xs + s0)[i];
              x1[4 * i] = f.x; x1[4 * i + 1] = f.y; x1[4 * i + 2] = f.z; x1[4 * i + 3] = f.w;
            }
          } else {
#pragma unroll
            for (int i = 0; i < kFastUnitCodes; ++i) x1[i] = to_float(xg[s0 + i]);
          }
        }
        const unsigned char* cbm = cb_main + g * main_group_bytes;
        const unsigned char* cbr = kRes ? cb_res + g * res_group_bytes : nullptr;
        // ---- 32 codes, all shifts and word indices compile-time
#pragma unroll
        for (int c = 0; c < kFastUnitCodes; ++c) {
          const int bit = c * TB, wi = bit / 32, sh = bit % 32;
          uint32_t code = w[wi] >> sh;
          if (sh + TB > 32 && wi + 1 < TB) code |= w[wi + 1] << (32 - sh);
          const uint32_t mi = code & static_cast<uint32_t>(k_main - 1);
          uint32_t rw[kRowWords];
          fast_load_row<kRowWords, kSmemMain>(cbm, mi, copy, rw);
          float wf[V];
          if constexpr (kRes) {
            const uint32_t ri = (code >> IB) & static_cast<uint32_t>(k_res - 1);
            uint32_t rr2[kRowWords];
            fast_load_row<kRowWords, kSmemRes>(cbr, ri, copy, rr2);
            if constexpr (kPackedAdd) {
#pragma unroll
              for (int i = 0; i < kRowWords; ++i) {
                const float2 f = fast_unpack<T>(FastPackedAdd<T>::add(rw[i], rr2[i]));
                wf[2 * i] = f.x; wf[2 * i + 1] = f.y;
              }
            } else {
#pragma unroll
              for (int i = 0; i < kRowWords; ++i) {
                const float2 f = fast_unpack<T>(rw[i]), h = fast_unpack<T>(rr2[i]);
                wf[2 * i] = f.x + h.x; wf[2 * i + 1] = f.y + h.y;
              }
            }
          } else {
#pragma unroll
            for (int i = 0; i < kRowWords; ++i) {
              const float2 f = fast_unpack<T>(rw[i]);
              wf[2 * i] = f.x; wf[2 * i + 1] = f.y;
            }
          }
          float xv[MB];
          if constexpr (MB == 1) {
            xv[0] = x1[c];
          } else {
            load_activations<T, MB>(a, s0 + c, xv);
          }
#pragma unroll
          for (int m = 0; m < MB; ++m)
#pragma unroll
            for (int j = 0; j < V; ++j) acc[m * V + j] = fmaf(xv[m], wf[j], acc[m * V + j]);
        }
#pragma unroll
          for (int i = 0; i < TB; ++i) w[i] = wn[i];
        }
      }
      // ---- fold the warp's sums into part[it][0..kAccP)
      fast_fold<kAccP, kAccP, VPTQ_WARP_SIZE / 2>(acc, lane);
      constexpr int kPerLane = kAccP >= VPTQ_WARP_SIZE ? kAccP / VPTQ_WARP_SIZE : 1;
      constexpr int kSame = kAccP >= VPTQ_WARP_SIZE ? 1 : VPTQ_WARP_SIZE / kAccP;  // lanes holding one value
      if (lane % kSame == 0) {
        const int base = fast_fold_base<kAccP>(lane);
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) part[it * kAccP + base + i] = acc[i];
      }
    }
    __syncthreads();
    // ---- one thread per output: sum the S partials in item order, epilogue
    for (int t = threadIdx.x; t < RT * kAcc; t += blockDim.x) {
      const int rr = t / kAcc, rem = t - rr * kAcc, m = rem / V, j = rem - m * V;
      const int r = r0 + rr, o = r * V + j;
      if (m < a.m && r < L.index_rows && o < L.out_features) {
        float sum = 0.f;
        for (int q = 0; q < S; ++q) sum += part[(rr * S + q) * kAccP + rem];
        store_output<T>(a, m, o, sum);
      }
    }
    __syncthreads();
  }
}

// Dynamic shared memory of a fast kernel (host and device agree through fast_cb_in_smem).
inline size_t fast_smem_bytes(int v, int elem_bytes, int ib, int rb, int mb, int groups, int items) {
  size_t n = 0;
  const int row = v * elem_bytes;
  if (fast_cb_in_smem(ib, row)) n += static_cast<size_t>(groups) * (size_t{1} << ib) * 16 * kFastCopies;
  if (rb > 0 && fast_cb_in_smem(rb, row)) n += static_cast<size_t>(groups) * (size_t{1} << rb) * 16 * kFastCopies;
  n += static_cast<size_t>(items) * fast_acc_padded(v, mb) * sizeof(float);
  return n;
}

// Host launchers (explicitly instantiated per dtype and MB in gemv_fast_<dtype>_m<MB>.cu).
template <typename T, int V, int IB, int RB, int MB>
gpuError_t launch_gemv_fast(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream);

template <typename T, int V, int IB, int RB, int MB>
int gemv_fast_blocks_per_sm(size_t smem_bytes);

}  // namespace gpu
}  // namespace vptq
