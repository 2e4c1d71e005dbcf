/* Row gather from an embedding table, optionally summed into out (MusicGen sums K codebook tables). */
#include "kernels/cpu/cpu_ops.h"

void cpu_embedding(float *out, const float *table, int64_t rows, int64_t dim, const int64_t *ids, int64_t n,
                   int accumulate) {
    for (int64_t r = 0; r < n; r++)
        MUSAE_ASSERT(ids[r] >= 0 && ids[r] < rows, "embedding id %lld at %lld outside [0, %lld)", (long long)ids[r],
                     (long long)r, (long long)rows);
#pragma omp parallel for if (n * dim > 65536)
    for (int64_t r = 0; r < n; r++) {
        const float *src = table + ids[r] * dim;
        float *o = out + r * dim;
        if (accumulate)
            for (int64_t i = 0; i < dim; i++) o[i] += src[i];
        else
            for (int64_t i = 0; i < dim; i++) o[i] = src[i];
    }
}
