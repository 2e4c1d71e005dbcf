/* SAE inference on raw activations, held-out metrics, and planted-concept recovery. */
#include <math.h>
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/cpu_ops.h"
#include "sae/sae.h"

void sae_model_from_trainer(sae_model *m, const sae_trainer *t, int layer, const char *model) {
    memset(m, 0, sizeof *m);
    const int64_t d = t->cfg.d, M = t->cfg.M;
    const float s = t->scale;
    m->d = (int)d;
    m->M = (int)M;
    m->k = t->cfg.k;
    m->batch_topk = t->cfg.batch_topk;
    m->layer = layer;
    snprintf(m->model, sizeof m->model, "%s", model ? model : "");
    m->scale = s;
    m->threshold = t->threshold / s;
    sae_params_alloc(&m->p, d, M);
    /* with x_train = s·x: W_enc(s·x − b_dec) + b_enc = s·(W_enc(x − b_dec/s) + b_enc/s), so the raw-space SAE
     * has b_enc/s and b_dec/s, its codes are z/s, and W_dec (unit rows) is unchanged */
    memcpy(m->p.W_enc, t->p.W_enc, sizeof(float) * (size_t)(M * d));
    memcpy(m->p.W_dec, t->p.W_dec, sizeof(float) * (size_t)(M * d));
    for (int64_t i = 0; i < M; i++) m->p.b_enc[i] = t->p.b_enc[i] / s;
    for (int64_t j = 0; j < d; j++) m->p.b_dec[j] = t->p.b_dec[j] / s;
}

void sae_model_free(sae_model *m) {
    sae_params_free(&m->p);
    memset(m, 0, sizeof *m);
}

void sae_model_encode(const sae_model *m, const float *x, int64_t n, sae_codes *codes, float *xc, float *pre) {
    const int64_t d = m->d;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) xc[r * d + j] = x[r * d + j] - m->p.b_dec[j];
    if (m->batch_topk) {
        MUSAE_ASSERT(pre, "batch-top-k needs the [n, M] pre-activation buffer");
        sae_cpu_encode(xc, m->p.W_enc, m->p.b_enc, n, d, m->M, 0, NULL, 0, codes, NULL, pre);
        sae_cpu_batch_topk(pre, n, m->M, n * m->k, codes);
    } else {
        sae_cpu_encode(xc, m->p.W_enc, m->p.b_enc, n, d, m->M, m->k, NULL, 0, codes, NULL, NULL);
    }
}

static void codes_reserve(sae_codes *c, int64_t cap) {
    if (c->cap >= cap) return;
    c->idx = musae_xrealloc(c->idx, sizeof(int32_t) * (size_t)(cap + 1));
    c->val = musae_xrealloc(c->val, sizeof(float) * (size_t)(cap + 1));
    c->cap = cap;
}

/* Descending by value, ties to the lower latent: the order sae_cpu_encode gives its rows. */
typedef struct {
    float v;
    int32_t i;
} code_entry;

static int cmp_code_desc(const void *x, const void *y) {
    const code_entry *a = x, *b = y;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

static void sort_row(int32_t *idx, float *val, int64_t n) {
    code_entry *e = musae_xmalloc(sizeof(code_entry) * (size_t)(n + 1));
    for (int64_t a = 0; a < n; a++) e[a].v = val[a], e[a].i = idx[a];
    qsort(e, (size_t)n, sizeof *e, cmp_code_desc);
    for (int64_t a = 0; a < n; a++) val[a] = e[a].v, idx[a] = e[a].i;
    free(e);
}

void sae_model_infer(const sae_model *m, const float *x, int64_t n, sae_codes *codes, float *xc, float *pre) {
    const int64_t d = m->d, M = m->M;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) xc[r * d + j] = x[r * d + j] - m->p.b_dec[j];
    if (!m->batch_topk) {
        codes_reserve(codes, n * m->k);
        sae_cpu_encode(xc, m->p.W_enc, m->p.b_enc, n, d, M, m->k, NULL, 0, codes, NULL, NULL);
        return;
    }
    MUSAE_ASSERT(pre, "batch-top-k needs the [n, M] pre-activation buffer");
    MUSAE_ASSERT(m->threshold > 0, "batch-top-k SAE without an inference threshold");
    codes_reserve(codes, n); /* the encoder reads a (k = 0, empty) heap's slot */
    sae_cpu_encode(xc, m->p.W_enc, m->p.b_enc, n, d, M, 0, NULL, 0, codes, NULL, pre);
    sae_model_threshold_codes(m, pre, n, codes);
}

void sae_model_threshold_codes(const sae_model *m, const float *pre, int64_t n, sae_codes *codes) {
    const int64_t M = m->M;
    MUSAE_ASSERT(m->threshold > 0, "batch-top-k SAE without an inference threshold");
    const float thr = (float)m->threshold;
    int64_t *cnt = codes->ptr;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
        int64_t c = 0;
        for (int64_t j = 0; j < M; j++) c += pre[r * M + j] > thr;
        cnt[r + 1] = c;
    }
    cnt[0] = 0;
    for (int64_t r = 0; r < n; r++) cnt[r + 1] += cnt[r];
    codes_reserve(codes, cnt[n]);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
        int64_t at = codes->ptr[r];
        for (int64_t j = 0; j < M; j++)
            if (pre[r * M + j] > thr) {
                codes->idx[at] = (int32_t)j;
                codes->val[at++] = pre[r * M + j];
            }
        sort_row(codes->idx + codes->ptr[r], codes->val + codes->ptr[r], at - codes->ptr[r]);
    }
    codes->n_rows = n;
}

