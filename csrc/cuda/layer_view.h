// csrc/cuda/layer_view.h: what every VPTQ GPU kernel receives about the layer, and the one
// device routine that reads a code out of the packed index layout (docs/op-spec.md, "Packed
// index layout").
//
// Layout recap (op inputs, all row-major):
//   packed   [G, NI, W] uint32   row (g, r): gs codes of `bits` bits each, LSB-first stream,
//                                code c at stream bits [c*bits, (c+1)*bits); words never shared
//                                between rows. code = main | res << index_bits.
//   cb       [G, k, v]    T      main codebook;  rcb [G, k_res, v] T residual codebook
//   oidx     [NO, os]     int32  outlier codes;  ocb [k_o, v_o]    T outlier codebook
// Stored column s: s < os is outlier column s; s >= os is group (s-os)/gs, code (s-os)%gs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vptq/gpu_portability.h"
#include "vptq/packed_index.h"

namespace vptq {
namespace gpu {

// Whether `p` is a multiple of `bytes` (a power of two): the vector-load preconditions of the
// kernels, checked on the host (dispatch) and in device code alike.
__host__ __device__ __forceinline__ bool aligned_to(const void* p, size_t bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

__host__ __device__ constexpr int lowest_bit(int n) { return n & -n; }
__host__ __device__ constexpr int min_int(int a, int b) { return a < b ? a : b; }

// Vector type of `Bytes` bytes (a power of two, 2..16) for aligned loads.
template <int Bytes> struct LoadWord;
template <> struct LoadWord<16> { using type = uint4; };
template <> struct LoadWord<8> { using type = uint2; };
template <> struct LoadWord<4> { using type = uint32_t; };
template <> struct LoadWord<2> { using type = uint16_t; };

// out[j] = float(row[j]) for j < N; `row` is aligned to kAlign bytes (a power of two), so the
// N * sizeof(T) bytes are read with min(kAlign, lowest power of two dividing the size, 16)-byte
// loads (kAlign = 16: the widest access that divides the row's bytes).
template <typename T, int N, int kAlign>
__device__ __forceinline__ void load_aligned_row(const T* __restrict__ row, float (&out)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  constexpr int kWord = min_int(min_int(kAlign, lowest_bit(kBytes)), 16);
  using W = typename LoadWord<kWord>::type;
  W buf[kBytes / kWord];
  const W* src = reinterpret_cast<const W*>(row);
#pragma unroll
  for (int i = 0; i < kBytes / kWord; ++i) buf[i] = src[i];
  const T* t = reinterpret_cast<const T*>(buf);
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = to_float(t[j]);
}

struct LayerView {
  int out_features = 0;       // O
  int in_features = 0;        // I
  int v = 0;                  // vector_len
  int k = 0;                  // num_centroids (power of two)
  int k_res = 0;              // 0: no residual
  int groups = 1;             // G
  int group_size = 0;         // gs
  int outlier_size = 0;       // os
  int v_o = 1;                // outlier vector len
  int k_o = 1;                // outlier centroids (power of two)
  int index_bits = 0;         // log2 k
  int bits = 0;               // index_bits + res_index_bits (0..32)
  int words_per_row = 0;      // W
  int index_rows = 0;         // NI
  uint32_t main_mask = 0;     // (1 << index_bits) - 1
  uint32_t res_mask = 0;      // (1 << res_index_bits) - 1
  uint32_t code_mask = 0;     // (1 << bits) - 1 (all ones for 32)
  int straddles = 0;          // bits does not divide 32: codes may straddle two words
  const uint32_t* packed = nullptr;
  const void* cb = nullptr;
  const void* rcb = nullptr;  // null without residual
  const int32_t* oidx = nullptr;
  const void* ocb = nullptr;
};

// Code `c` of one packed row (`row` points at its first word): vptq/packed_index.h, the one
// decoder of the layout shared with the CPU kernels; bits == 0 (k = 1, no residual) has no
// words at all and every code is 0.
__device__ __forceinline__ uint32_t read_code(const uint32_t* __restrict__ row, int c, int bits) {
  return bits == 0 ? 0u : packed_code(row, c, bits);
}

// The same decode in 32-bit arithmetic for the hot loop (c * bits < 2^32 for every row the
// kernels accept); the second word is read only when the layout lets codes straddle words. Split
// in two for kernels that load the words of a later step early: load_code_words reads the one or
// two words code `c` lives in, decode_code_words extracts the code from them.
struct CodeWords {
  uint32_t lo = 0u, hi = 0u;
};

__device__ __forceinline__ CodeWords load_code_words(const uint32_t* __restrict__ row, int c, const LayerView& L) {
  CodeWords cw;
  if (L.bits == 0) return cw;  // no words at all
  const uint32_t bit = static_cast<uint32_t>(c) * static_cast<uint32_t>(L.bits);
  const uint32_t w = bit >> 5, sh = bit & 31u;
  cw.lo = row[w];
  if (L.straddles && sh + static_cast<uint32_t>(L.bits) > 32u) cw.hi = row[w + 1];
  return cw;
}

__device__ __forceinline__ uint32_t decode_code_words(CodeWords cw, int c, const LayerView& L) {
  if (L.bits == 0) return 0u;
  const uint32_t sh = (static_cast<uint32_t>(c) * static_cast<uint32_t>(L.bits)) & 31u;
  uint32_t v = cw.lo >> sh;
  if (L.straddles && sh + static_cast<uint32_t>(L.bits) > 32u) v |= cw.hi << (32u - sh);
  return v & L.code_mask;
}

__device__ __forceinline__ uint32_t read_code32(const uint32_t* __restrict__ row, int c, const LayerView& L) {
  return decode_code_words(load_code_words(row, c, L), c, L);
}

__device__ __forceinline__ uint32_t res_part(uint32_t code, const LayerView& L) {
  return residual_index(code, L.index_bits, L.bits - L.index_bits);
}

}  // namespace gpu
}  // namespace vptq
