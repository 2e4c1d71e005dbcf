/* The SAE trainer: config and schedule, weight init, one training step (kernels/sae_ops.h), and the
 * geometric median for b_dec. */
#include "sae/sae.h"

#include <math.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "sae/sae_dist.h"

/* Philox streams of an SAE (seed = cfg.seed) */
#define STREAM_W_DEC 0x5AE0001ull

void sae_config_defaults(sae_config *c, int d, int M, int k) {
    memset(c, 0, sizeof *c);
    c->d = d;
    c->M = M;
    c->k = k;
    c->k_aux = d / 2;
    c->auxk_alpha = 1.0f / 32.0f;
    c->dead_tokens = 10000000;
    c->warmup_steps = 1000;
    c->benc_lr_mult = 1.0f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 6.25e-10f;
    c->bdec_init = SAE_BDEC_MEDIAN;
}

float sae_lr_at(const sae_config *c, int64_t step) {
    double lr = c->lr > 0 ? c->lr : 4e-4 / sqrt((double)c->M / 16384.0);
    if (c->warmup_steps > 0 && step + 1 < c->warmup_steps) lr *= (double)(step + 1) / (double)c->warmup_steps;
    if (c->decay_frac > 0 && c->total_steps > 0) {
        double start = (1.0 - c->decay_frac) * (double)c->total_steps;
        if (step >= start) lr *= fmax(0.0, ((double)c->total_steps - (double)step) / ((double)c->total_steps - start));
    }
    return (float)lr;
}

int64_t sae_params_numel(int64_t d, int64_t M) { return 2 * M * d + M + d; }

void sae_params_alloc(sae_params *p, int64_t d, int64_t M) {
    p->d = d;
    p->M = M;
    p->base = musae_xcalloc((size_t)sae_params_numel(d, M), sizeof(float));
    p->W_enc = p->base;
    p->b_enc = p->W_enc + M * d;
    p->W_dec = p->b_enc + M;
    p->b_dec = p->W_dec + M * d;
}

void sae_params_free(sae_params *p) {
    free(p->base);
    memset(p, 0, sizeof *p);
}

static void codes_alloc(sae_codes *c, int64_t rows, int64_t cap) {
    c->n_rows = 0;
    c->cap = cap;
    c->ptr = musae_xcalloc((size_t)rows + 1, sizeof(int64_t));
    c->idx = musae_xmalloc(sizeof(int32_t) * (size_t)(cap + 1));
    c->val = musae_xmalloc(sizeof(float) * (size_t)(cap + 1));
}

static void codes_free(sae_codes *c) {
    free(c->ptr);
    free(c->idx);
    free(c->val);
}

void sae_trainer_init(sae_trainer *t, const sae_config *cfg, int64_t batch) {
    sae_trainer_init_shard(t, cfg, batch, 0, cfg->M);
}

void sae_trainer_init_shard(sae_trainer *t, const sae_config *cfg, int64_t batch, int64_t m0, int64_t Ml) {
    MUSAE_ASSERT(cfg->d > 0 && cfg->M > 0 && cfg->k > 0 && cfg->k <= cfg->M, "d %d, M %d, k %d", cfg->d, cfg->M, cfg->k);
    MUSAE_ASSERT(cfg->k_aux >= 0 && cfg->k_aux <= cfg->M && batch > 0, "k_aux %d, batch %lld", cfg->k_aux, (long long)batch);
    MUSAE_ASSERT(m0 >= 0 && Ml > 0 && m0 + Ml <= cfg->M, "shard [%lld, +%lld) of %d latents", (long long)m0,
                 (long long)Ml, cfg->M);
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->m0 = m0;
    t->Ml = Ml;
    const int64_t d = cfg->d, M = Ml; /* every per-latent buffer holds this process's rows */
    sae_params_alloc(&t->p, d, M);
    sae_params_alloc(&t->g, d, M);
    sae_params_alloc(&t->m, d, M);
    sae_params_alloc(&t->v, d, M);
    t->since_fired = musae_xcalloc((size_t)M, sizeof(int64_t));
    t->dead = musae_xcalloc((size_t)M, 1);
    t->scale = 1.0f;
    t->batch = batch;
    const size_t bd = (size_t)(batch * d);
    t->x = musae_xmalloc(sizeof(float) * bd);
    t->xc = musae_xmalloc(sizeof(float) * bd);
    t->xhat = musae_xmalloc(sizeof(float) * bd);
    t->ehat = musae_xmalloc(sizeof(float) * bd);
    t->g_xhat = musae_xmalloc(sizeof(float) * bd);
    t->g_ehat = musae_xmalloc(sizeof(float) * bd);
    if (cfg->batch_topk) t->pre = musae_xmalloc(sizeof(float) * (size_t)(batch * M));
    codes_alloc(&t->codes, batch, batch * cfg->k);
    codes_alloc(&t->aux, batch, batch * cfg->k_aux);
    t->scratch = musae_xmalloc(sae_cpu_backward_scratch_bytes(batch, batch * (cfg->k + cfg->k_aux), M));
}

