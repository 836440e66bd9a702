// csrc/cuda/prefill.cu: the kernels of the prefill path and the activation prep shared with the
// decode path.
//
// prep_activations  grid (parts, M), kPrepThreads threads. Block (p, m) handles columns
//                   [p*kPrepColumnsPerBlock, ...) of row m: thread t writes xs[m, s] =
//                   X[m, perm[s]] * scale[perm[s]] for s = t, t + blockDim, ... (perm folded
//                   into the activations, so the weights are read in stored order), and sums
//                   X[m, i] * weight_bias[i] over the same original columns; the block's sum
//                   (fixed-order tree in shared memory: deterministic) is parts[m, p]. The row
//                   constant c[m] = sum_p parts[m, p] is added in the GEMV / GEMM epilogue:
//                   x·(Ws*scale + bias) = (x*scale)·Ws + x·bias.
// dequant_tiles     the fast dequantizer (V in VPTQ_DEQUANT_TILE_VECTOR_LENS, gs, os, I multiples of 8,
//                   codebooks aligned to their row size). Work item = 256 consecutive 8-code
//                   tiles of one index row; a 1-D grid of one wave of resident blocks, block b
//                   takes items b, b + gridDim.x, ... Thread t of an item decodes the 8
//                   consecutive codes q = 8*tile ... 8*tile + 7 of index row r (one group: gs %
//                   8 == 0), gathers their main (+ residual) rows with the widest aligned vector
//                   loads, sums in fp32 and writes the 8 x V tile as V 16-byte row segments
//                   Ws[r*v + j, os + q ...] (8 columns of T; fp32: two 16-byte stores): a warp
//                   writes 512 contiguous bytes of each output row, the "transpose" is register
//                   naming only (the V x 8 tile lives in registers, at most 8 rows at a time).
//                   The index words of the thread's next item are loaded before the current
//                   item's gathers. No 64-bit division.
// dequant_rows      the generic dequantizer: 1-D grid-stride over (index row r, stored code q =
//                   g*gs + c): one thread decodes one code and writes its v weights
//                   Ws[r*v + j, os + q] (fp32 sum of main + residual centroid, rounded once to
//                   T); neighbouring threads write neighbouring columns (coalesced). Outlier
//                   columns: one thread per (o, s).
// tiled_gemm        fallback GEMM when no BLAS handle is given: 64x64 output tile per block of
//                   256 threads, 16-deep k slices staged in shared memory as fp32, 4x4 outputs
//                   per thread, fused epilogue (+ c[m] + bias, rounded once to T).
// epilogue          after cuBLAS wrote fp32: Y = T(C + c[m] + bias[o]), one thread per output.
#include "prefill.h"

#include <algorithm>
#include <cstdint>

#include "env_knob.h"
#include "kernel_launch.h"

