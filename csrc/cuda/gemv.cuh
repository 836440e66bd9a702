// csrc/cuda/gemv.cuh: the fused decode kernel (M <= 8 rows of X): Y = X · W^T + bias with W
// decoded on the fly from the packed indices; W is never materialised.
//
// Layout and work split
//   tile        = R consecutive index rows r (outputs o = r*v .. r*v+v-1; R = 1 in the compiled
//                 table, see gemv_table.h) and, for the generic kernel, one slice of VT of the
//                 v vector components (slices = ceil(v / VT)).
//   block       = kGemvThreads threads; a block loops over tiles (tile += gridDim.x), so a
//                 persistent grid amortises staging the codebooks in shared memory.
//   thread      = codes c = tid, tid + blockDim, ... of every group g (the reduction
//                 dimension): reads its code from the packed row (one or two 32-bit words,
//                 coalesced across the warp because neighbouring lanes hold neighbouring codes),
//                 gathers the codebook row(s) (one 16-byte load for v = 8 fp16), multiplies by
//                 the activation x'[m, s] of its stored column s for each of the MB rows, and
//                 accumulates MB x VT fp32 sums in registers. Outlier columns (s < os) are a
//                 second, scalar loop over the same accumulators.
//   reduction   = warp reduce-scatter (N/2 + N/4 + ... shuffles for N accumulators), warp
//                 partials through shared memory summed in fixed warp order by one thread per
//                 output: deterministic, no atomics.
//   epilogue    = + row constant c[m] = sum_i X[m,i]*weight_bias[i] (norm folded into the
//                 activations: x'[m,s] = X[m,perm[s]]*weight_scale[perm[s]], computed by
//                 prep_activations), + bias[o], rounded once to T.
// Activations: M = 1 without perm / norm reads X directly; otherwise prep_activations writes x'
// as fp32 [I][MB] (all rows of one column adjacent: one 16-byte load per 4 rows per code).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_launch.h"
#include "layer_view.h"

namespace vptq {
namespace gpu {

constexpr int kGemvThreads = 256;      // threads per block of the decode kernel
constexpr int kGemvUnroll = 4;         // codes each thread keeps in flight per loop trip
constexpr int kGemvGenericSlice = 4;   // VT of the generic (any v) kernel

struct GemvArgs {
  LayerView L;
  const void* x = nullptr;             // X [m, I] of T (read when xs == null; mma kernel: x' hi)
  const void* x_lo = nullptr;          // mma kernel (gemv_mma.cuh): x' - hi as T [m, I], or null
  const float* xs = nullptr;           // x' [I][MB] fp32 (column-interleaved, stored column
                                       // order, rows >= m zero), or null (MB = 1 only: read X)
  const float* row_const_parts = nullptr;  // [m, nparts] partial sums of c[m], or null
  int row_const_nparts = 0;
  const void* bias = nullptr;          // [O] T or null
  void* y = nullptr;                   // [m, O] T
  int m = 0;                           // rows of X (<= MB)
  int slices = 1;                      // vector slices per index row
  int cb_in_smem = 0;                  // codebooks staged in dynamic shared memory
  int rows_per_tile = 1;               // fast kernel (gemv_fast.cuh): index rows per block tile
  int chunks_per_row = 1;              // fast kernel: warp items per index row (split-K)
  int units_per_item = 32;             // fast kernel: 32-code units per warp item
};

// Load VT codebook components starting at p into fp32. EXACT: the row has exactly VT elements
// and p is aligned to the widest access that divides the row's bytes (checked on the host).
template <typename T, int VT, bool EXACT>
__device__ __forceinline__ void load_row(const T* p, float (&out)[VT], int valid) {
  if constexpr (EXACT) {
    load_aligned_row<T, VT, 16>(p, out);
  } else {
#pragma unroll
    for (int i = 0; i < VT; ++i) out[i] = i < valid ? to_float(p[i]) : 0.f;
  }
}

template <typename T, int MB>
__device__ __forceinline__ void load_activations(const GemvArgs& a, int s, float (&xv)[MB]) {
  if constexpr (MB == 1) {
    xv[0] = a.xs ? a.xs[s] : to_float(static_cast<const T*>(a.x)[s]);
  } else {
    // all MB rows of column s in one (or two) vector loads; padding rows hold zeros
    const float* p = a.xs + static_cast<size_t>(s) * MB;
    if constexpr (MB % 4 == 0) {
#pragma unroll
      for (int i = 0; i < MB / 4; ++i) {
        const float4 v = reinterpret_cast<const float4*>(p)[i];
        xv[4 * i] = v.x; xv[4 * i + 1] = v.y; xv[4 * i + 2] = v.z; xv[4 * i + 3] = v.w;
      }
    } else if constexpr (MB == 2) {
      const float2 v = *reinterpret_cast<const float2*>(p);
      xv[0] = v.x; xv[1] = v.y;
    } else {
#pragma unroll
      for (int m = 0; m < MB; ++m) xv[m] = p[m];
    }
  }
}

// Sum each of N values over the warp and scatter the totals: afterwards lane l holds the totals
// of values [l*Q, l*Q + Q), Q = N / warp, in a[0..Q). N/2 + N/4 + ... shuffles instead of
// N * log2(warp); fixed order, so deterministic.
template <int NTOT, int N, int O>
__device__ __forceinline__ void reduce_scatter_step(float (&a)[NTOT], int lane) {
  if constexpr (O >= 1) {
    const bool upper = (lane & O) != 0;
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float send = upper ? a[i] : a[i + N / 2];
      const float keep = upper ? a[i + N / 2] : a[i];
      a[i] = keep + VPTQ_SHFL_XOR(send, O);
    }
    reduce_scatter_step<NTOT, N / 2, O / 2>(a, lane);  // compile-time indices only
  }
}

template <int N>
__device__ __forceinline__ void warp_reduce_scatter(float (&a)[N], int lane) {
  static_assert(N % VPTQ_WARP_SIZE == 0, "pad to a multiple of the warp size");
  reduce_scatter_step<N, N, VPTQ_WARP_SIZE / 2>(a, lane);
}

// Epilogue shared by every decode kernel: output row o of token m gets its reduced dot product,
// the per-token constant of the folded norm bias (summed over its parts) and the output bias.
template <typename T>
__device__ inline void store_output(const GemvArgs& a, int m, int o, float sum) {
  if (a.row_const_parts) {
    float c = 0.f;
    for (int p = 0; p < a.row_const_nparts; ++p) c += a.row_const_parts[m * a.row_const_nparts + p];
    sum += c;
  }
  if (a.bias) sum += to_float(static_cast<const T*>(a.bias)[o]);
  static_cast<T*>(a.y)[static_cast<size_t>(m) * a.L.out_features + o] = from_float<T>(sum);
}

template <typename T, int VT, int MB, int R, bool EXACT>
__global__ void __launch_bounds__(kGemvThreads) gemv_kernel(GemvArgs a) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  constexpr int kWarps = kGemvThreads / VPTQ_WARP_SIZE;
  constexpr int kVals = R * MB * VT;  // accumulators per thread
  constexpr int kPadded = (kVals + VPTQ_WARP_SIZE - 1) / VPTQ_WARP_SIZE * VPTQ_WARP_SIZE;
  constexpr int kPerLane = kPadded / VPTQ_WARP_SIZE;
  __shared__ float red[kWarps][kPadded];

