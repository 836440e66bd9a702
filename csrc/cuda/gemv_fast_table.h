// csrc/cuda/gemv_fast_table.h: the specialised decode kernels that exist (gemv_fast.cuh), as
// X-macros shared by the instantiation files (gemv_fast_<dtype>_m<MB>.cu) and the dispatch table
// (dispatch.cu, kGemvTable). Which configuration gets which kernel is decided in dispatch.cu.
//
//   VPTQ_GEMV_FAST_LAYOUTS(X): X(V, IB, RB) = vector_len, index bits (log2 k), residual bits
//     (log2 k_res, 0 = no residual). Element types: fp16 and bf16; MB in {1, 8}.
//   VPTQ_GEMV_FAST_LAYOUTS_WIDE(X): the same for MB = 1 only (V * MB accumulators above 32 spill
//     registers: 4.8-9.6 KB of spills per thread for V = 12 / 16 at MB = 8).
// MB = 2 and 4 are not compiled: measured on the H100 (8B up), the generic kernel is faster there
// (v8-k256-256 M = 2: 50.5 us generic, 63.9 us fast; v6-k4096: 64.0 against 79.2), while MB = 8
// gains (v8-k256-256 M = 8: 163.6 -> 102.4 us). M in 2..4 therefore takes the generic kernel.
#pragma once

#define VPTQ_GEMV_FAST_LAYOUTS(X) \
  X(8, 8, 8)    /* v8-k256-256,   T = 16, both codebooks in shared memory */ \
  X(8, 8, 0)    /* v8-k256,       T = 8 */                                   \
  X(8, 12, 0)   /* v8-k4096,      T = 12 */                                  \
  X(6, 12, 0)   /* v6-k4096,      T = 12 */                                  \
  X(8, 12, 8)   /* v8-k4096-256,  T = 20 */                                  \
  X(8, 13, 8)   /* v8-k8192-256,  T = 21 (4-byte index loads) */             \
  X(8, 16, 0)   /* v8-k65536,     T = 16 */                                  \
  X(8, 16, 8)   /* v8-k65536-256, T = 24 */

#define VPTQ_GEMV_FAST_LAYOUTS_WIDE(X) \
  X(12, 12, 12) /* v12-k4096-4096, T = 24 */ \
  X(16, 16, 16) /* v16-k65536-65536, T = 32 */

// Tensor-core decode kernel (gemv_mma.cuh, CUDA sm_80+ only, any M <= 16, fp16 / bf16). Its
// kernel handles V = 8 with IB = RB = 8 (both codebooks staged in shared memory); dispatch.cu
// prefers it over the fast kernel for these layouts.
#define VPTQ_GEMV_MMA_LAYOUTS(X) \
  X(8, 8, 8)    /* v8-k256-256 */
// The same kernel for 12-bit main codes, with the 256-row residual (20-bit codes) or without (12-bit
// codes, the gather kernel's RB = 0 column map); one copy of the 64 KB main codebook, G = 1, P = 1 only.
#define VPTQ_GEMV_MMA_WIDE_LAYOUTS(X) \
  X(8, 12, 8)   /* v8-k4096-256 */      \
  X(8, 12, 0)   /* v8-k4096 */          \
  X(8, 13, 8)   /* v8-k8192-256: 128 KB main codebook, one block of 16 warps per SM */ \
  X(6, 12, 0)   /* v6-k4096: 12-byte entries padded to 16 in shared memory */

// Tensor-core gather kernel (gemv_mma_gather.cuh, CUDA sm_80+ only, any M <= 16, fp16 / bf16):
// main-codebook rows gathered (from L1 / L2) into shared memory by cp.async; X(V, IB, RB) =
// vector length, index bits, residual bits (RB = 8: the 256-row residual codebook staged, G = 1
// only; V = 16: RB = 16, the residual codebook gathered like the main one).
#define VPTQ_GEMV_MMA_GATHER_LAYOUTS(X) \
  X(8, 16, 0)   /* v8-k65536 */        \
  X(8, 16, 8)   /* v8-k65536-256 */    \
  X(16, 16, 16) /* v16-k65536-65536 */ \
  X(8, 12, 0)   /* v8-k4096 */         \
  X(8, 12, 8)   /* v8-k4096-256 */     \
  X(8, 13, 8)   /* v8-k8192-256 */

// The gather kernel's staged-main variant (gemv_mma_gather.cuh, same limits; G = 1 only): the
// 4096-row main codebook (64 KB for v8 fp16 / bf16) is copied once per block into shared memory,
// and ldmatrix reads its rows there instead of cp.async gathering them into a ring. Not for the
// 8192-row one (v8-k8192-256): at 128 KB one block per SM, measured slower than gathering.
#define VPTQ_GEMV_MMA_STAGE_MAIN_LAYOUTS(X) \
  X(8, 12, 0)   /* v8-k4096 */         \
  X(8, 12, 8)   /* v8-k4096-256 */