namespace vptq {
namespace gpu {
namespace {

constexpr int kDequantThreads = 256;
constexpr int kEpilogueThreads = 256;
constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kTileThreads = 256;
constexpr int kMaxGrid = 65535 * 16;  // grid-stride kernels cap their 1-D grid here

template <typename T, typename OutT>
__global__ void __launch_bounds__(kPrepThreads)
    prep_activations_kernel(const T* __restrict__ x, const int32_t* __restrict__ perm,
                            const T* __restrict__ scale, const T* __restrict__ wbias,
                            OutT* __restrict__ xs, int decode_mb, float* __restrict__ parts,
                            int rows, int in_features) {
  __shared__ float red[kPrepThreads];
  const int p = blockIdx.x, m = blockIdx.y;
  const bool live = m < rows;  // rows m >= M exist only as zero padding of the decode layout
  const int begin = p * kPrepColumnsPerBlock;
  const int end = min(in_features, begin + kPrepColumnsPerBlock);
  const size_t row = static_cast<size_t>(m) * in_features;
  float c = 0.f;
  for (int s = begin + threadIdx.x; s < end; s += blockDim.x) {
    float xv = 0.f;
    if (live) {
      int src = s;
      if (perm) {
        src = perm[s];
        if (static_cast<unsigned>(src) >= static_cast<unsigned>(in_features)) src = 0;  // UB input
      }
      xv = to_float(x[row + src]);
      if (scale) xv *= to_float(scale[src]);
      if (wbias) c = fmaf(to_float(x[row + s]), to_float(wbias[s]), c);
    }
    if (decode_mb > 0) {
      xs[static_cast<size_t>(s) * decode_mb + m] = from_float<OutT>(xv);
    } else if (decode_mb < 0) {
      // hi / lo split for the tensor-core decode kernel: hi = T(x'), lo = T(x' - hi)
      const OutT hi = from_float<OutT>(xv);
      xs[row + s] = hi;
      xs[static_cast<size_t>(rows) * in_features + row + s] = from_float<OutT>(xv - to_float(hi));
    } else {
      xs[row + s] = from_float<OutT>(xv);
    }
  }
  if (!parts) return;
  red[threadIdx.x] = c;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) parts[static_cast<size_t>(m) * gridDim.x + p] = red[0];
}

template <typename T>
__global__ void __launch_bounds__(kDequantThreads)
    dequant_rows_kernel(LayerView L, T* __restrict__ ws, int row0, int rows, int r_begin,
                        int n_rows_idx) {
  const int codes = L.groups * L.group_size;
  const int64_t total = static_cast<int64_t>(n_rows_idx) * codes;
  const T* cb = static_cast<const T*>(L.cb);
  const T* rcb = static_cast<const T*>(L.rcb);
  const int v = L.v;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int r = r_begin + static_cast<int>(t / codes);
    const int q = static_cast<int>(t % codes);
    const int g = q / L.group_size, c = q - g * L.group_size;
    const uint32_t* prow = L.packed + (static_cast<size_t>(g) * L.index_rows + r) * L.words_per_row;
    const uint32_t code = read_code(prow, c, L.bits);
    const T* crow = cb + (static_cast<size_t>(g) * L.k + (code & L.main_mask)) * v;
    const T* rrow = rcb ? rcb + (static_cast<size_t>(g) * L.k_res + res_part(code, L)) * v : nullptr;
    for (int j = 0; j < v; ++j) {
      const int o = r * v + j;
      if (o < row0 || o >= row0 + rows || o >= L.out_features) continue;
      float w = to_float(crow[j]);
      if (rrow) w += to_float(rrow[j]);
      ws[static_cast<size_t>(o - row0) * L.in_features + L.outlier_size + q] = from_float<T>(w);
    }
  }
}

// ---- dequant_tiles: see the file comment
constexpr int kTileCodes = 8;  // codes per thread = columns of one 16-byte store (16-bit T)
// Resident blocks of dequant_tiles per multiprocessor the registers must allow: 3 (<= 80
// registers) for V <= 8, 2 (<= 128) for V = 12 / 16, whose codes stay live across two 8-row slabs
// (3 blocks: 264-560 bytes of spill stores).
__host__ __device__ constexpr int dequant_tile_min_blocks(int v) { return v > 8 ? 2 : 3; }
// The vector lengths dequant_tiles is compiled for (X-macro: instantiation and dispatch).
#define VPTQ_DEQUANT_TILE_VECTOR_LENS(X) X(2) X(4) X(6) X(8) X(12) X(16)

// Stores 8 consecutive T (16-byte aligned) as 16-byte words.
template <typename T>
__device__ __forceinline__ void store8(T* __restrict__ dst, const T (&vals)[kTileCodes]) {
  static_assert(kTileCodes * sizeof(T) % 16 == 0, "a tile row is whole 16-byte words");
  constexpr int kWords = kTileCodes * static_cast<int>(sizeof(T)) / 16;
  const uint4* src = reinterpret_cast<const uint4*>(vals);
#pragma unroll
  for (int i = 0; i < kWords; ++i) reinterpret_cast<uint4*>(dst)[i] = src[i];
}

// Rows J0 ... J0 + N - 1 of the 8-code tile: gather, sum in fp32, round once to T (the tile is
// kept as T: 8 x N halves = 32 registers for N = 8), store one 8-column segment per row.
template <typename T, int V, int J0, int N>
__device__ __forceinline__ void dequant_tile_rows(const T* __restrict__ cb, const T* __restrict__ rcb,
                                                  const uint32_t (&codes)[kTileCodes], const LayerView& L,
                                                  T* __restrict__ out, int64_t ld, int first_row, int row_end) {
  constexpr int kRowBytes = V * static_cast<int>(sizeof(T));
  // alignment of row J0 of an entry: entries are kRowBytes apart from a base aligned to that
  constexpr int kAlign = J0 == 0 ? lowest_bit(kRowBytes)
                                 : min_int(lowest_bit(kRowBytes), lowest_bit(J0 * static_cast<int>(sizeof(T))));
  alignas(16) T tile[N][kTileCodes];
#pragma unroll
  for (int c = 0; c < kTileCodes; ++c) {
    float w[N];
    load_aligned_row<T, N, kAlign>(cb + static_cast<size_t>(codes[c] & L.main_mask) * V + J0, w);
    if (rcb) {
      float r[N];
      load_aligned_row<T, N, kAlign>(rcb + static_cast<size_t>(res_part(codes[c], L)) * V + J0, r);
#pragma unroll
      for (int j = 0; j < N; ++j) w[j] += r[j];
    }
#pragma unroll
    for (int j = 0; j < N; ++j) tile[j][c] = from_float<T>(w[j]);
  }
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const int o = first_row + J0 + j;  // row of the chunk
    if (o >= 0 && o < row_end) store8(out + static_cast<int64_t>(o) * ld, tile[j]);
  }
}

