/* The distributed SAE step (sae/sae_dist.h): phases around the same CPU ops as the one-process step, plus the
 * candidate exchange of the latent-sharded and batch-top-k selections, and the gather to the ordinary layout. */
#include "sae/sae_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

struct sae_dist_bufs {
    int64_t cap;       /* candidates one rank sends: batch·max(k, k_aux) */
    sae_cand *mine;    /* [cap] */
    sae_cand *all;     /* [P, cap] */
    uint8_t *sel;      /* [P·cap] batch-top-k: which gathered candidates were selected */
    sae_codes merged;  /* [batch rows] a global per-row selection (global latents) */
    int64_t *fired;    /* [Ml] data-parallel: latents selected on any rank */
    float *part;       /* [d] latent: db_dec's −Σ_i db_enc[i]·W_enc[i] over own latents */
    double *sums;      /* [d] data: Σx of the global batch */
};

void sae_dist_slice(int64_t n, int r, int P, int64_t *lo, int64_t *hi) {
    *lo = n * r / P;
    *hi = n * (r + 1) / P;
}

void sae_dist_bufs_free(struct sae_dist_bufs *b) {
    if (!b) return;
    free(b->mine);
    free(b->all);
    free(b->sel);
    free(b->merged.ptr);
    free(b->merged.idx);
    free(b->merged.val);
    free(b->fired);
    free(b->part);
    free(b->sums);
    free(b);
}

void sae_dist_trainer_init(sae_trainer *t, const sae_config *cfg, int64_t batch, const musae_dist *d,
                           sae_dist_mode mode) {
    if (mode == SAE_DIST_NONE || d->world == 1) {
        sae_trainer_init(t, cfg, batch);
        return;
    }
    const int P = d->world;
    int64_t m0 = 0, m1 = cfg->M;
    if (mode == SAE_DIST_LATENT) {
        MUSAE_ASSERT(cfg->M >= P, "%d latents over %d ranks", cfg->M, P);
        sae_dist_slice(cfg->M, d->rank, P, &m0, &m1);
    }
    sae_trainer_init_shard(t, cfg, batch, m0, m1 - m0);
    t->dist_mode = mode;
    t->dist = d;
    struct sae_dist_bufs *b = musae_xcalloc(1, sizeof *b);
    const int64_t kk = cfg->k > cfg->k_aux ? cfg->k : cfg->k_aux;
    b->cap = batch * kk;
    if (mode == SAE_DIST_LATENT || cfg->batch_topk) {
        b->mine = musae_xmalloc(sizeof(sae_cand) * (size_t)b->cap);
        b->all = musae_xmalloc(sizeof(sae_cand) * (size_t)(P * b->cap));
        b->sel = musae_xmalloc((size_t)(P * b->cap));
        b->merged.cap = b->cap;
        b->merged.ptr = musae_xcalloc((size_t)batch + 1, sizeof(int64_t));
        b->merged.idx = musae_xmalloc(sizeof(int32_t) * (size_t)b->cap);
        b->merged.val = musae_xmalloc(sizeof(float) * (size_t)b->cap);
    }
    b->fired = musae_xcalloc((size_t)t->Ml, sizeof(int64_t));
    b->part = musae_xcalloc((size_t)cfg->d, sizeof(float));
    b->sums = musae_xcalloc((size_t)cfg->d, sizeof(double));
    t->xb = b;
}

/* ---- phase 3: selections ---------------------------------------------------------------------------------- */

/* The order of both selections: larger value first, then lower row, then lower latent (a strict total order,
 * since (row, latent) pairs are unique, so any sort gives the same result). */
