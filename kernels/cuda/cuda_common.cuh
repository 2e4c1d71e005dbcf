/* CUDA-side checks and helpers. Every runtime/cuBLAS call goes through CUDA_CHECK / CUBLAS_CHECK, and every
 * launch is followed by CUDA_LAUNCH_CHECK(), so a failure names the call, file:line and the reason. */
#ifndef MUSAE_CUDA_COMMON_CUH
#define MUSAE_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "host/core/check.h"
#include "host/core/cuda_check.h" // defines: CUDA_CHECK, CUDA_LAUNCH_CHECK

#define CUBLAS_CHECK(expr)                                                                                 \
    do {                                                                                                   \
        cublasStatus_t st_ = (expr);                                                                       \
        MUSAE_CHECK_GEN("cuBLAS", #expr, st_ != CUBLAS_STATUS_SUCCESS, cublasGetStatusString(st_));        \
    } while (0)

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

#endif /* MUSAE_CUDA_COMMON_CUH */
