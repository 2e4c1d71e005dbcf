/* musae analyze: the streaming pass and the per-feature statistics (analyze.h; the file layout is
 * eval/features_io.h, its definitions docs/ANALYZE.md). */
#include "eval/analyze.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/analyze_encoder.h"
#include "eval/analyze_merge.h"
#include "eval/analyze_neighbours.h"
#include "eval/exact_sum.h"
#include "eval/features_io.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/core/progress.h"
#include "host/core/sha256.h"

/* The fine histogram: quarter-octave bins, fine bin f holding [E(f), E(f+1)) with E(f) = 2^((f - 128) / 4) as
 * f32, so 256 bins span 2^-32 .. 2^32; values outside count in the end bins. After the pass the 64 output bins
 * are runs of w consecutive fine bins from the one holding the smallest active value, w the least that reaches
 * the largest: every output edge is a fine edge, so the output is exact, and log-spaced. */
enum { FINE_BINS = 256, FINE_ZERO = 128, FINE_PER_OCTAVE = 4 };
#define STREAM_RANDOM_CLIP 0x52414E44434C4950ull /* "RANDCLIP" + latent: random_clip draws */

static float fine_edge(int64_t f) { return (float)exp2((double)(f - FINE_ZERO) / FINE_PER_OCTAVE); }

static int fine_bin(float v, const float *E) {
    int f = (int)floorf(log2f(v) * FINE_PER_OCTAVE) + FINE_ZERO;
    f = f < 0 ? 0 : f > FINE_BINS - 1 ? FINE_BINS - 1 : f;
    while (f > 0 && v < E[f]) f--; /* log2f may round across an edge: the f32 edges decide */
    while (f < FINE_BINS - 1 && v >= E[f + 1]) f++;
    return f;
}

/* ---- per-SAE accumulator ---------------------------------------------------------------------------------- */

typedef struct {
    const sae_model *m;
    int64_t M, N;
    int64_t *n_active;           /* [M] */
    uint64_t *sum;               /* [M, EXACT_SUM_LIMBS] exact sum of active values (any order, any split) */
    float *max;                  /* [M] */
    uint32_t *fine;              /* [M, FINE_BINS] */
    int64_t *n_fired_clips;      /* [M] */
    float vmin, vmax;            /* smallest and largest active value of any latent */
    float *top_max;              /* [M, N] min-heap per latent of (clip max, clip): the root is the worst kept */
    int32_t *top_clip, *top_frame, *top_n;
    /* the clip being accumulated */
    int64_t cur;                 /* its output index, -1 before the first row */
    double *c_sum;               /* [M] */
    float *c_max;                /* [M] */
    int32_t *c_peak;             /* [M] frame of c_max's first occurrence */
    int32_t *touched;            /* [M] latents active in the clip, in first-seen order */
    int64_t n_touched;
    /* the per-clip table (CSR by output clip): indptr in memory, the entries in an unlinked file beside the
     * output, so memory does not grow with the store */
    int64_t *indptr, cap_clips;
    FILE *spill;
    char spill_name[4200];       /* its name before the unlink, for messages */
    int64_t nnz;
    analyze_encoder enc;
} acc;

/* One entry of the per-clip table as spilled. */
typedef struct {
    int32_t feat;
    float mean, max;
} cf_rec;

/* "a is worse than b" for the top-N: a smaller clip max, or the same max in a later clip. */
static inline int top_worse(float am, int32_t ac, float bm, int32_t bc) { return am < bm || (am == bm && ac > bc); }

static void top_sift_down(float *v, int32_t *c, int32_t *fr, int n, int p) {
    for (;;) {
        int l = 2 * p + 1, r = l + 1, w = p;
        if (l < n && top_worse(v[l], c[l], v[w], c[w])) w = l;
        if (r < n && top_worse(v[r], c[r], v[w], c[w])) w = r;
        if (w == p) return;
        float tv = v[p];
        int32_t tc = c[p], tf = fr[p];
        v[p] = v[w], c[p] = c[w], fr[p] = fr[w];
        v[w] = tv, c[w] = tc, fr[w] = tf;
        p = w;
    }
}

static void top_push(acc *a, int64_t i, float v, int32_t clip, int32_t frame) {
    float *hv = a->top_max + i * a->N;
    int32_t *hc = a->top_clip + i * a->N, *hf = a->top_frame + i * a->N;
    int n = a->top_n[i];
    if (n < a->N) {
        int c = n;
        while (c > 0) {
            int p = (c - 1) / 2;
            if (!top_worse(v, clip, hv[p], hc[p])) break;
            hv[c] = hv[p], hc[c] = hc[p], hf[c] = hf[p];
            c = p;
        }
        hv[c] = v, hc[c] = clip, hf[c] = frame;
        a->top_n[i] = n + 1;
    } else if (top_worse(hv[0], hc[0], v, clip)) {
        hv[0] = v, hc[0] = clip, hf[0] = frame;
        top_sift_down(hv, hc, hf, n, 0);
    }
}