static int cand_cmp(const void *pa, const void *pb) {
    const sae_cand *a = pa, *b = pb;
    if (a->val != b->val) return a->val > b->val ? -1 : 1;
    if (a->row != b->row) return a->row < b->row ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

void sae_dist_merge_rows(const sae_cand *cand, int P, int64_t N, int64_t kc, int k, sae_codes *out) {
    MUSAE_ASSERT(out->cap >= N * k && k >= 0, "merged codes hold %lld entries, need %lld", (long long)out->cap,
                 (long long)(N * k));
    int32_t *cnt = musae_xmalloc(sizeof(int32_t) * (size_t)N + 4);
#pragma omp parallel
    {
        sae_cand *row = musae_xmalloc(sizeof(sae_cand) * (size_t)(P * kc) + 1);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            int64_t m = 0;
            for (int r = 0; r < P; r++)
                for (int64_t j = 0; j < kc; j++) {
                    const sae_cand *c = &cand[((int64_t)r * N + n) * kc + j];
                    if (c->val > 0.0f) row[m++] = *c;
                }
            qsort(row, (size_t)m, sizeof *row, cand_cmp); /* one row: the order is value, then latent */
            const int64_t take = m < k ? m : k;
            for (int64_t e = 0; e < take; e++) {
                out->idx[n * k + e] = row[e].idx;
                out->val[n * k + e] = row[e].val;
            }
            cnt[n] = (int32_t)take;
        }
        free(row);
    }
    /* rows were written at n·k; pack them (entries only move left) */
    int64_t at = 0;
    out->ptr[0] = 0;
    for (int64_t n = 0; n < N; n++) {
        if (at != n * k) {
            memmove(out->idx + at, out->idx + n * k, sizeof(int32_t) * (size_t)cnt[n]);
            memmove(out->val + at, out->val + n * k, sizeof(float) * (size_t)cnt[n]);
        }
        at += cnt[n];
        out->ptr[n + 1] = at;
    }
    out->n_rows = N;
    free(cnt);
}

float sae_dist_select_batch(const sae_cand *cand, int64_t n, int64_t total, uint8_t *sel) {
    typedef struct {
        sae_cand c;
        int64_t pos;
    } item;
    item *it = musae_xmalloc(sizeof(item) * (size_t)n + 1);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (cand[i].val > 0.0f) it[m++] = (item){cand[i], i};
    /* item starts with its candidate, so cand_cmp orders items (pos never decides: (row, latent) is unique) */
    qsort(it, (size_t)m, sizeof *it, cand_cmp);
    if (n > 0) memset(sel, 0, (size_t)n);
    const int64_t take = m < total ? m : total;
    for (int64_t e = 0; e < take; e++) sel[it[e].pos] = 1;
    const float min_sel = take > 0 ? it[take - 1].c.val : 0.0f;
    free(it);
    return min_sel;
}

/* Codes (local latents, rows of this rank) → candidates with global rows and latents, padded to `width` per
 * row (per-row exchange) or to `width` in all (batch exchange, rows = 0). */
static void to_cands(const sae_codes *c, int64_t row0, int64_t m0, int64_t width, int per_row, sae_cand *out) {
    const int64_t N = c->n_rows;
    if (per_row) {
        for (int64_t n = 0; n < N; n++) {
            const int64_t e0 = c->ptr[n], cnt = c->ptr[n + 1] - e0;
            MUSAE_ASSERT(cnt <= width, "row %lld holds %lld entries, width %lld", (long long)n, (long long)cnt,
                         (long long)width);
            for (int64_t j = 0; j < width; j++)
                out[n * width + j] = j < cnt ? (sae_cand){c->val[e0 + j], (int32_t)(row0 + n), (int32_t)(m0 + c->idx[e0 + j])}
                                             : (sae_cand){0.0f, (int32_t)(row0 + n), -1};
        }
        return;
    }
    const int64_t nnz = c->ptr[N];
    MUSAE_ASSERT(nnz <= width, "%lld entries, width %lld", (long long)nnz, (long long)width);
    for (int64_t n = 0; n < N; n++)
        for (int64_t e = c->ptr[n]; e < c->ptr[n + 1]; e++)
            out[e] = (sae_cand){c->val[e], (int32_t)(row0 + n), (int32_t)(m0 + c->idx[e])};
    for (int64_t e = nnz; e < width; e++) out[e] = (sae_cand){0.0f, -1, -1};
}

/* Latent-sharded per-row selection: this rank's local top-`width` of every row becomes the global top-`k`
 * restricted to its latents (local indices, in the global order: best first). */
static void exchange_rows(sae_trainer *t, sae_codes *c, int64_t N, int width, int k) {
    struct sae_dist_bufs *b = t->xb;
    const int P = t->dist->world;
    to_cands(c, 0, t->m0, width, 1, b->mine);
    musae_dist_allgather(t->dist, b->mine, b->all, (size_t)(N * width), sizeof(sae_cand));
    sae_dist_merge_rows(b->all, P, N, width, k, &b->merged);
    const int64_t lo = t->m0, hi = t->m0 + t->Ml;
    int64_t at = 0;
    c->ptr[0] = 0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t e = b->merged.ptr[n]; e < b->merged.ptr[n + 1]; e++)
            if (b->merged.idx[e] >= lo && b->merged.idx[e] < hi) {
                c->idx[at] = (int32_t)(b->merged.idx[e] - lo);
                c->val[at++] = b->merged.val[e];
            }
        c->ptr[n + 1] = at;
    }
    c->n_rows = N;
}