// One work item of dequant_tiles: the 8-code tile `tile` of index row ri (of the chunk); tiles
// past the row's end (the last 256-tile slab of a row) do nothing.
struct TileItem {
  int ri = 0, tile = 0;
};

__device__ __forceinline__ TileItem tile_item(int item, int slabs_per_row) {
  TileItem t;
  t.ri = item / slabs_per_row;
  t.tile = (item - t.ri * slabs_per_row) * static_cast<int>(blockDim.x) + static_cast<int>(threadIdx.x);
  return t;
}

// The words holding the 8 codes (main | residual bits) of one tile: loaded one item ahead and
// decoded when the item is worked on, so their DRAM latency hides behind the current item's
// gathers and stores instead of being waited for right after the loads issue.
__device__ __forceinline__ void load_tile_words(const LayerView& L, int r, int q, CodeWords (&words)[kTileCodes]) {
  const int g = q / L.group_size, c0 = q - g * L.group_size;
  const uint32_t* prow = L.packed + (static_cast<size_t>(g) * L.index_rows + r) * L.words_per_row;
#pragma unroll
  for (int c = 0; c < kTileCodes; ++c) words[c] = load_code_words(prow, c0 + c, L);
}

// Block b works through items b, b + gridDim.x, ... of the n_idx x slabs_per_row items (item =
// 256 consecutive tiles of one index row, one per thread); the grid is one wave of resident
// blocks, so every block has the same number of items within one.
template <typename T, int V>
__global__ void __launch_bounds__(kDequantThreads, dequant_tile_min_blocks(V))
    dequant_tiles_kernel(LayerView L, T* __restrict__ ws, int row0, int rows, int r_begin, int n_idx) {
  const int tiles_per_row = L.groups * L.group_size / kTileCodes;
  const int slabs_per_row = (tiles_per_row + static_cast<int>(blockDim.x) - 1) / static_cast<int>(blockDim.x);
  const int items = n_idx * slabs_per_row;
  const int row_end = min(rows, L.out_features - row0);
  CodeWords words[kTileCodes];
  int item = blockIdx.x;
  TileItem cur = tile_item(item, slabs_per_row);
  if (item < items && cur.tile < tiles_per_row) load_tile_words(L, r_begin + cur.ri, cur.tile * kTileCodes, words);
  for (; item < items; item += gridDim.x) {
    const TileItem next = tile_item(item + gridDim.x, slabs_per_row);
    if (cur.tile < tiles_per_row) {
      uint32_t codes[kTileCodes];
      const int q = cur.tile * kTileCodes;
      const int g = q / L.group_size, c0 = q - g * L.group_size;
#pragma unroll
      for (int c = 0; c < kTileCodes; ++c) codes[c] = decode_code_words(words[c], c0 + c, L);
      if (item + static_cast<int>(gridDim.x) < items && next.tile < tiles_per_row)
        load_tile_words(L, r_begin + next.ri, next.tile * kTileCodes, words);
      const T* cb = static_cast<const T*>(L.cb) + static_cast<size_t>(g) * L.k * V;
      const T* rcb = L.rcb ? static_cast<const T*>(L.rcb) + static_cast<size_t>(g) * L.k_res * V : nullptr;
      T* out = ws + L.outlier_size + q;
      const int first_row = (r_begin + cur.ri) * V - row0;
      constexpr int kFirst = V < 8 ? V : 8;
      dequant_tile_rows<T, V, 0, kFirst>(cb, rcb, codes, L, out, L.in_features, first_row, row_end);
      if constexpr (V > 8) dequant_tile_rows<T, V, 8, V - 8>(cb, rcb, codes, L, out, L.in_features, first_row, row_end);
    } else if (item + static_cast<int>(gridDim.x) < items && next.tile < tiles_per_row) {
      load_tile_words(L, r_begin + next.ri, next.tile * kTileCodes, words);
    }
    cur = next;
  }
}