static void acc_init(acc *a, const sae_model *m, int64_t N, int64_t block_rows, const char *out, int rank,
                     int on_gpu) {
    memset(a, 0, sizeof *a);
    const size_t M = (size_t)m->M;
    a->m = m;
    a->M = m->M;
    a->N = N;
    a->n_active = musae_xcalloc(M, sizeof(int64_t));
    a->sum = musae_xcalloc(M * EXACT_SUM_LIMBS, sizeof(uint64_t));
    a->max = musae_xcalloc(M, sizeof(float));
    a->fine = musae_xcalloc(M * FINE_BINS, sizeof(uint32_t));
    a->n_fired_clips = musae_xcalloc(M, sizeof(int64_t));
    a->vmin = INFINITY;
    a->vmax = 0;
    a->top_max = musae_xcalloc(M * (size_t)N, sizeof(float));
    a->top_clip = musae_xcalloc(M * (size_t)N, sizeof(int32_t));
    a->top_frame = musae_xcalloc(M * (size_t)N, sizeof(int32_t));
    a->top_n = musae_xcalloc(M, sizeof(int32_t));
    a->cur = -1;
    a->c_sum = musae_xcalloc(M, sizeof(double));
    a->c_max = musae_xcalloc(M, sizeof(float));
    a->c_peak = musae_xcalloc(M, sizeof(int32_t));
    a->touched = musae_xcalloc(M, sizeof(int32_t));
    a->cap_clips = 1024;
    a->indptr = musae_xcalloc((size_t)a->cap_clips + 1, sizeof(int64_t));
    char *spill = a->spill_name;
    snprintf(spill, sizeof a->spill_name, "%s.partial.cf%d", out, rank); /* one per rank: ranks may share the folder */
    a->spill = fopen(spill, "w+b");
    if (!a->spill) musae_fail("%s: cannot create: %s", spill, strerror(errno));
    unlink(spill); /* anonymous from now on: gone with the process, however it ends */
    analyze_encoder_init(&a->enc, m, block_rows, on_gpu);
}

static void acc_free(acc *a) {
    void *p[] = {a->n_active, a->sum, a->max, a->fine, a->n_fired_clips, a->top_max, a->top_clip, a->top_frame,
                 a->top_n, a->c_sum, a->c_max, a->c_peak, a->touched, a->indptr};
    if (a->spill) fclose(a->spill);
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    analyze_encoder_free(&a->enc);
    memset(a, 0, sizeof *a);
}

static int cmp_i32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* Closes clip a->cur, which had `frames` finite rows: its table row, clip counts, top-N candidates. */
static void acc_finish_clip(acc *a, int64_t frames) {
    const int64_t c = a->cur;
    qsort(a->touched, (size_t)a->n_touched, sizeof(int32_t), cmp_i32);
    if (c + 1 > a->cap_clips) {
        a->cap_clips *= 2;
        a->indptr = musae_xrealloc(a->indptr, sizeof(int64_t) * (size_t)(a->cap_clips + 1));
    }
    for (int64_t t = 0; t < a->n_touched; t++) {
        const int32_t i = a->touched[t];
        const cf_rec rec = {i, (float)(a->c_sum[i] / (double)frames), a->c_max[i]};
        if (fwrite(&rec, sizeof rec, 1, a->spill) != 1)
            musae_fail("%s (the per-clip table, unlinked): write failed: %s", a->spill_name, strerror(errno));
        a->nnz++;
        a->n_fired_clips[i]++;
        top_push(a, i, a->c_max[i], (int32_t)c, a->c_peak[i]);
        a->c_sum[i] = 0;
        a->c_max[i] = 0;
    }
    a->indptr[c + 1] = a->nnz;
    a->n_touched = 0;
}

/* Folds encoded rows into the statistics: row r is frame frame[r] of output clip oclip[r]; clip_frames[c] is
 * the finite rows of output clip c (complete for every clip before the last row's). */
static void acc_add(acc *a, const sae_codes *codes, int64_t n, const int64_t *oclip, const int32_t *frame,
                    const int64_t *clip_frames, const float *E) {
    for (int64_t r = 0; r < n; r++) {
        if (oclip[r] < 0) continue; /* a neighbour rank's row, encoded only to cut the blocks as one process does */
        if (oclip[r] != a->cur) {
            if (a->cur >= 0) acc_finish_clip(a, clip_frames[a->cur]);
            a->cur = oclip[r];
        }
        for (int64_t e = codes->ptr[r]; e < codes->ptr[r + 1]; e++) {
            const int32_t i = codes->idx[e];
            const float v = codes->val[e];
            uint64_t *sum = a->sum + (size_t)i * EXACT_SUM_LIMBS;
            exact_sum_add(sum, v);
            if ((++a->n_active[i] & (EXACT_SUM_NORM_EVERY - 1)) == 0) exact_sum_norm(sum);
            if (v > a->max[i]) a->max[i] = v;
            a->fine[(size_t)i * FINE_BINS + fine_bin(v, E)]++;
            if (v < a->vmin) a->vmin = v;
            if (v > a->vmax) a->vmax = v;
            if (a->c_sum[i] == 0) a->touched[a->n_touched++] = i;
            a->c_sum[i] += v;
            if (v > a->c_max[i]) {
                a->c_max[i] = v;
                a->c_peak[i] = frame[r];
            }
        }
    }
}

/* ---- after the pass: per-feature selections ---------------------------------------------------------------- */

typedef struct {
    float v;
    int32_t c;
} clip_max;