/* Batch-top-k over all ranks: every rank's local top `total` (rows row0.., latents m0..) are candidates; the
 * global top `total` is selected and each rank keeps its selected entries. Returns the smallest selected. */
static float exchange_batch(sae_trainer *t, int64_t row0, int64_t total) {
    struct sae_dist_bufs *b = t->xb;
    const int P = t->dist->world, R = t->dist->rank;
    sae_codes *c = &t->codes;
    to_cands(c, row0, t->m0, total, 0, b->mine);
    musae_dist_allgather(t->dist, b->mine, b->all, (size_t)total, sizeof(sae_cand));
    const float min_sel = sae_dist_select_batch(b->all, P * total, total, b->sel);
    const uint8_t *keep = b->sel + (int64_t)R * total; /* this rank's candidates, in its codes' entry order */
    int64_t at = 0, e = 0;
    for (int64_t n = 0; n < c->n_rows; n++) {
        for (; e < c->ptr[n + 1]; e++)
            if (keep[e]) {
                c->idx[at] = c->idx[e];
                c->val[at++] = c->val[e];
            }
        c->ptr[n + 1] = at;
    }
    return min_sel;
}

/* ---- the step --------------------------------------------------------------------------------------------- */

/* Σ_n ‖x_n − mean‖² of the global batch from this rank's rows x [nl, d] (n rows in all): the mean from the
 * all-reduced Σx, then the all-reduced squares (in double; not Σ‖x‖² − n‖mean‖², which cancels when the mean
 * is large, as in residual streams). */
static double global_total_variance(const sae_trainer *t, const float *x, int64_t nl, int64_t n) {
    const int64_t d = t->cfg.d;
    double *sum = t->xb->sums;
    memset(sum, 0, sizeof(double) * (size_t)d);
    for (int64_t r = 0; r < nl; r++)
        for (int64_t j = 0; j < d; j++) sum[j] += x[r * d + j];
    musae_dist_allreduce_f64(t->dist, sum, (size_t)d, MUSAE_DIST_SUM);
    for (int64_t j = 0; j < d; j++) sum[j] /= (double)n;
    double tv = 0;
    for (int64_t r = 0; r < nl; r++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) {
            double c = x[r * d + j] - sum[j];
            s += c * c;
        }
        tv += s;
    }
    musae_dist_allreduce_f64(t->dist, &tv, 1, MUSAE_DIST_SUM);
    return tv;
}