  const LayerView& L = a.L;
  const int v = EXACT ? VT : L.v;
  const int gs = L.group_size;
  const T* cb = static_cast<const T*>(L.cb);
  const T* rcb = static_cast<const T*>(L.rcb);

  if (a.cb_in_smem) {
    // Stage every group's codebooks once per block: [G*k*v main | G*k_res*v residual].
    T* s_cb = reinterpret_cast<T*>(gemv_smem);
    const size_t n_main = static_cast<size_t>(L.groups) * L.k * v;
    const size_t n_res = rcb ? static_cast<size_t>(L.groups) * L.k_res * v : 0;
    for (size_t i = threadIdx.x; i < n_main; i += blockDim.x) s_cb[i] = cb[i];
    // residual starts 16-byte aligned
    const size_t res_off = (n_main * sizeof(T) + 15) / 16 * 16 / sizeof(T);
    for (size_t i = threadIdx.x; i < n_res; i += blockDim.x) s_cb[res_off + i] = rcb[i];
    __syncthreads();
    cb = s_cb;
    if (rcb) rcb = s_cb + res_off;
  }

  const int row_groups = (L.index_rows + R - 1) / R;
  const int tiles = row_groups * a.slices;
  const int warp = threadIdx.x / VPTQ_WARP_SIZE, lane = threadIdx.x % VPTQ_WARP_SIZE;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int rg = tile / a.slices;
    const int r0 = rg * R;
    const int j0 = (tile - rg * a.slices) * VT;
    const int valid = v - j0;  // components of this slice that exist (>= VT when EXACT)
    // rows past the end are clamped to the last row (computed, never written)
    int rows[R];
#pragma unroll
    for (int q = 0; q < R; ++q) rows[q] = min(r0 + q, L.index_rows - 1);

    float acc[kPadded];
#pragma unroll
    for (int i = 0; i < kPadded; ++i) acc[i] = 0.f;

