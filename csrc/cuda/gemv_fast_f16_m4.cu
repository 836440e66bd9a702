// csrc/cuda/gemv_fast_f16_m4.cu: the specialised decode kernels of gemv_fast_table.h for
// gpu_half activations and MB = 4 (one file per element type and MB: they compile in parallel).
#include "gemv_fast_impl.cuh"

#define VPTQ_INST_FAST(V, IB, RB) VPTQ_GEMV_FAST_INSTANTIATE_ONE(gpu_half, V, IB, RB, 4)
VPTQ_GEMV_FAST_LAYOUTS(VPTQ_INST_FAST)