void sae_eval_init(sae_eval_acc *a, int d, int M) {
    memset(a, 0, sizeof *a);
    a->d = d;
    a->M = M;
    a->sum = musae_xcalloc((size_t)d, sizeof(double));
    a->sum_sq = musae_xcalloc((size_t)d, sizeof(double));
    a->fired = musae_xcalloc((size_t)M, sizeof(int64_t));
}

void sae_eval_free(sae_eval_acc *a) {
    free(a->sum);
    free(a->sum_sq);
    free(a->fired);
    memset(a, 0, sizeof *a);
}

void sae_eval_batch(sae_eval_acc *a, const sae_model *m, const float *x, int64_t n) {
    const int64_t d = m->d, M = m->M;
    MUSAE_ASSERT(a->d == m->d && a->M == m->M, "accumulator for another SAE");
    float *xc = musae_xmalloc(sizeof(float) * (size_t)(n * d)), *xhat = musae_xmalloc(sizeof(float) * (size_t)(n * d));
    float *pre = m->batch_topk ? musae_xmalloc(sizeof(float) * (size_t)(n * M)) : NULL;
    sae_codes c = {0, n * m->k, musae_xcalloc((size_t)n + 1, sizeof(int64_t)),
                   musae_xmalloc(sizeof(int32_t) * (size_t)(n * m->k + 1)),
                   musae_xmalloc(sizeof(float) * (size_t)(n * m->k + 1))};
    sae_model_encode(m, x, n, &c, xc, pre);
    sae_cpu_decode(&c, m->p.W_dec, m->p.b_dec, d, xhat);
    double *err = musae_xmalloc(sizeof(double) * (size_t)n * 2 + 16), *cosr = err + n;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
        double e2 = 0, xx = 0, hh = 0, xh = 0;
        for (int64_t j = 0; j < d; j++) {
            double xv = x[r * d + j], hv = xhat[r * d + j];
            e2 += (xv - hv) * (xv - hv);
            xx += xv * xv;
            hh += hv * hv;
            xh += xv * hv;
        }
        err[r] = e2;
        cosr[r] = xx > 0 && hh > 0 ? xh / sqrt(xx * hh) : 0.0;
    }
    for (int64_t r = 0; r < n; r++) {
        a->sq_err += err[r];
        a->cos += cosr[r];
        for (int64_t j = 0; j < d; j++) {
            a->sum[j] += x[r * d + j];
            a->sum_sq[j] += (double)x[r * d + j] * x[r * d + j];
        }
    }
    a->nnz += (double)c.ptr[n];
    for (int64_t e = 0; e < c.ptr[n]; e++) a->fired[c.idx[e]]++;
    a->n += n;
    free(err);
    free(xc);
    free(xhat);
    free(pre);
    free(c.ptr);
    free(c.idx);
    free(c.val);
}

sae_eval_result sae_eval_finish(const sae_eval_acc *a) {
    sae_eval_result r = {0};
    r.recovered = NAN;
    r.tokens = a->n;
    if (a->n == 0) return r;
    double var = 0;
    for (int j = 0; j < a->d; j++) var += a->sum_sq[j] - a->sum[j] * a->sum[j] / (double)a->n;
    r.fvu = var > 0 ? a->sq_err / var : NAN;
    r.mse = a->sq_err / ((double)a->n * a->d);
    r.l0 = a->nnz / (double)a->n;
    r.cos = a->cos / (double)a->n;
    int64_t never = 0;
    for (int i = 0; i < a->M; i++) never += a->fired[i] == 0;
    r.dead_frac = (double)never / a->M;
    return r;
}

double sae_recovered_fraction(const sae_model *m, const float *truth, int64_t G, double thr) {
    const int64_t d = m->d, M = m->M, bg = 256;
    float *t = musae_xmalloc(sizeof(float) * (size_t)(G * d)), *w = musae_xmalloc(sizeof(float) * (size_t)(M * d));
    memcpy(t, truth, sizeof(float) * (size_t)(G * d));
    memcpy(w, m->p.W_dec, sizeof(float) * (size_t)(M * d));
    sae_cpu_normalize_rows(t, G, d);
    sae_cpu_normalize_rows(w, M, d);
    float *sim = musae_xmalloc(sizeof(float) * (size_t)(bg * M));
    int64_t hit = 0;
    for (int64_t g0 = 0; g0 < G; g0 += bg) {
        const int64_t ng = g0 + bg <= G ? bg : G - g0;
        cpu_gemm(0, 1, ng, M, d, 1.0f, t + g0 * d, d, w, d, 0.0f, sim, M);
        for (int64_t g = 0; g < ng; g++) {
            float best = -2.0f;
            for (int64_t i = 0; i < M; i++) best = sim[g * M + i] > best ? sim[g * M + i] : best;
            hit += best > thr;
        }
    }
    free(sim);
    free(t);
    free(w);
    return (double)hit / (double)G;
}
