/* tanh elementwise (HF's BERT/RoBERTa pooler: dense then nn.Tanh on the first token). Small: one row per
 * text, so libm's tanhf is plenty. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_tanh(float *out, const float *x, int64_t n) {
    MUSAE_ASSERT(n >= 0, "tanh: n = %lld", (long long)n);
    for (int64_t i = 0; i < n; i++) out[i] = tanhf(x[i]);
}
