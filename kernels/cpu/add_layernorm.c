/* Residual add fused with the LayerNorm after it (the CUDA table fuses the two into one pass; the reference
 * simply does them in turn): x += res with one fp32 rounding per element, then layernorm into out. */
#include "kernels/cpu/cpu_ops.h"

void cpu_add_layernorm(float *x, const float *res, float *out, const float *w, const float *b, int64_t rows,
                       int64_t dim, float eps) {
    MUSAE_ASSERT(rows >= 0 && dim > 0, "add_layernorm dims %lld x %lld", (long long)rows, (long long)dim);
    MUSAE_ASSERT(out != x && out != res, "add_layernorm: out must not alias x or res");
    cpu_add(x, x, res, rows * dim);
    cpu_layernorm(out, x, w, b, rows, dim, eps);
}
