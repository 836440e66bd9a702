// vptq/host_device.h: VPTQ_HOST_DEVICE marks inline helpers that host code (CPU kernels,
// adapters) and device code (CUDA / HIP kernels) share. Nothing else lives here.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define VPTQ_HOST_DEVICE __host__ __device__
#else
#define VPTQ_HOST_DEVICE
#endif
