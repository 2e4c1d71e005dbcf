/* step_ops->sample on the CPU: CFG, warpers, the Philox draw and the delay pattern of one decoding step, in
 * the shape of the CUDA kernel (kernels/cuda/step_sample.cu): candidates as sort keys
 * (kernels/sample_rule.h), top-k as the count of keys at or above the k-th score, then the sequential double
 * sums of model/sampling.c. tests/test_step holds it to mg_sample_row token for token. */
#include <stdlib.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "kernels/cpu/step_cpu.h"
#include "kernels/sample_rule.h"

static int cmp_u64(const void *a, const void *b) {
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int64_t cpu_step_sample_row(const float *scores, int64_t V, const musae_sample_params *p, float u, uint64_t *keys,
                            double *prob) {
    if (p->greedy) { /* torch.argmax: the first maximum (a NaN at 0 is never beaten, later NaNs never win) */
        int64_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (scores[i] > scores[best]) best = i;
        return best;
    }
    for (int64_t i = 0; i < V; i++) keys[i] = musae_cand_key(musae_temper(scores[i], p->temperature), (int32_t)i);
    qsort(keys, (size_t)V, sizeof(uint64_t), cmp_u64);
    int64_t m = 0;
    while (m < V && keys[m] != UINT64_MAX) m++;
    MUSAE_ASSERT(m > 0, "no finite score to sample from");
    if (p->top_k > 0 && p->top_k < m) { /* HF keeps every score >= the k-th largest: ties stay */
        const float thr = musae_cand_score(keys[p->top_k - 1]);
        int64_t keep = p->top_k;
        while (keep < m && musae_cand_score(keys[keep]) >= thr) keep++;
        m = keep;
    }
    const double mx = musae_cand_score(keys[0]);
    double total = 0;
    for (int64_t j = 0; j < m; j++) total += prob[j] = musae_exp_neg((double)musae_cand_score(keys[j]) - mx);
    if (p->top_p < 1.0f) { /* candidate j stays while the mass strictly before it is < p */
        double before = prob[0];
        int64_t keep = 1;
        while (keep < m && before / total < (double)p->top_p) before += prob[keep++];
        m = keep;
    }
    double mass = 0;
    for (int64_t j = 0; j < m; j++) mass += prob[j];
    const double target = (double)u * mass;
    double acc = 0;
    for (int64_t j = 0; j < m; j++) {
        acc += prob[j];
        if (acc > target) return musae_cand_index(keys[j]);
    }
    return musae_cand_index(keys[m - 1]);
}

void cpu_step_sample(const float *logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                     const musae_sample_params *p, const int64_t *pos) {
    const int64_t B = p->B, K = p->K, V = p->V, step = *pos, j = step + 1;
    MUSAE_ASSERT(V >= 1 && V <= MUSAE_SAMPLE_VMAX && p->rows == (p->cfg ? 2 * B : B) && j < p->max_length,
                 "sample: V %lld, rows %lld for %lld items, position %lld of %lld", (long long)V, (long long)p->rows,
                 (long long)B, (long long)j, (long long)p->max_length);
    uint64_t *keys = musae_xmalloc((size_t)V * sizeof(uint64_t));
    double *prob = musae_xmalloc((size_t)V * sizeof(double));
    float *row = musae_xmalloc((size_t)V * sizeof(float));
    const int64_t per_step = (K + 3) / 4;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++) {
            const float *c = logits + (b * K + k) * V;
            float *s = scores ? scores + (b * K + k) * V : row;
            if (p->cfg)
                for (int64_t i = 0; i < V; i++) s[i] = musae_cfg_score(c[i], logits[((B + b) * K + k) * V + i], p->guidance);
            else
                for (int64_t i = 0; i < V; i++) s[i] = c[i];
            float u = 0.0f;
            if (!p->greedy) {
                const musae_u32x4 w = musae_philox(p->seed, p->same_draws ? 0u : (uint64_t)b, (uint64_t)(step * per_step + k / 4));
                u = musae_u32_to_unit(w.v[k % 4]);
            }
            const int64_t t = cpu_step_sample_row(s, V, p, u, keys, prob);
            tok[b * K + k] = t;
            const int64_t val = musae_delay_free(p->delayed, K, p->max_length, k, j) ? t : V;
            seq[(b * K + k) * p->max_length + j] = val;
            ids[k * p->rows + b] = val;
            if (p->cfg) ids[k * p->rows + B + b] = val;
        }
    free(row);
    free(prob);
    free(keys);
}