void sae_trainer_free(sae_trainer *t) {
    sae_params_free(&t->p);
    sae_params_free(&t->g);
    sae_params_free(&t->m);
    sae_params_free(&t->v);
    free(t->since_fired);
    free(t->dead);
    free(t->x);
    free(t->xc);
    free(t->xhat);
    free(t->ehat);
    free(t->g_xhat);
    free(t->g_ehat);
    free(t->pre);
    codes_free(&t->codes);
    codes_free(&t->aux);
    free(t->scratch);
    sae_dist_bufs_free(t->xb);
    memset(t, 0, sizeof *t);
}

void sae_geometric_median(const float *x, int64_t n, int64_t d, int max_iter, double tol, float *out) {
    MUSAE_ASSERT(n > 0, "empty sample");
    double *y = musae_xcalloc((size_t)d, sizeof(double)), *num = musae_xcalloc((size_t)d, sizeof(double));
    double *w = musae_xmalloc(sizeof(double) * (size_t)n);
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) y[j] += x[r * d + j];
    for (int64_t j = 0; j < d; j++) y[j] /= (double)n;
    for (int it = 0; it < max_iter; it++) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < n; r++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) {
                double c = x[r * d + j] - y[j];
                s += c * c;
            }
            w[r] = 1.0 / fmax(sqrt(s), 1e-8); /* a sample on the current estimate would weigh infinitely */
        }
        double wsum = 0;
        memset(num, 0, sizeof(double) * (size_t)d);
        for (int64_t r = 0; r < n; r++) {
            wsum += w[r];
            for (int64_t j = 0; j < d; j++) num[j] += w[r] * x[r * d + j];
        }
        double step = 0, norm = 0;
        for (int64_t j = 0; j < d; j++) {
            double nj = num[j] / wsum;
            step += (nj - y[j]) * (nj - y[j]);
            norm += nj * nj;
            y[j] = nj;
        }
        if (sqrt(step) <= tol * fmax(sqrt(norm), 1e-12)) break;
    }
    for (int64_t j = 0; j < d; j++) out[j] = (float)y[j];
    free(y);
    free(num);
    free(w);
}

