#include "model/sampling.h"

#include <math.h>
#include <stdlib.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "kernels/sample_rule.h"

void mg_cfg_combine(float *out, const float *cond, const float *uncond, float g, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = musae_cfg_score(cond[i], uncond[i], g);
}

int64_t mg_argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

float mg_sample_uniform(uint64_t seed, int64_t b, int64_t k, int64_t K, int64_t step) {
    const int64_t per_step = (K + 3) / 4;
    musae_u32x4 w = musae_philox(seed, (uint64_t)b, (uint64_t)(step * per_step + k / 4));
    return musae_u32_to_unit(w.v[k % 4]);
}

typedef struct {
    float s;
    int32_t i;
} cand;

size_t mg_sample_work_bytes(int64_t n) { return (size_t)n * (sizeof(cand) + sizeof(double) + sizeof(float)); }

/* score descending, index ascending on ties: a total order, so the result does not depend on qsort */
static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}


int64_t mg_sample_row(const float *scores, int64_t n, const mg_sampler *s, float u, void *work) {
    MUSAE_ASSERT(n > 0 && n <= INT32_MAX, "sample row of %lld scores", (long long)n);
    if (s->greedy) return mg_argmax(scores, n);
    MUSAE_ASSERT(s->temperature > 0 && s->top_k >= 0 && s->top_p > 0 && s->top_p <= 1,
                 "sampler temperature %g top_k %d top_p %g", s->temperature, s->top_k, s->top_p);
    cand *c = work;
    double *prob = (double *)(c + n);
    float *tmp = (float *)(prob + n);

    for (int64_t i = 0; i < n; i++) tmp[i] = musae_temper(scores[i], s->temperature);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        c[m].s = tmp[i];
        c[m].i = (int32_t)i;
        m += tmp[i] > -INFINITY;
    }
    MUSAE_ASSERT(m > 0, "no finite score to sample from");
    qsort(c, (size_t)m, sizeof(cand), cmp_cand);

    /* top-k: every score >= the k-th largest survives (HF removes scores < kth, so ties stay) */
    if (s->top_k > 0 && s->top_k < m) {
        const float thr = c[s->top_k - 1].s;
        int64_t keep = s->top_k;
        while (keep < m && c[keep].s >= thr) keep++;
        m = keep;
    }
    const double mx = c[0].s;
    double total = 0;
    /* musae_exp_neg, not exp: the GPU sampler must compute the same bits (kernels/sample_rule.h) */
    for (int64_t j = 0; j < m; j++) total += prob[j] = musae_exp_neg((double)c[j].s - mx);
    /* top-p: HF drops the tokens whose ascending cumulative probability is <= 1 - p; read from the top,
     * candidate j stays while the mass strictly before it is < p (the first one always stays) */
    if (s->top_p < 1.0f) {
        double before = prob[0];
        int64_t keep = 1;
        while (keep < m && before / total < (double)s->top_p) before += prob[keep++];
        m = keep;
    }
    double mass = 0;
    for (int64_t j = 0; j < m; j++) mass += prob[j];
    const double target = (double)u * mass;
    double acc = 0;
    for (int64_t j = 0; j < m; j++) {
        acc += prob[j];
        if (acc > target) return c[j].i;
    }
    return c[m - 1].i;
}
