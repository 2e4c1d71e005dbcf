/* The CPU-only build's answer to musae_ops_cuda() (kernels/cuda/ops_cuda.cu replaces it when CUDA is on):
 * there is no CUDA table, so callers fall back to the CPU (musae_cuda_device_count() gives the reason). */
#ifndef MUSAE_CUDA
#include <stddef.h>

#include "kernels/ops.h"

const musae_ops *musae_ops_cuda(void) { return NULL; }
#endif