void sae_trainer_init_weights(sae_trainer *t, const float *sample, int64_t n) {
    const int64_t d = t->cfg.d, M = t->Ml, m0 = t->m0;
    MUSAE_ASSERT(n > 0, "empty init sample");
    /* one scale for all inputs so that E‖s·x‖² = d */
    double sq = 0;
    for (int64_t r = 0; r < n; r++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)sample[r * d + j] * sample[r * d + j];
        sq += s;
    }
    sq /= (double)n;
    MUSAE_ASSERT(sq > 0, "the init sample is all zeros");
    t->scale = (float)sqrt((double)d / sq);
    float *xs = musae_xmalloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < n * d; i++) xs[i] = sample[i] * t->scale;
    memset(t->p.b_dec, 0, sizeof(float) * (size_t)d);
    if (t->cfg.bdec_init == SAE_BDEC_MEDIAN) sae_geometric_median(xs, n, d, 100, 1e-5, t->p.b_dec);
    else if (t->cfg.bdec_init == SAE_BDEC_MEAN) {
        for (int64_t j = 0; j < d; j++) {
            double s = 0;
            for (int64_t r = 0; r < n; r++) s += xs[r * d + j];
            t->p.b_dec[j] = (float)(s / (double)n);
        }
    }
    free(xs);
    /* W_dec rows: Gaussian (Box–Muller on Philox words keyed by the element index), then unit norm */
    const uint64_t seed = t->cfg.seed;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < d; j++) {
            musae_u32x4 r = musae_philox(seed, STREAM_W_DEC, (uint64_t)((m0 + i) * d + j));
            double u1 = ((double)(r.v[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(r.v[1] >> 8) / 16777216.0;
            t->p.W_dec[i * d + j] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
    sae_cpu_normalize_rows(t->p.W_dec, M, d);
    memcpy(t->p.W_enc, t->p.W_dec, sizeof(float) * (size_t)(M * d));
    memset(t->p.b_enc, 0, sizeof(float) * (size_t)M);
}

void sae_trainer_update(sae_trainer *t, double t0, double t1, double t2) {
    const double t3 = musae_now();
    const sae_config *c = &t->cfg;
    const int64_t d = c->d, Ml = t->Ml;
    const sae_adam_hparams h = {sae_lr_at(c, t->step), c->beta1, c->beta2, c->eps, t->step + 1};
    sae_cpu_adam(t->p.W_enc, t->g.W_enc, t->m.W_enc, t->v.W_enc, Ml * d, &h);
    sae_adam_hparams hb = h;
    hb.lr = h.lr * c->benc_lr_mult;
    sae_cpu_adam(t->p.b_enc, t->g.b_enc, t->m.b_enc, t->v.b_enc, Ml, &hb);
    sae_cpu_adam(t->p.b_dec, t->g.b_dec, t->m.b_dec, t->v.b_dec, d, &h);
    sae_cpu_adam_decoder(t->p.W_dec, t->g.W_dec, t->m.W_dec, t->v.W_dec, Ml, d, &h);
    const double t4 = musae_now();
    t->seconds[0] += t1 - t0;
    t->seconds[1] += t2 - t1;
    t->seconds[2] += t3 - t2;
    t->seconds[3] += t4 - t3;
}

void sae_fail_constant_batch(int64_t n, double tv) {
    musae_fail("a batch of %lld rows has total variance %g (every row the same): the loss (FVU) is undefined; the "
               "store's rows are constant, or --batch is too small", (long long)n, tv);
}

void sae_step_load_rows(sae_trainer *t, const float *x_raw, int64_t r0, int64_t n) {
    const int64_t d = t->cfg.d;
    const float s = t->scale, *b_dec = t->p.b_dec;
#pragma omp parallel for schedule(static) if (n * d > 65536)
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) {
            float v = x_raw[(r0 + r) * d + j] * s;
            t->x[r * d + j] = v;
            t->xc[r * d + j] = v - b_dec[j];
        }
}

int64_t sae_step_mark_dead(sae_trainer *t, int64_t m) {
    int64_t n_dead = 0;
    for (int64_t i = 0; i < m; i++) {
        t->dead[i] = t->since_fired[i] > t->cfg.dead_tokens;
        n_dead += t->dead[i];
    }
    return n_dead;
}

void sae_trainer_step(sae_trainer *t, const float *x_raw, int64_t n, sae_step_stats *out) {
    if (t->dist_mode != SAE_DIST_NONE) {
        sae_dist_step(t, x_raw, n, out);
        return;
    }
    const sae_config *c = &t->cfg;
    const int64_t d = c->d, M = c->M;
    MUSAE_ASSERT(n > 0 && n <= t->batch, "batch of %lld rows (capacity %lld)", (long long)n, (long long)t->batch);
    sae_step_load_rows(t, x_raw, 0, n);
    /* dead latents, from the counters before this batch (as sparsify) */
    const int64_t n_dead = sae_step_mark_dead(t, M);
    const int use_aux = c->auxk_alpha > 0 && c->k_aux > 0 && n_dead > 0;
    const int k_aux = use_aux ? (int)(n_dead < c->k_aux ? n_dead : c->k_aux) : 0;
    const double aux_scale = use_aux ? fmin((double)n_dead / c->k_aux, 1.0) : 0.0;

    double t0 = musae_now();
    float min_sel = 0.0f;
    if (c->batch_topk) {
        sae_cpu_encode(t->xc, t->p.W_enc, t->p.b_enc, n, d, M, 0, use_aux ? t->dead : NULL, k_aux, &t->codes,
                       &t->aux, t->pre);
        min_sel = sae_cpu_batch_topk(t->pre, n, M, n * c->k, &t->codes);
    } else {
        sae_cpu_encode(t->xc, t->p.W_enc, t->p.b_enc, n, d, M, c->k, use_aux ? t->dead : NULL, k_aux, &t->codes,
                       &t->aux, NULL);
    }
    double t1 = musae_now();
    sae_cpu_decode(&t->codes, t->p.W_dec, t->p.b_dec, d, t->xhat);
    if (use_aux) sae_cpu_decode(&t->aux, t->p.W_dec, NULL, d, t->ehat);
    const double tv = sae_cpu_total_variance(t->x, n, d);
    if (!(tv > 0)) sae_fail_constant_batch(n, tv);
    double aux_raw = 0;
    const double fvu = sae_cpu_loss_grad(t->x, t->xhat, use_aux ? t->ehat : NULL, n, d, tv,
                                         (float)(c->auxk_alpha * aux_scale), t->g_xhat, t->g_ehat, &aux_raw);
    double t2 = musae_now();
    sae_cpu_backward(&t->codes, use_aux ? &t->aux : NULL, t->g_xhat, use_aux ? t->g_ehat : NULL, t->xc, t->p.W_enc,
                     t->p.W_dec, d, M, t->g.W_enc, t->g.b_enc, t->g.W_dec, t->g.b_dec, t->scratch);

    sae_trainer_update(t, t0, t1, t2);

    /* firing: a latent fired when it was selected with a positive value in this batch */
    for (int64_t i = 0; i < M; i++) t->since_fired[i] += n;
    const int64_t nnz = t->codes.ptr[n];
    for (int64_t e = 0; e < nnz; e++) t->since_fired[t->codes.idx[e]] = 0;
    if (c->batch_topk && nnz > 0) /* dictionary_learning's inference threshold, in the training scale */
        t->threshold = t->step == 0 ? min_sel : 0.999 * t->threshold + 0.001 * min_sel;
    t->step++;
    t->tokens += n;
    if (out) {
        out->fvu = fvu;
        out->auxk = aux_scale * aux_raw;
        out->loss = fvu + c->auxk_alpha * out->auxk;
        out->l0 = (double)nnz / (double)n;
        out->dead_frac = (double)n_dead / (double)M;
    }
}
