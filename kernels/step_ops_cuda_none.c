/* The CPU-only build's answer to musae_step_ops_cuda() (kernels/cuda/step_ops_cuda.cu replaces it when CUDA is
 * on): no CUDA step table, so mg_generate runs the CPU table or its host loop. */
#ifndef MUSAE_CUDA
#include <stddef.h>

#include "kernels/step_ops.h"

const musae_step_ops *musae_step_ops_cuda(void) { return NULL; }
#endif