template <typename T>
__global__ void __launch_bounds__(kDequantThreads)
    dequant_outliers_kernel(LayerView L, T* __restrict__ ws, int row0, int rows) {
  const int os = L.outlier_size;
  const int64_t total = static_cast<int64_t>(rows) * os;
  const T* ocb = static_cast<const T*>(L.ocb);
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int o = row0 + static_cast<int>(t / os);
    const int s = static_cast<int>(t % os);
    const int ro = o / L.v_o, jo = o - ro * L.v_o;
    const uint32_t e = static_cast<uint32_t>(L.oidx[static_cast<size_t>(ro) * os + s]) &
                       static_cast<uint32_t>(L.k_o - 1);
    ws[static_cast<size_t>(o - row0) * L.in_features + s] = ocb[static_cast<size_t>(e) * L.v_o + jo];
  }
}

__device__ __forceinline__ float row_constant(const float* parts, int nparts, int m) {
  float c = 0.f;
  if (parts)
    for (int p = 0; p < nparts; ++p) c += parts[static_cast<size_t>(m) * nparts + p];
  return c;
}

template <typename T>
__global__ void __launch_bounds__(kTileThreads)
    tiled_gemm_kernel(const T* __restrict__ a, const T* __restrict__ b, int M, int N, int K,
                      const float* __restrict__ parts, int nparts, const T* __restrict__ bias,
                      T* __restrict__ y, int ldy, int row0) {
  __shared__ float as[kTileK][kTileM + 4];
  __shared__ float bs[kTileK][kTileN + 4];
  const int m_base = blockIdx.y * kTileM, n_base = blockIdx.x * kTileN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += kTileK) {
    for (int i = threadIdx.x; i < kTileM * kTileK; i += blockDim.x) {
      const int mm = i / kTileK, kk = i % kTileK;
      const int gm = m_base + mm, gk = k0 + kk;
      as[kk][mm] = (gm < M && gk < K) ? to_float(a[static_cast<size_t>(gm) * K + gk]) : 0.f;
      const int gn = n_base + mm;
      bs[kk][mm] = (gn < N && gk < K) ? to_float(b[static_cast<size_t>(gn) * K + gk]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = bs[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = m_base + ty * 4 + i;
    if (m >= M) continue;
    const float c = row_constant(parts, nparts, m);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n_base + tx * 4 + j;
      if (n >= N) continue;
      float out = acc[i][j] + c;
      if (bias) out += to_float(bias[row0 + n]);
      y[static_cast<size_t>(m) * ldy + row0 + n] = from_float<T>(out);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kEpilogueThreads)
    epilogue_kernel(const float* __restrict__ c, int mc, int rows, int m0, int row0,
                    const float* __restrict__ parts, int nparts, const T* __restrict__ bias,
                    T* __restrict__ y, int ldy) {
  const int64_t total = static_cast<int64_t>(mc) * rows;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int m = static_cast<int>(t / rows), o = static_cast<int>(t % rows);
    float out = c[t] + row_constant(parts, nparts, m0 + m);
    if (bias) out += to_float(bias[row0 + o]);
    y[static_cast<size_t>(m0 + m) * ldy + row0 + o] = from_float<T>(out);
  }
}

int grid_for(int64_t total, int threads) {
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > kMaxGrid ? kMaxGrid : blocks));
}

