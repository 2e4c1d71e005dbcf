/* tools/cuda_emu: what C files (tests/test_ops.c via kernels/cuda/ops_cuda.h) need from cuda_runtime_api.h. */
#pragma once
#include <stddef.h>
typedef void *cudaStream_t;
