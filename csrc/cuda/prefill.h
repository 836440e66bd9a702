// csrc/cuda/prefill.h: host launchers of the non-GEMV kernels (prefill.cu): activation prep,
// weight dequantization, the tiled fallback GEMM and the fp32 epilogue. All take the element
// type at run time (vptq::DType) and enqueue on `stream`; each returns the launch error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layer_view.h"
#include "vptq/layer.h"

namespace vptq {
namespace gpu {

constexpr int kPrepThreads = 256;
constexpr int kPrepColumnsPerBlock = 2048;  // columns of X per prep block (row-constant parts)

// Number of blocks along I (= partial sums of the row constant per row).
inline int prep_parts(int64_t in_features) {
  return static_cast<int>((in_features + kPrepColumnsPerBlock - 1) / kPrepColumnsPerBlock);
}

// x'[m, s] = X[m, perm[s]] * scale[perm[s]] (perm / scale optional), written
//   decode_mb > 0: fp32, column-interleaved xs[s * decode_mb + m] for m < decode_mb (rows m >= M
//                  are zeros), so the decode kernel reads all rows of a column in one vector load;
//   decode_mb = 0: T, row-major xs[m * I + s] (the GEMM's A operand, and the tensor-core decode
//                  kernel's activations when x' is exact in T: perm only);
//   decode_mb < 0: T, row-major hi = T(x') at xs[m * I + s] and lo = T(x' - hi) at
//                  xs[(M + m) * I + s] (tensor-core decode kernel with norm: x' ~ hi + lo).
// parts[m, p] = sum over original columns i of block p of X[m, i] * wbias[i] (when wbias; rows of
// the decode_mb padding get 0).
gpuError_t launch_prep_activations(DType dt, const void* x, const int32_t* perm, const void* scale,
                                   const void* wbias, void* xs, int decode_mb, float* parts,
                                   int m, int in_features, gpuStream_t stream);

// Whether launch_dequant_rows uses the tiled dequantizer for this layout (it also needs the
// workspace 16-byte aligned and the codebooks aligned to their row size, else the generic one
// runs); VPTQ_DEQUANT_TILES=0 in the environment turns it off (A/B runs).
bool dequant_tiles_supported(int v, int group_size, int outlier_size, int in_features);

// Ws[o - row0, s] (stored column order, no perm / norm) for rows o in [row0, row0 + rows), T.
// `multiprocessors` sizes the tiled dequantizer's grid (one wave of resident blocks).
gpuError_t launch_dequant_rows(DType dt, const LayerView& L, void* ws, int row0, int rows,
                               int multiprocessors, gpuStream_t stream);

// Y[m, row0 + o] = T(sum_s A[m, s] * B[o, s] + c[m] + bias[row0 + o]) for o < rows, m < M.
// A [M, K] T (lda = K), B [rows, K] T, Y with row stride ldy; fp32 accumulation.
gpuError_t launch_tiled_gemm(DType dt, const void* a, const void* b, int m, int rows, int k,
                             const float* parts, int nparts, const void* bias, void* y, int ldy,
                             int row0, gpuStream_t stream);

// Y[m0 + m, row0 + o] = T(C[m, o] + c[m0 + m] + bias[row0 + o]); C [mc, rows] fp32 (ldc = rows).
gpuError_t launch_epilogue(DType dt, const float* c, int mc, int rows, int m0, int row0,
                           const float* parts, int nparts, const void* bias, void* y, int ldy,
                           gpuStream_t stream);

}  // namespace gpu
}  // namespace vptq