/* Ascending by max, ties by clip. */
static int cmp_clip_max(const void *x, const void *y) {
    const clip_max *a = x, *b = y;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->c > b->c) - (a->c < b->c);
}

/* The latent's F firing clips as (max, clip) sorted by cmp_clip_max: decile q holds positions [floor(q·F/10),
 * floor((q+1)·F/10)); from a decile of n > 5 clips the ones at positions floor((2j+1)·n/10), j = 0..4, are taken
 * (evenly spread), from a smaller one all of them. work holds F entries. */

static void pick_quantiles(const int32_t *clips, const float *maxes, int64_t F, clip_max *work, int32_t *out) {
    for (int64_t j = 0; j < F; j++) work[j].v = maxes[j], work[j].c = clips[j];
    qsort(work, (size_t)F, sizeof *work, cmp_clip_max);
    for (int q = 0; q < FEATURES_DECILES; q++) {
        const int64_t lo = q * F / FEATURES_DECILES, hi = (q + 1) * F / FEATURES_DECILES, n = hi - lo;
        int32_t *o = out + q * FEATURES_PER_DECILE;
        for (int j = 0; j < FEATURES_PER_DECILE; j++)
            o[j] = n <= FEATURES_PER_DECILE ? (j < n ? work[lo + j].c : -1)
                                            : work[lo + (2 * j + 1) * n / (2 * FEATURES_PER_DECILE)].c;
    }
}

/* FEATURES_RANDOM of the C - F clips where the latent does not fire (fired: ascending), drawn without
 * replacement: draw t takes rank r = (u · n_free) >> 32 with u = Philox(seed, STREAM_RANDOM_CLIP + latent,
 * t).v[0] among the free clips in ascending order (a repeat is drawn again); with n_free <= 20 all of them
 * in ascending order. */
static void pick_random(const int32_t *fired, int64_t F, int64_t C, uint64_t seed, int64_t latent, int32_t *out) {
    const int64_t n_free = C - F;
    for (int j = 0; j < FEATURES_RANDOM; j++) out[j] = -1;
    if (n_free <= FEATURES_RANDOM) {
        int64_t at = 0, m = 0;
        for (int64_t c = 0; c < C; c++) {
            while (m < F && fired[m] < c) m++;
            if (m < F && fired[m] == c) continue;
            out[at++] = (int32_t)c;
        }
        return;
    }
    int got = 0;
    for (uint64_t t = 0; got < FEATURES_RANDOM; t++) {
        const uint32_t u = musae_philox(seed, STREAM_RANDOM_CLIP + (uint64_t)latent, t).v[0];
        const int64_t r = (int64_t)(((uint64_t)u * (uint64_t)n_free) >> 32);
        /* the r-th free clip is r + j, j = the firing clips m with fired[m] - m <= r (non-decreasing in m) */
        int64_t lo = 0, hi = F;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (fired[mid] - mid <= r) lo = mid + 1;
            else hi = mid;
        }
        const int32_t c = (int32_t)(r + lo);
        int dup = 0;
        for (int j = 0; j < got; j++) dup |= out[j] == c;
        if (!dup) out[got++] = c;
    }
}

/* features_cf_source over an accumulator's spill file. */
static int spill_read(void *ctx, int64_t e0, int64_t n, int32_t *feature, float *mean, float *max, char *err,
                      size_t errlen) {
    acc *a = ctx;
    cf_rec *buf = musae_xmalloc(sizeof(cf_rec) * (size_t)(n + 1));
    int rc = fseek(a->spill, (long)(e0 * (int64_t)sizeof(cf_rec)), SEEK_SET) == 0 &&
                     fread(buf, sizeof(cf_rec), (size_t)n, a->spill) == (size_t)n
                 ? 0
                 : -1;
    for (int64_t e = 0; !rc && e < n; e++) feature[e] = buf[e].feat, mean[e] = buf[e].mean, max[e] = buf[e].max;
    if (rc) snprintf(err, errlen, "%s (the per-clip table, unlinked): read failed", a->spill_name);
    free(buf);
    return rc;
}