template <typename F>
gpuError_t with_type(DType dt, F&& f) {
  switch (dt) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat16: return f(gpu_half{});
    case DType::kBFloat16: return f(gpu_bfloat16{});
  }
  return gpuSuccess;
}

}  // namespace

gpuError_t launch_prep_activations(DType dt, const void* x, const int32_t* perm, const void* scale,
                                   const void* wbias, void* xs, int decode_mb, float* parts,
                                   int m, int in_features, gpuStream_t stream) {
  const dim3 grid(prep_parts(in_features), decode_mb > 0 ? decode_mb : m);
  return with_type(dt, [&](auto tag) {
    using T = decltype(tag);
    if (decode_mb > 0) {
      prep_activations_kernel<T, float><<<grid, kPrepThreads, 0, stream>>>(
          static_cast<const T*>(x), perm, static_cast<const T*>(scale), static_cast<const T*>(wbias),
          static_cast<float*>(xs), decode_mb, parts, m, in_features);
    } else {
      prep_activations_kernel<T, T><<<grid, kPrepThreads, 0, stream>>>(
          static_cast<const T*>(x), perm, static_cast<const T*>(scale), static_cast<const T*>(wbias),
          static_cast<T*>(xs), decode_mb < 0 ? -1 : 0, parts, m, in_features);
    }
    return gpuGetLastError();
  });
}

namespace {

bool tiles_enabled() {
  static const bool on = env_knob("VPTQ_DEQUANT_TILES", 1) != 0;
  return on;
}

// The tiled dequantizer's pointer requirements (file comment); otherwise dequant_rows runs.
bool tiles_aligned(const LayerView& L, size_t elem, const void* ws) {
  const size_t align = static_cast<size_t>(min_int(16, lowest_bit(L.v * static_cast<int>(elem))));
  return aligned_to(ws, 16) && aligned_to(L.cb, align) && (!L.rcb || aligned_to(L.rcb, align));
}

template <typename T, int V>
gpuError_t launch_dequant_tiles_v(const LayerView& L, T* ws, int row0, int rows, int r_begin, int n_idx,
                                  int multiprocessors, gpuStream_t stream) {
  auto kernel = dequant_tiles_kernel<T, V>;
  // resident blocks per multiprocessor (dequant_tile_min_blocks), asked once per instantiation
  static const int per_sm = resident_blocks_per_sm(kernel, kDequantThreads, kSmemDefaultBytes, 0);
  if (per_sm == 0) return gpuErrorInvalidValue;
  const int tiles = L.groups * L.group_size / kTileCodes;
  const int64_t items = static_cast<int64_t>(n_idx) * ((tiles + kDequantThreads - 1) / kDequantThreads);
  const int64_t resident = static_cast<int64_t>(per_sm) * std::max(1, multiprocessors);
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min(items, resident)));
  kernel<<<grid, kDequantThreads, 0, stream>>>(L, ws, row0, rows, r_begin, n_idx);
  return gpuGetLastError();
}