    // ---- main (and residual) codebook part
    for (int g = 0; g < L.groups; ++g) {
      const uint32_t* prow[R];
#pragma unroll
      for (int q = 0; q < R; ++q)
        prow[q] = L.packed + (static_cast<size_t>(g) * L.index_rows + rows[q]) * L.words_per_row;
      const T* cbg = cb + static_cast<size_t>(g) * L.k * v + j0;
      const T* rcbg = rcb ? rcb + static_cast<size_t>(g) * L.k_res * v + j0 : nullptr;
      const int s_base = L.outlier_size + g * gs;
      const int step = blockDim.x;

      auto accumulate = [&](int c, const uint32_t (&code)[R]) {
        float xv[MB];
        load_activations<T, MB>(a, s_base + c, xv);
#pragma unroll
        for (int q = 0; q < R; ++q) {
          float w[VT];
          load_row<T, VT, EXACT>(cbg + static_cast<size_t>(code[q] & L.main_mask) * v, w, valid);
          if (rcbg) {
            float rw[VT];
            load_row<T, VT, EXACT>(rcbg + static_cast<size_t>(res_part(code[q], L)) * v, rw, valid);
#pragma unroll
            for (int j = 0; j < VT; ++j) w[j] += rw[j];
          }
#pragma unroll
          for (int m = 0; m < MB; ++m)
#pragma unroll
            for (int j = 0; j < VT; ++j)
              acc[(q * MB + m) * VT + j] = fmaf(xv[m], w[j], acc[(q * MB + m) * VT + j]);
        }
      };

      int c0 = threadIdx.x;
      // full trips: kGemvUnroll codes x R rows per thread, all index words loaded first
      for (; c0 + (kGemvUnroll - 1) * step < gs; c0 += kGemvUnroll * step) {
        uint32_t code[kGemvUnroll][R];
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u)
#pragma unroll
          for (int q = 0; q < R; ++q) code[u][q] = read_code32(prow[q], c0 + u * step, L);
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) accumulate(c0 + u * step, code[u]);
      }
      for (; c0 < gs; c0 += step) {
        uint32_t code[R];
#pragma unroll
        for (int q = 0; q < R; ++q) code[q] = read_code32(prow[q], c0, L);
        accumulate(c0, code);
      }
    }

    // ---- outlier columns s < os: W[o, s] = ocb[oidx[o / v_o, s], o % v_o]
    if (L.outlier_size > 0) {
      const T* ocb = static_cast<const T*>(L.ocb);
      for (int s = threadIdx.x; s < L.outlier_size; s += blockDim.x) {
        float xv[MB];
        load_activations<T, MB>(a, s, xv);
#pragma unroll
        for (int q = 0; q < R; ++q)
#pragma unroll
          for (int j = 0; j < VT; ++j) {
            const int o = (r0 + q) * v + j0 + j;
            if (j < valid && o < L.out_features) {
              const int ro = o / L.v_o, jo = o - ro * L.v_o;
              const uint32_t e = static_cast<uint32_t>(L.oidx[static_cast<size_t>(ro) * L.outlier_size + s]) &
                                 static_cast<uint32_t>(L.k_o - 1);
              const float w = to_float(ocb[static_cast<size_t>(e) * L.v_o + jo]);
#pragma unroll
              for (int m = 0; m < MB; ++m) acc[(q * MB + m) * VT + j] = fmaf(xv[m], w, acc[(q * MB + m) * VT + j]);
            }
          }
      }
    }

    // ---- deterministic block reduction and epilogue
    warp_reduce_scatter<kPadded>(acc, lane);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) red[warp][lane * kPerLane + i] = acc[i];
    __syncthreads();
    for (int t = threadIdx.x; t < kVals; t += blockDim.x) {
      const int q = t / (MB * VT), m = (t / VT) % MB, j = t % VT;
      const int o = (r0 + q) * v + j0 + j;
      if (m < a.m && j < valid && r0 + q < L.index_rows && o < L.out_features) {
        float sum = 0.f;
        for (int w = 0; w < kWarps; ++w) sum += red[w][t];
        store_output<T>(a, m, o, sum);
      }
    }
    __syncthreads();
  }
}

// Host launcher (explicitly instantiated per dtype in gemv_<dtype>.cu).
template <typename T, int VT, int MB, int R, bool EXACT>
gpuError_t launch_gemv(const GemvArgs& a, size_t smem_bytes, int grid, gpuStream_t stream);

template <typename T, int VT, int MB, int R, bool EXACT>
int gemv_blocks_per_sm(size_t smem_bytes);

// Launch helper shared by the launchers of every decode kernel (generic, fast, mma; the shared
// memory opt-in: kernel_launch.h).
template <typename Kernel>
gpuError_t launch_decode_kernel(Kernel* kernel, int threads, size_t opt_in_above, const GemvArgs& a,
                                size_t smem_bytes, int grid, gpuStream_t stream) {
  const gpuError_t e = allow_dynamic_smem(kernel, smem_bytes, opt_in_above);
  if (e != gpuSuccess) return e;
  kernel<<<grid, threads, smem_bytes, stream>>>(a);
  return gpuGetLastError();
}

}  // namespace gpu
}  // namespace vptq
