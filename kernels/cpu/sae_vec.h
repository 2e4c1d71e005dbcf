/* Vector helpers of the SAE CPU kernels. The build targets baseline x86-64 (no -march), so the hot loops are
 * compiled for AVX-512, AVX2 and baseline and picked at run time (kernels/cpu/isa.h, MUSAE_ISA).
 * Reductions use 16 fixed partial sums combined in a fixed order, so every variant returns the same bits
 * (ISO C mode keeps the compiler from contracting a*b+c into FMA). */
#ifndef MUSAE_SAE_VEC_H
#define MUSAE_SAE_VEC_H

#include <stdint.h>

#include "kernels/cpu/isa.h"

enum { SAE_LANES = 16 };

/* Σ a[i]·b[i] with 16 partial sums. */
ISA_BODY float sae_dot_body(const float *restrict a, const float *restrict b, int64_t n) {
    float acc[SAE_LANES] = {0};
    int64_t i = 0;
    for (; i + SAE_LANES <= n; i += SAE_LANES)
        for (int j = 0; j < SAE_LANES; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++) acc[j] += a[i + j] * b[i + j];
    for (int w = SAE_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}

#endif /* MUSAE_SAE_VEC_H */
