/* dtype conversions on the device with the CPU's own routines (host/core/dtype.h, MUSAE_HD): round to
 * nearest even, NaN made quiet, so a weight converted on the GPU is bit-identical to one converted by
 * musae_convert on the host. */
#ifndef MUSAE_CONVERT_CUH
#define MUSAE_CONVERT_CUH

#include <cuda_runtime.h>
#include <stdint.h>

void f32_to_bf16_cuda(uint16_t *out, const float *x, int64_t n, cudaStream_t stream);

#endif /* MUSAE_CONVERT_CUH */