void sae_dist_step(sae_trainer *t, const float *x_raw, int64_t n, sae_step_stats *out) {
    const sae_config *c = &t->cfg;
    const musae_dist *D = t->dist;
    struct sae_dist_bufs *b = t->xb;
    const int latent = t->dist_mode == SAE_DIST_LATENT, R = D->rank;
    const int64_t d = c->d, M = c->M, Ml = t->Ml;
    MUSAE_ASSERT(t->dist_mode == SAE_DIST_DATA || latent, "dist mode %d", t->dist_mode);
    MUSAE_ASSERT(n > 0 && n <= t->batch, "batch of %lld rows (capacity %lld)", (long long)n, (long long)t->batch);

    /* 1 prepare: the rows this rank sees (data: its slice; latent: all) */
    int64_t r0 = 0, r1 = n;
    if (!latent) sae_dist_slice(n, R, D->world, &r0, &r1);
    const int64_t nl = r1 - r0;
    sae_step_load_rows(t, x_raw, r0, nl);
    int64_t n_dead = sae_step_mark_dead(t, Ml);
    if (latent) musae_dist_allreduce_i64(D, &n_dead, 1, MUSAE_DIST_SUM);
    const int use_aux = c->auxk_alpha > 0 && c->k_aux > 0 && n_dead > 0;
    const int k_aux = use_aux ? (int)(n_dead < c->k_aux ? n_dead : c->k_aux) : 0;
    const double aux_scale = use_aux ? fmin((double)n_dead / c->k_aux, 1.0) : 0.0;
    /* a shard cannot select more than it holds */
    const int k_loc = (int)(c->k < Ml ? c->k : Ml), kaux_loc = (int)(k_aux < Ml ? k_aux : Ml);

    /* 2 encode */
    double t0 = musae_now();
    const int64_t total = n * c->k;
    if (c->batch_topk) {
        sae_cpu_encode(t->xc, t->p.W_enc, t->p.b_enc, nl, d, Ml, 0, use_aux ? t->dead : NULL, kaux_loc, &t->codes,
                       &t->aux, t->pre);
        sae_cpu_batch_topk(t->pre, nl, Ml, total, &t->codes);
    } else {
        sae_cpu_encode(t->xc, t->p.W_enc, t->p.b_enc, nl, d, Ml, k_loc, use_aux ? t->dead : NULL, kaux_loc, &t->codes,
                       &t->aux, NULL);
    }
    /* 3 select */
    float min_sel = 0.0f;
    if (c->batch_topk) min_sel = exchange_batch(t, r0, total);
    else if (latent) exchange_rows(t, &t->codes, n, c->k, c->k);
    if (use_aux && latent) exchange_rows(t, &t->aux, n, k_aux, k_aux);
    double t1 = musae_now();

    /* 4 decode: latent shards hold partial sums; b_dec is added once */
    sae_cpu_decode(&t->codes, t->p.W_dec, latent && R != 0 ? NULL : t->p.b_dec, d, t->xhat);
    if (latent) musae_dist_allreduce_f32(D, t->xhat, (size_t)(n * d), MUSAE_DIST_SUM);
    if (use_aux) {
        sae_cpu_decode(&t->aux, t->p.W_dec, NULL, d, t->ehat);
        if (latent) musae_dist_allreduce_f32(D, t->ehat, (size_t)(n * d), MUSAE_DIST_SUM);
    }
    /* 5 loss */
    const double tv = latent ? sae_cpu_total_variance(t->x, n, d) : global_total_variance(t, t->x, nl, n);
    if (!(tv > 0)) sae_fail_constant_batch(n, tv); /* every rank sees the same tv: all fail alike */
    double loss[2];
    loss[0] = sae_cpu_loss_grad(t->x, t->xhat, use_aux ? t->ehat : NULL, nl, d, tv, (float)(c->auxk_alpha * aux_scale),
                                t->g_xhat, t->g_ehat, &loss[1]);
    if (!latent) musae_dist_allreduce_f64(D, loss, 2, MUSAE_DIST_SUM);
    double t2 = musae_now();

    /* 6 backward */
    sae_cpu_backward(&t->codes, use_aux ? &t->aux : NULL, t->g_xhat, use_aux ? t->g_ehat : NULL, t->xc, t->p.W_enc,
                     t->p.W_dec, d, Ml, t->g.W_enc, t->g.b_enc, t->g.W_dec, t->g.b_dec, t->scratch);
    /* 7 reduce */
    if (!latent) {
        musae_dist_allreduce_f32(D, t->g.base, (size_t)sae_params_numel(d, M), MUSAE_DIST_SUM);
    } else {
        /* xc = x − b_dec feeds every shard's encoder: db_dec = Σ_n g_xhat[n] − Σ_{all i} db_enc[i]·W_enc[i] */
        float *part = b->part;
        memset(part, 0, sizeof(float) * (size_t)d);
        for (int64_t i = 0; i < Ml; i++) {
            const float g = t->g.b_enc[i];
            if (g == 0.0f) continue;
            for (int64_t j = 0; j < d; j++) part[j] -= g * t->p.W_enc[i * d + j];
        }
        musae_dist_allreduce_f32(D, part, (size_t)d, MUSAE_DIST_SUM);
        float *db = t->g.b_dec;
        memset(db, 0, sizeof(float) * (size_t)d);
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < d; j++) db[j] += t->g_xhat[r * d + j];
        for (int64_t j = 0; j < d; j++) db[j] += part[j];
    }

    /* 8 update */
    sae_trainer_update(t, t0, t1, t2);

    /* 9 counters and stats */
    int64_t nnz = t->codes.ptr[t->codes.n_rows];
    for (int64_t i = 0; i < Ml; i++) t->since_fired[i] += n;
    if (latent) {
        for (int64_t e = 0; e < nnz; e++) t->since_fired[t->codes.idx[e]] = 0;
    } else {
        memset(b->fired, 0, sizeof(int64_t) * (size_t)Ml);
        for (int64_t e = 0; e < nnz; e++) b->fired[t->codes.idx[e]] = 1;
        musae_dist_allreduce_i64(D, b->fired, (size_t)Ml, MUSAE_DIST_MAX);
        for (int64_t i = 0; i < Ml; i++)
            if (b->fired[i]) t->since_fired[i] = 0;
    }
    musae_dist_allreduce_i64(D, &nnz, 1, MUSAE_DIST_SUM);
    if (c->batch_topk && nnz > 0)
        t->threshold = t->step == 0 ? min_sel : 0.999 * t->threshold + 0.001 * min_sel;
    t->step++;
    t->tokens += n;
    if (out) {
        out->fvu = loss[0];
        out->auxk = aux_scale * loss[1];
        out->loss = loss[0] + c->auxk_alpha * out->auxk;
        out->l0 = (double)nnz / (double)n;
        out->dead_frac = (double)n_dead / (double)M;
    }
}