/* Everything the file holds for one SAE, from its accumulator and the shared clip bookkeeping. */
static void acc_to_features(acc *a, musae_features *f, int64_t C, int64_t n_frames, uint64_t seed,
                            int64_t budget, const float *E) {
    const int64_t M = a->M, N = a->N;
    f->M = M;
    f->N = N;
    f->C = C;
    f->nnz = 0; /* the table's entries stay in the spill file (written through a features_cf_source) */
    features_alloc(f);
    f->nnz = a->nnz;
    memcpy(f->cf_indptr, a->indptr, sizeof(int64_t) * (size_t)(C + 1));
    /* output bins: w fine bins each, from the fine bin of the smallest active value */
    int64_t f_lo = 0, w = 1;
    if (a->vmax > 0) {
        f_lo = fine_bin(a->vmin, E);
        const int64_t f_hi = fine_bin(a->vmax, E);
        w = (f_hi - f_lo + FEATURES_HIST_BINS) / FEATURES_HIST_BINS;
    }
    for (int b = 0; b <= FEATURES_HIST_BINS; b++) f->hist_edges[b] = fine_edge(f_lo + b * w);
    for (int64_t i = 0; i < M; i++) {
        f->n_active_frames[i] = a->n_active[i];
        f->frame_density[i] = n_frames > 0 ? (double)a->n_active[i] / (double)n_frames : 0.0;
        f->clip_rate[i] = C > 0 ? (double)a->n_fired_clips[i] / (double)C : 0.0;
        f->max_act[i] = a->max[i];
        f->mean_act[i] = a->n_active[i] > 0
                             ? (float)(exact_sum_to_double(a->sum + (size_t)i * EXACT_SUM_LIMBS) / (double)a->n_active[i])
                             : 0.0f;
        f->dead[i] = a->n_active[i] == 0;
        f->keep[i] = !f->dead[i] && f->clip_rate[i] >= f->min_rate && f->clip_rate[i] <= f->max_rate;
        for (int64_t fb = 0; fb < FINE_BINS; fb++) {
            int64_t b = (fb - f_lo) / w;
            b = fb < f_lo ? 0 : b > FEATURES_HIST_BINS - 1 ? FEATURES_HIST_BINS - 1 : b;
            f->hist[i * FEATURES_HIST_BINS + b] += a->fine[(size_t)i * FINE_BINS + fb];
        }
        /* the heap, best first */
        float *hv = a->top_max + i * N;
        int32_t *hc = a->top_clip + i * N, *hf = a->top_frame + i * N;
        for (int end = a->top_n[i] - 1; end > 0; end--) {
            float tv = hv[0];
            int32_t tc = hc[0], tf = hf[0];
            hv[0] = hv[end], hc[0] = hc[end], hf[0] = hf[end];
            hv[end] = tv, hc[end] = tc, hf[end] = tf;
            top_sift_down(hv, hc, hf, end, 0);
        }
        for (int64_t j = 0; j < N; j++) {
            const int in = j < a->top_n[i];
            f->top_clip[i * N + j] = in ? hc[j] : -1;
            f->top_clip_max[i * N + j] = in ? hv[j] : 0.0f;
            f->top_clip_frame[i * N + j] = in ? hf[j] : -1;
        }
    }
    /* the table by latent, for ranges of latents whose entries fit the budget: each latent's firing clips
     * ascending with their maxima, gathered by one sequential read of the spill per range */
    int64_t *fptr = musae_xcalloc((size_t)M + 1, sizeof(int64_t)), *at = musae_xmalloc(sizeof(int64_t) * (size_t)(M + 1));
    for (int64_t i = 0; i < M; i++) fptr[i + 1] = fptr[i] + a->n_fired_clips[i];
    MUSAE_ASSERT(fptr[M] == a->nnz, "table entries %lld, latent counts %lld", (long long)a->nnz, (long long)fptr[M]);
    cf_rec *buf = musae_xmalloc(sizeof(cf_rec) * 65536);
    for (int64_t i0 = 0; i0 < M;) {
        int64_t i1 = i0 + 1;
        while (i1 < M && fptr[i1 + 1] - fptr[i0] <= budget) i1++;
        const int64_t base = fptr[i0], n_in = fptr[i1] - base;
        int32_t *fclip = musae_xmalloc(sizeof(int32_t) * (size_t)(n_in + 1));
        float *fmax = musae_xmalloc(sizeof(float) * (size_t)(n_in + 1));
        memcpy(at, fptr, sizeof(int64_t) * (size_t)(M + 1));
        if (fseek(a->spill, 0, SEEK_SET))
            musae_fail("%s (the per-clip table, unlinked): seek failed: %s", a->spill_name, strerror(errno));
        for (int64_t c = 0, e = 0; c < C; c++)
            for (; e < a->indptr[c + 1]; e++) {
                const size_t want = (size_t)(a->nnz - e < 65536 ? a->nnz - e : 65536); /* a short read is an error */
                if (e % 65536 == 0 && fread(buf, sizeof(cf_rec), want, a->spill) != want)
                    musae_fail("%s (the per-clip table, unlinked): read failed", a->spill_name);
                const cf_rec *r = &buf[e % 65536];
                if (r->feat < i0 || r->feat >= i1) continue;
                fclip[at[r->feat] - base] = (int32_t)c;
                fmax[at[r->feat]++ - base] = r->max;
            }
        int64_t maxF = 0;
        for (int64_t i = i0; i < i1; i++) maxF = fptr[i + 1] - fptr[i] > maxF ? fptr[i + 1] - fptr[i] : maxF;
#pragma omp parallel
        {
            clip_max *work = musae_xmalloc(sizeof(clip_max) * (size_t)(maxF + 1));
#pragma omp for schedule(dynamic, 64)
            for (int64_t i = i0; i < i1; i++) {
                const int64_t F = fptr[i + 1] - fptr[i];
                pick_quantiles(fclip + fptr[i] - base, fmax + fptr[i] - base, F, work,
                               f->quantile_clip + i * FEATURES_DECILES * FEATURES_PER_DECILE);
                pick_random(fclip + fptr[i] - base, F, C, seed, i, f->random_clip + i * FEATURES_RANDOM);
            }
            free(work);
        }
        free(fclip);
        free(fmax);
        i0 = i1;
    }
    free(buf);
    free(fptr);
    free(at);
    const double t0 = musae_now(), c0 = musae_process_cpu();
    analyze_neighbours(a->m->p.W_dec, M, a->m->d, FEATURES_NEIGHBORS, analyze_screen_choice(), f->neighbors,
                       f->neighbor_cos);
    LOG_DEBUG("analyze: decoder neighbours of %lld latents in %.3f s (%.3f CPU-s)", (long long)M, musae_now() - t0,
              musae_process_cpu() - c0);
}

