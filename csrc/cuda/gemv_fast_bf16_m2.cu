// csrc/cuda/gemv_fast_bf16_m2.cu: the specialised decode kernels of gemv_fast_table.h for
// gpu_bfloat16 activations and MB = 2 (one file per element type and MB: they compile in parallel).
#include "gemv_fast_impl.cuh"

#define VPTQ_INST_FAST(V, IB, RB) VPTQ_GEMV_FAST_INSTANTIATE_ONE(gpu_bfloat16, V, IB, RB, 2)
VPTQ_GEMV_FAST_LAYOUTS(VPTQ_INST_FAST)
VPTQ_GEMV_FAST_LAYOUTS_WIDE(VPTQ_INST_FAST)