template <typename T>
gpuError_t launch_dequant_tiles(const LayerView& L, T* ws, int row0, int rows, int r_begin, int n_idx,
                                int multiprocessors, gpuStream_t stream) {
  switch (L.v) {
#define VPTQ_DEQUANT_TILES_CASE(V) \
  case V:                         \
    return launch_dequant_tiles_v<T, V>(L, ws, row0, rows, r_begin, n_idx, multiprocessors, stream);
    VPTQ_DEQUANT_TILE_VECTOR_LENS(VPTQ_DEQUANT_TILES_CASE)
#undef VPTQ_DEQUANT_TILES_CASE
    default: return gpuErrorInvalidValue;  // dequant_uses_tiles said no
  }
}

}  // namespace

bool dequant_tiles_supported(int v, int group_size, int outlier_size, int in_features) {
  if (!tiles_enabled() || group_size % kTileCodes || outlier_size % kTileCodes || in_features % kTileCodes)
    return false;
  switch (v) {
#define VPTQ_DEQUANT_TILES_LEN(V) case V:
    VPTQ_DEQUANT_TILE_VECTOR_LENS(VPTQ_DEQUANT_TILES_LEN) return true;
#undef VPTQ_DEQUANT_TILES_LEN
    default: return false;
  }
}

gpuError_t launch_dequant_rows(DType dt, const LayerView& L, void* ws, int row0, int rows,
                               int multiprocessors, gpuStream_t stream) {
  const int r_begin = row0 / L.v;
  const int r_end = (row0 + rows + L.v - 1) / L.v;
  const int n_idx = r_end - r_begin;
  const bool tiles = dequant_tiles_supported(L.v, L.group_size, L.outlier_size, L.in_features) &&
                     tiles_aligned(L, dt == DType::kFloat32 ? 4 : 2, ws);
  return with_type(dt, [&](auto tag) {
    using T = decltype(tag);
    const int64_t codes = static_cast<int64_t>(L.groups) * L.group_size;
    if (codes > 0 && tiles) {
      gpuError_t e = launch_dequant_tiles<T>(L, static_cast<T*>(ws), row0, rows, r_begin, n_idx, multiprocessors, stream);
      if (e != gpuSuccess) return e;
    } else if (codes > 0) {
      dequant_rows_kernel<T><<<grid_for(n_idx * codes, kDequantThreads), kDequantThreads, 0, stream>>>(
          L, static_cast<T*>(ws), row0, rows, r_begin, n_idx);
      gpuError_t e = gpuGetLastError();
      if (e != gpuSuccess) return e;
    }
    if (L.outlier_size > 0) {
      dequant_outliers_kernel<T>
          <<<grid_for(static_cast<int64_t>(rows) * L.outlier_size, kDequantThreads), kDequantThreads, 0,
             stream>>>(L, static_cast<T*>(ws), row0, rows);
    }
    return gpuGetLastError();
  });
}

gpuError_t launch_tiled_gemm(DType dt, const void* a, const void* b, int m, int rows, int k,
                             const float* parts, int nparts, const void* bias, void* y, int ldy,
                             int row0, gpuStream_t stream) {
  const dim3 grid((rows + kTileN - 1) / kTileN, (m + kTileM - 1) / kTileM);
  return with_type(dt, [&](auto tag) {
    using T = decltype(tag);
    tiled_gemm_kernel<T><<<grid, kTileThreads, 0, stream>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), m, rows, k, parts, nparts,
        static_cast<const T*>(bias), static_cast<T*>(y), ldy, row0);
    return gpuGetLastError();
  });
}

gpuError_t launch_epilogue(DType dt, const float* c, int mc, int rows, int m0, int row0,
                           const float* parts, int nparts, const void* bias, void* y, int ldy,
                           gpuStream_t stream) {
  return with_type(dt, [&](auto tag) {
    using T = decltype(tag);
    epilogue_kernel<T><<<grid_for(static_cast<int64_t>(mc) * rows, kEpilogueThreads), kEpilogueThreads,
                         0, stream>>>(c, mc, rows, m0, row0, parts, nparts, static_cast<const T*>(bias),
                                      static_cast<T*>(y), ldy);
    return gpuGetLastError();
  });
}

}  // namespace gpu
}  // namespace vptq
