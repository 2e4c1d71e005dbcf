/* step_ops->embed on the CPU: the sum of the K token embeddings in codebook order, then the position row of
 * the device step counter. The same fp32 adds, in the same order, as mg_forward's embedding + add ops. */
#include "host/core/check.h"
#include "kernels/cpu/step_cpu.h"

void cpu_step_embed(float *x, const float *table, int64_t K, int64_t n_ids, int64_t dim, const int64_t *ids,
                    int64_t rows, const float *pos_table, const int64_t *pos) {
    const int64_t p = *pos;
    MUSAE_ASSERT(p >= 0, "step position %lld", (long long)p);
    const float *pr = pos_table + p * dim;
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        for (int64_t k = 0; k < K; k++) {
            const int64_t id = ids[k * rows + r];
            MUSAE_ASSERT(id >= 0 && id < n_ids, "token %lld of row %lld, codebook %lld outside 0..%lld",
                         (long long)id, (long long)r, (long long)k, (long long)n_ids - 1);
            const float *e = table + (k * n_ids + id) * dim;
            for (int64_t i = 0; i < dim; i++) xr[i] = k ? xr[i] + e[i] : e[i];
        }
        for (int64_t i = 0; i < dim; i++) xr[i] += pr[i];
    }
}
