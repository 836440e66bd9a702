// csrc/cuda/gemv_table.h: the decode kernels that exist, as X-macros, so that the per-dtype
// instantiation files (gemv_<dtype>.cu) and the dispatch table (dispatch.cu) can never
// disagree. Which configuration gets which kernel is decided in dispatch.cu (kGemvTable and
// select_gemv); this file only lists the compiled variants.
//
//   VPTQ_GEMV_VECTORS(X): X(VT, EXACT)
//     EXACT = true : kernel for vector_len == VT exactly (vectorised codebook loads)
//     EXACT = false: generic kernel, any vector_len, VT components per tile (slices)
//   VPTQ_GEMV_ROWS(X, VT, EXACT): X(VT, MB, R, EXACT) for each MB (rows of X per launch,
//     M <= MB) and R (index rows per tile)
#pragma once

#define VPTQ_GEMV_VECTORS(X) \
  X(2, true)                 \
  X(4, true)                 \
  X(6, true)                 \
  X(8, true)                 \
  X(12, true)                \
  X(16, true)                \
  X(4, false)

// R > 1 (one activation load shared by R index rows) was measured slower on the H100 (8B up,
// M = 1: 110 us with R = 4 against 69 us with R = 1; M = 2: 94 us with R = 2 against 82 us), so
// only R = 1 is compiled; the kernel and select_gemv keep the parameter for other GPUs.
#define VPTQ_GEMV_ROWS(X, VT, EXACT) \
  X(VT, 1, 1, EXACT)                 \
  X(VT, 2, 1, EXACT)                 \
  X(VT, 4, 1, EXACT)                 \
  X(VT, 8, 1, EXACT)

// Largest M the decode path takes; larger M goes to the prefill path (dequantize + GEMM).
#define VPTQ_GEMV_MAX_M 8
