// tools/cuda_emu stand-in for kernels/cuda/cuda_common.cuh: the same check macros over the emulated runtime.
#ifndef MUSAE_CUDA_COMMON_CUH
#define MUSAE_CUDA_COMMON_CUH
#include "emu.h"
#include "host/core/check.h"
#define CUDA_CHECK(expr) do { cudaError_t err_ = (expr); MUSAE_CHECK_GEN("CUDA", #expr, err_ != cudaSuccess, cudaGetErrorString(err_)); } while (0)
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
#define CUBLAS_CHECK(expr) do { cublasStatus_t st_ = (expr); MUSAE_CHECK_GEN("cuBLAS", #expr, st_ != CUBLAS_STATUS_SUCCESS, cublasGetStatusString(st_)); } while (0)
#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#endif
