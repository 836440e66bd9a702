// csrc/cuda/gemv_bf16.cu: every decode-kernel variant of gemv_table.h for gpu_bfloat16 activations.
// (One file per element type so that the variants compile in parallel.)
#include "gemv_impl.cuh"

#define VPTQ_INST_ROW(VT, MB, R, EXACT) VPTQ_GEMV_INSTANTIATE_ONE(gpu_bfloat16, VT, MB, R, EXACT)
#define VPTQ_INST_VEC(VT, EXACT) VPTQ_GEMV_ROWS(VPTQ_INST_ROW, VT, EXACT)
VPTQ_GEMV_VECTORS(VPTQ_INST_VEC)