/* ---- several processes: the ranks' statistics into rank 0 ---------------------------------------------------- */

/* Folds every rank's accumulator (its clips closed) into rank 0's, which then holds what one process would have
 * accumulated: sums of counts and of the exact sums, maxima and minima, the union of the top-N candidates (rank
 * r's clip indices shifted by counts[P + r], the clips of the ranks before it), the per-clip table appended in
 * rank order (= clip order). counts[r]: rank r's clips; C: all of them. Collective. */
static void acc_merge(acc *a, const musae_dist *d, const int64_t *counts, int64_t C) {
    if (d->world < 2) return;
    const int64_t M = a->M, N = a->N;
    musae_dist_allreduce_i64(d, a->n_active, (size_t)M, MUSAE_DIST_SUM);
    musae_dist_allreduce_i64(d, a->n_fired_clips, (size_t)M, MUSAE_DIST_SUM);
    musae_dist_allreduce_f32(d, a->max, (size_t)M, MUSAE_DIST_MAX);
    musae_dist_allreduce_f32(d, &a->vmin, 1, MUSAE_DIST_MIN);
    musae_dist_allreduce_f32(d, &a->vmax, 1, MUSAE_DIST_MAX);
    analyze_sum_u32(d, a->fine, M * FINE_BINS);
    for (int64_t i = 0; i < M; i++) exact_sum_norm(a->sum + (size_t)i * EXACT_SUM_LIMBS); /* limbs < 2^32 */
    analyze_sum_u64(d, a->sum, M * EXACT_SUM_LIMBS);
    /* the top-N candidates, by slices of latents */
    const int64_t S = (((int64_t)1 << 18) / N) > 0 ? ((int64_t)1 << 18) / N : 1; /* latents per slice: P·3 MiB on rank 0 */
    int64_t *cnt = musae_xmalloc(sizeof(int64_t) * (size_t)d->world);
    for (int64_t i0 = 0; i0 < M; i0 += S) {
        const int64_t ns = M - i0 < S ? M - i0 : S;
        float *gv = analyze_gather(d, a->top_max + i0 * N, ns * N, sizeof(float), cnt);
        int32_t *gc = analyze_gather(d, a->top_clip + i0 * N, ns * N, sizeof(int32_t), cnt);
        int32_t *gf = analyze_gather(d, a->top_frame + i0 * N, ns * N, sizeof(int32_t), cnt);
        int32_t *gn = analyze_gather(d, a->top_n + i0, ns, sizeof(int32_t), cnt);
        for (int r = 1; d->rank == 0 && r < d->world; r++)
            for (int64_t i = 0; i < ns; i++)
                for (int32_t j = 0; j < gn[r * ns + i]; j++) {
                    const int64_t e = (r * ns + i) * N + j;
                    top_push(a, i0 + i, gv[e], (int32_t)(gc[e] + counts[d->world + r]), gf[e]);
                }
        free(gv), free(gc), free(gf), free(gn);
    }
    /* the per-clip table: rank r's rows after those of the ranks before it */
    const int64_t mine = a->indptr[counts[d->rank]];
    int64_t *rows = analyze_gather(d, a->indptr + 1, counts[d->rank], sizeof(int64_t), cnt);
    int64_t *nnz = musae_xmalloc(sizeof(int64_t) * (size_t)d->world);
    musae_dist_allgather(d, &mine, nnz, 1, sizeof mine);
    analyze_append_files(d, a->spill, a->spill_name, mine, sizeof(cf_rec));
    if (d->rank == 0) {
        a->indptr = musae_xrealloc(a->indptr, sizeof(int64_t) * (size_t)(C + 1));
        a->cap_clips = C;
        a->indptr[0] = 0;
        for (int64_t r = 0, at = 0, before = 0; r < d->world; r++) {
            for (int64_t c = 0; c < cnt[r]; c++, at++) a->indptr[at + 1] = rows[at] + before;
            before += nnz[r];
        }
        a->nnz = a->indptr[C];
    }
    free(rows);
    free(nnz);
    free(cnt);
}

/* ---- checks ----------------------------------------------------------------------------------------------- */

const char *analyze_mismatch(const sae_model *m, const char *dir, musae_store *s, char *buf, size_t n) {
    const musae_store_info *in = musae_store_get_info(s);
    if (m->d != in->d_model)
        snprintf(buf, n, "%s has d_in %d but %s holds %d-dimensional activations", dir, m->d, in->path, in->d_model);
    else if (m->layer < 0)
        snprintf(buf, n, "%s names no layer (no musae.json): cannot tell which of %s's layers it reads", dir, in->path);
    else if (musae_store_layer_index(s, m->layer) < 0)
        snprintf(buf, n, "%s was trained on layer %d, which %s does not hold", dir, m->layer, in->path);
    else if (m->model[0] && in->model[0] && strcmp(m->model, in->model))
        snprintf(buf, n, "%s was trained on activations of '%s', %s holds '%s'", dir, m->model, in->path, in->model);
    else if (m->batch_topk && !(m->threshold > 0))
        snprintf(buf, n, "%s/musae.json: a batch-top-k SAE without an inference threshold", dir);
    else return NULL;
    return buf;
}