/* ---- the ordinary layout ---------------------------------------------------------------------------------- */

/* FNV-1a over the bytes of n floats: replicas must agree bit for bit. */
static uint64_t hash_floats(const float *p, int64_t n, uint64_t h) {
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < (size_t)n * sizeof(float); i++) h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

/* Aborts unless every rank holds the same bits: weights are replicated by identical updates, which needs
 * MPI's reductions to deliver the same sum to every rank (OpenMPI's do; the standard only advises it). */
static void check_replicas(const sae_trainer *t, const float *p, int64_t n, const char *what) {
    int64_t h[2];
    h[0] = (int64_t)(hash_floats(p, n, 1469598103934665603ull) >> 1);
    h[1] = -h[0];
    musae_dist_allreduce_i64(t->dist, h, 2, MUSAE_DIST_MAX);
    MUSAE_ASSERT(h[0] == -h[1], "the ranks' replicated %s differ (MPI reductions gave ranks different sums?)", what);
}

static void gather_rows(const sae_trainer *t, const void *mine, void *all, int64_t row_elems, size_t elem) {
    const int P = t->dist->world;
    size_t *counts = musae_xmalloc(sizeof(size_t) * (size_t)P);
    for (int r = 0; r < P; r++) {
        int64_t lo, hi;
        sae_dist_slice(t->cfg.M, r, P, &lo, &hi);
        counts[r] = (size_t)((hi - lo) * row_elems);
    }
    musae_dist_gatherv(t->dist, mine, (size_t)(t->Ml * row_elems), all, counts, elem, 0);
    free(counts);
}

static void gather_params(const sae_trainer *t, const sae_params *mine, sae_params *all) {
    const int64_t d = t->cfg.d;
    gather_rows(t, mine->W_enc, all ? all->W_enc : NULL, d, sizeof(float));
    gather_rows(t, mine->b_enc, all ? all->b_enc : NULL, 1, sizeof(float));
    gather_rows(t, mine->W_dec, all ? all->W_dec : NULL, d, sizeof(float));
    if (all) memcpy(all->b_dec, mine->b_dec, sizeof(float) * (size_t)d);
}

const sae_trainer *sae_dist_full(const sae_trainer *t, sae_trainer *tmp) {
    memset(tmp, 0, sizeof *tmp);
    if (t->dist_mode == SAE_DIST_NONE) return t;
    const int root = t->dist->rank == 0;
    if (t->dist_mode == SAE_DIST_DATA) {
        check_replicas(t, t->p.base, sae_params_numel(t->cfg.d, t->cfg.M), "weights");
        check_replicas(t, t->m.base, sae_params_numel(t->cfg.d, t->cfg.M), "Adam moments");
        return root ? t : NULL;
    }
    check_replicas(t, t->p.b_dec, t->cfg.d, "b_dec");
    const int64_t d = t->cfg.d, M = t->cfg.M;
    if (root) {
        tmp->cfg = t->cfg;
        tmp->m0 = 0;
        tmp->Ml = M;
        tmp->batch = t->batch;
        tmp->step = t->step;
        tmp->tokens = t->tokens;
        tmp->scale = t->scale;
        tmp->threshold = t->threshold;
        sae_params_alloc(&tmp->p, d, M);
        sae_params_alloc(&tmp->m, d, M);
        sae_params_alloc(&tmp->v, d, M);
        tmp->since_fired = musae_xmalloc(sizeof(int64_t) * (size_t)M);
    }
    gather_params(t, &t->p, root ? &tmp->p : NULL);
    gather_params(t, &t->m, root ? &tmp->m : NULL);
    gather_params(t, &t->v, root ? &tmp->v : NULL);
    gather_rows(t, t->since_fired, root ? tmp->since_fired : NULL, 1, sizeof(int64_t));
    return root ? tmp : NULL;
}

void sae_dist_full_free(sae_trainer *tmp) {
    if (!tmp->p.base) return;
    sae_params_free(&tmp->p);
    sae_params_free(&tmp->m);
    sae_params_free(&tmp->v);
    free(tmp->since_fired);
    memset(tmp, 0, sizeof *tmp);
}
