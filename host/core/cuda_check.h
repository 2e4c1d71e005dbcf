/* CUDA_CHECK: the runtime-API checker on musae_check_failed (host/core/check.h). It lives in host/core so that
 * every layer that drives the CUDA runtime (host/dist/nccl.cu, kernels/cuda, sae/sae_gpu.cu) uses the same
 * checker without including a higher layer. Include it only from CUDA compilation units. */
#ifndef MUSAE_CUDA_CHECK_H
#define MUSAE_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "host/core/check.h"

#define CUDA_CHECK(expr)                                                                                   \
    do {                                                                                                   \
        cudaError_t err_ = (expr);                                                                         \
        MUSAE_CHECK_GEN("CUDA", #expr, err_ != cudaSuccess, cudaGetErrorString(err_));                     \
    } while (0)

#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

#endif /* MUSAE_CUDA_CHECK_H */