/* ---- the pass --------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

static int row_finite(const float *x, int64_t d) {
    for (int64_t j = 0; j < d; j++)
        if (!isfinite(x[j])) return 0;
    return 1;
}

float *analyze_clip_trace(const sae_model *m, musae_store *s, int64_t clip, int feature) {
    const musae_store_info *in = musae_store_get_info(s);
    MUSAE_ASSERT(clip >= 0 && clip < in->n_clips && feature >= 0 && feature < m->M, "clip %lld, latent %d",
                 (long long)clip, feature);
    const int64_t n = in->clip_frames[clip], d = m->d;
    float *x = musae_xmalloc(sizeof(float) * (size_t)(n * d + 1)), *trace = musae_xmalloc(sizeof(float) * (size_t)(n + 1));
    musae_store_read_rows(s, m->layer, in->clip_offset[clip], n, x);
    analyze_encoder e;
    analyze_encoder_init(&e, m, n > 0 ? n : 1, 0);
    int64_t nf = 0;
    for (int64_t r = 0; r < n; r++) /* finite rows packed to the front, as the pass encodes them */
        if (row_finite(x + r * d, d)) memmove(x + nf++ * d, x + r * d, sizeof(float) * (size_t)d);
    analyze_encoder_run(&e, x, nf);
    musae_store_read_rows(s, m->layer, in->clip_offset[clip], n, x); /* again, to know which rows were finite */
    for (int64_t r = 0, q = 0; r < n; r++) {
        if (!row_finite(x + r * d, d)) {
            trace[r] = NAN;
            continue;
        }
        trace[r] = 0;
        for (int64_t k = e.codes.ptr[q]; k < e.codes.ptr[q + 1]; k++)
            if (e.codes.idx[k] == feature) trace[r] = e.codes.val[k];
        q++;
    }
    analyze_encoder_free(&e);
    free(x);
    return trace;
}

void analyze_opts_defaults(analyze_opts *o) {
    memset(o, 0, sizeof *o);
    o->top = 20;
    o->min_rate = 0.01;
    o->max_rate = 0.25;
    o->block_rows = 4096;
    o->regroup_entries = (int64_t)1 << 21;
}

int analyze_run(const analyze_opts *o) {
    char err[1200];
    musae_store *s = musae_store_open(o->acts, err, sizeof err);
    if (!s) musae_fail("%s", err);
    const musae_store_info *in = musae_store_get_info(s);
    sae_model *models = musae_xcalloc((size_t)o->n_sae, sizeof(sae_model));
    char (*sha)[65] = musae_xcalloc((size_t)o->n_sae, 65);
    for (int i = 0; i < o->n_sae; i++) {
        char st[4200];
        snprintf(st, sizeof st, "%s/sae.safetensors", o->sae[i]);
        if (sae_load(o->sae[i], &models[i], err, sizeof err)) musae_fail("%s", err);
        /* hashed as it is loaded, not after the pass: the file records the weights that were read */
        if (musae_sha256_file(st, sha[i])) musae_fail("%s: cannot read: %s", st, strerror(errno));
        if (analyze_mismatch(&models[i], o->sae[i], s, err, sizeof err)) musae_fail("%s", err);
        if (i > 0 && models[i].layer != models[0].layer)
            musae_fail("%s reads layer %d but %s reads layer %d: one pass analyses SAEs of one layer", o->sae[i],
                       models[i].layer, o->sae[0], models[0].layer);
    }
    const int layer = models[0].layer;
    /* the split: the clips the trainer held out, unless --split all */
    double vf = 0;
    uint64_t split_seed = 0;
    if (!o->split_all) {
        for (int i = 0; i < o->n_sae; i++) {
            if (!models[i].has_split)
                musae_fail("%s/musae.json records no training split (data.val_fraction, data.split_seed); use "
                           "--split all",
                           o->sae[i]);
            if (i > 0 && (models[i].val_fraction != vf || models[i].split_seed != split_seed))
                musae_fail("%s and %s were trained with different held-out splits; analyse them separately or "
                           "use --split all",
                           o->sae[0], o->sae[i]);
            vf = models[i].val_fraction;
            split_seed = models[i].split_seed;
        }
    }
    uint8_t *mask = musae_xcalloc((size_t)in->n_clips + 1, 1);
    musae_store_split_mask(s, o->split_all ? MUSAE_SPLIT_ALL : MUSAE_SPLIT_VAL, vf, split_seed, mask);
    int64_t split_rows = 0, split_clips = 0;
    for (int64_t c = 0; c < in->n_clips; c++)
        if (mask[c]) split_rows += in->clip_frames[c], split_clips++;
    if (split_rows == 0)
        musae_fail("%s: the %s split holds no rows (%lld clips, val fraction %g)", o->acts,
                   o->split_all ? "all" : "validation", (long long)in->n_clips, vf);
    /* the split's clips in store order, and this rank's share of them (all of them for one process) */
    int64_t *sclip = musae_xmalloc(sizeof(int64_t) * (size_t)split_clips), *sframes = musae_xmalloc(sizeof(int64_t) * (size_t)split_clips);
    for (int64_t c = 0, q = 0; c < in->n_clips; c++)
        if (mask[c]) sclip[q] = c, sframes[q++] = in->clip_frames[c];
    const musae_dist one = {.world = 1, .local_world = 1, .launcher = "none"}, *dist = o->dist ? o->dist : &one;
    char fact[160];
    snprintf(fact, sizeof fact, "%s: %lld clips, %lld rows of %d, fingerprint %016llx", o->acts, (long long)in->n_clips,
             (long long)in->n_rows, in->d_model, (unsigned long long)musae_store_fingerprint(s));
    analyze_same_fact(dist, "the store", fact);
    for (int i = 0; i < o->n_sae; i++) analyze_same_fact(dist, o->sae[i], sha[i]);
    analyze_share share;
    analyze_share_of(dist, sframes, split_clips, o->block_rows, &share);
    analyze_watch watch;
    analyze_watch_begin(&watch, dist);

    float E[FINE_BINS + 1];
    for (int f = 0; f <= FINE_BINS; f++) E[f] = fine_edge(f);
    const int64_t B = o->block_rows, d = in->d_model;
    acc *accs = musae_xcalloc((size_t)o->n_sae, sizeof(acc));
    for (int i = 0; i < o->n_sae; i++)
        acc_init(&accs[i], &models[i], o->top, B, o->out[i], dist->rank, o->device_cuda);
    float *x = musae_xmalloc(sizeof(float) * (size_t)(B * d));
    int64_t *oclip = musae_xmalloc(sizeof(int64_t) * (size_t)B);
    int32_t *frame = musae_xmalloc(sizeof(int32_t) * (size_t)B);
    /* output clips: those of the split with at least one finite row, in store order */
    int64_t cap_c = 1024, C = 0, n_frames = 0, n_nonfinite = 0, n_empty = 0;
    int64_t *clip_rows = musae_xmalloc(sizeof(int64_t) * (size_t)cap_c), *clip_store = musae_xmalloc(sizeof(int64_t) * (size_t)cap_c);
    int64_t last_store = -1;
    g_stop = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    LOG_INFO("analyze: %d SAE(s) of layer %d on %s, %s split: %lld clips, %lld rows%s, encoded on the %s", o->n_sae,
             layer, o->acts, o->split_all ? "all" : "val", (long long)split_clips, (long long)split_rows,
             dist->world > 1 ? " (shared by the ranks, balanced by frames)" : "", o->device_cuda ? "GPU" : "CPU");
    musae_progress pr;
    musae_progress_init(&pr, "analyze", "rows", share.row1 - share.row0);
    /* The next row to read: frame t of split clip q, row pos of the split. Blocks are B rows of the split, cut
     * where one process cuts them (analyze_merge.h), then emptied of their non-finite rows. */
    int64_t q = 0, t = share.row0, pos = share.row0;
    while (q < split_clips && t >= sframes[q]) t -= sframes[q++];
    while (!g_stop && pos < share.row1) {
        const int64_t want = share.row1 - pos < B ? share.row1 - pos : B;
        int64_t n = 0, read = 0;
        while (read < want) {
            if (t >= sframes[q]) {
                q++, t = 0;
                continue;
            }
            const int64_t c = sclip[q], take = sframes[q] - t < want - read ? sframes[q] - t : want - read;
            const int own = q >= share.clip_lo && q < share.clip_hi;
            musae_store_read_rows(s, layer, in->clip_offset[c] + t, take, x + n * d);
            const int64_t base = n;
            for (int64_t r = 0; r < take; r++) {
                if (!row_finite(x + (base + r) * d, d)) {
                    n_nonfinite += own;
                    continue;
                }
                if (own && c != last_store) { /* a new output clip */
                    if (C == cap_c) {
                        cap_c *= 2;
                        clip_rows = musae_xrealloc(clip_rows, sizeof(int64_t) * (size_t)cap_c);
                        clip_store = musae_xrealloc(clip_store, sizeof(int64_t) * (size_t)cap_c);
                    }
                    clip_rows[C] = 0;
                    clip_store[C++] = c;
                    last_store = c;
                }
                if (own) clip_rows[C - 1]++, n_frames++;
                if (base + r != n) memmove(x + n * d, x + (base + r) * d, sizeof(float) * (size_t)d);
                oclip[n] = own ? C - 1 : -1;
                frame[n] = (int32_t)(t + r);
                n++;
            }
            read += take;
            t += take;
        }
        pos += read;
        for (int i = 0; i < o->n_sae; i++) analyze_encoder_run(&accs[i].enc, x, n);
#pragma omp parallel for schedule(static, 1) if (o->n_sae > 1)
        for (int i = 0; i < o->n_sae; i++) acc_add(&accs[i], &accs[i].enc.codes, n, oclip, frame, clip_rows, E);
        musae_progress_add(&pr, read, NULL);
    }
    musae_progress_finish(&pr, NULL);
    /* every rank here (or the job stops, named), then whether any was stopped by a signal */
    analyze_watch_barrier(&watch);
    int64_t stopped = g_stop;
    musae_dist_allreduce_i64(dist, &stopped, 1, MUSAE_DIST_MAX);
    if (stopped && !g_stop) g_stop = (sig_atomic_t)stopped;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int rc = 0;
    if (g_stop) {
        LOG_WARN("analyze: stopped by signal %d before the end; nothing written (run the same command again)",
                 (int)g_stop);
        rc = 130;
    } else {
        for (int i = 0; i < o->n_sae; i++)
            if (accs[i].cur >= 0) acc_finish_clip(&accs[i], clip_rows[accs[i].cur]), accs[i].cur = -1;
        /* several ranks: rank 0 gathers the clips (rank order is store order) and every statistic; counts[r] is
         * rank r's clips, counts[P + r] the clips of the ranks before it */
        const int P = dist->world;
        int64_t *counts = musae_xcalloc(2 * (size_t)P, sizeof(int64_t));
        int64_t *gathered = analyze_gather(dist, clip_store, C, sizeof(int64_t), counts);
        for (int r = 1; r < P; r++) counts[P + r] = counts[P + r - 1] + counts[r - 1];
        C = counts[2 * P - 1] + counts[P - 1];
        free(clip_store);
        clip_store = gathered;
        for (int i = 0; i < o->n_sae; i++) acc_merge(&accs[i], dist, counts, C);
        musae_dist_allreduce_i64(dist, &n_frames, 1, MUSAE_DIST_SUM);
        musae_dist_allreduce_i64(dist, &n_nonfinite, 1, MUSAE_DIST_SUM);
        free(counts);
        for (int64_t q = 0; q < in->n_clips; q++) n_empty += mask[q] && in->clip_frames[q] > 0;
        n_empty -= C;
        if (C == 0) musae_fail("%s: no finite row in the %s split", o->acts, o->split_all ? "all" : "validation");
        const int writer = dist->rank == 0; /* the other ranks are done */
        if (writer && n_nonfinite) LOG_WARN("analyze: %lld rows held NaN/Inf and were skipped", (long long)n_nonfinite);
        if (writer && n_empty) LOG_WARN("analyze: %lld clips had no finite row and are left out", (long long)n_empty);
        char **paths = musae_xmalloc(sizeof(char *) * (size_t)C);
        for (int64_t q = 0; writer && q < C; q++) paths[q] = musae_store_clip_path(s, clip_store[q]);
        for (int i = 0; writer && i < o->n_sae; i++) {
            acc *a = &accs[i];
            musae_features f;
            memset(&f, 0, sizeof f);
            f.min_rate = o->min_rate;
            f.max_rate = o->max_rate;
            if (fflush(a->spill))
                musae_fail("%s (the per-clip table, unlinked): write failed: %s", a->spill_name, strerror(errno));
            acc_to_features(a, &f, C, n_frames, o->seed, o->regroup_entries, E);
            for (int64_t q = 0; q < C; q++) {
                f.clip_path[q] = musae_xstrdup(paths[q]);
                f.clip_frames[q] = in->clip_frames[clip_store[q]];
                f.clip_store_index[q] = clip_store[q];
            }
            const sae_model *m = &models[i];
            snprintf(f.sae, sizeof f.sae, "%s", o->sae[i]);
            snprintf(f.sae_sha256, sizeof f.sae_sha256, "%s", sha[i]);
            snprintf(f.acts, sizeof f.acts, "%s", o->acts);
            snprintf(f.model, sizeof f.model, "%s", in->model);
            snprintf(f.selection, sizeof f.selection, "%s", m->batch_topk ? "batch_topk" : "topk");
            snprintf(f.split, sizeof f.split, "%s", o->split_all ? "all" : "val");
            f.layer = layer;
            f.d_model = d;
            f.k = m->k;
            f.threshold = m->batch_topk ? m->threshold : 0.0;
            f.val_fraction = vf;
            f.split_seed = split_seed;
            f.seed = o->seed;
            f.frame_rate = in->frame_rate;
            f.n_frames = n_frames;
            f.n_nonfinite_rows = n_nonfinite;
            f.n_clips_empty = n_empty;
            int64_t dead = 0, kept = 0;
            for (int64_t q = 0; q < f.M; q++) dead += f.dead[q], kept += f.keep[q];
            const features_cf_source cf = {spill_read, a};
            if (features_write(o->out[i], &f, &cf, err, sizeof err)) musae_fail("%s", err);
            char list[256] = "";
            for (int64_t q = 0, shown = 0; q < f.M && shown < 8; q++)
                if (f.dead[q]) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", shown++ ? "," : "",
                                        (long long)q);
            LOG_INFO("analyze: %s: %lld latents, %lld kept, %lld dead%s%s%s -> %s", o->sae[i], (long long)f.M,
                     (long long)kept, (long long)dead, dead ? " (" : "", list, dead > 8 ? ",...)" : dead ? ")" : "",
                     o->out[i]);
            features_free(&f);
        }
        for (int64_t q = 0; writer && q < C; q++) free(paths[q]);
        free(paths);
    }
    for (int i = 0; i < o->n_sae; i++) {
        acc_free(&accs[i]);
        sae_model_free(&models[i]);
    }
    free(accs);
    free(models);
    free(sha);
    free(x);
    free(oclip);
    free(frame);
    free(clip_rows);
    free(clip_store);
    free(sclip);
    free(sframes);
    free(mask);
    analyze_watch_free(&watch);
    musae_store_close(s);
    return rc;
}
