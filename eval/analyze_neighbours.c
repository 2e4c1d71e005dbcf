/* Decoder neighbours (analyze_neighbours.h) from half the cosine matrix: cos(i, j) = cos(j, i), so only the
 * tiles (I, J) with J >= I of the [M, M] product are computed (M²·d FLOPs instead of 2·M²·d, which at d 512 and
 * 8192 latents was a fifth of the whole analyze run), and each tile offers its values to the rows of I and,
 * transposed, to the rows of J. Every cosine is computed once, by one single-threaded sgemm whose tile shape
 * depends only on M, and selection is by a total order (cosine descending, latent ascending), so the result
 * does not depend on the thread count or on which thread took which tile: threads keep private lists for every
 * row, merged at the end. CPUs with AMX take the encoder's bf16 screen and f32 rescore instead
 * (eval/analyze_encode.h: the top K + 1 of every unit row against all of them, itself dropped). */
#include "eval/analyze_neighbours.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "eval/analyze_encode.h"
#include "eval/analyze_rescore.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/sae_ops.h"

enum { TILE = 256, LANES = 16 };

/* "(av, ai) ranks before (bv, bi)": a larger cosine, or the same at a lower latent. */
static inline int better(float av, int32_t ai, float bv, int32_t bi) { return av > bv || (av == bv && ai < bi); }

/* The best K candidates of one row so far, best first; bar is the worst kept once there are K (else -inf), so
 * a value below it is rejected with one compare. */
typedef struct {
    float *v;        /* [M, K] */
    int32_t *i;      /* [M, K] */
    int32_t *n;      /* [M] */
    float *bar;      /* [M] */
    int K;
} lists;

static void lists_init(lists *l, int64_t M, int K) {
    l->v = musae_xmalloc(sizeof(float) * (size_t)(M * K + 1));
    l->i = musae_xmalloc(sizeof(int32_t) * (size_t)(M * K + 1));
    l->n = musae_xcalloc((size_t)M + 1, sizeof(int32_t));
    l->bar = musae_xmalloc(sizeof(float) * (size_t)(M + 1));
    for (int64_t r = 0; r < M; r++) l->bar[r] = -INFINITY;
    l->K = K;
}

static void lists_free(lists *l) {
    free(l->v);
    free(l->i);
    free(l->n);
    free(l->bar);
}

static void offer(lists *l, int64_t row, float v, int32_t j) {
    const int K = l->K;
    float *bv = l->v + row * K;
    int32_t *bi = l->i + row * K;
    int n = l->n[row];
    if (n == K && !better(v, j, bv[K - 1], bi[K - 1])) return;
    int at = n < K ? n++ : K - 1;
    while (at > 0 && better(v, j, bv[at - 1], bi[at - 1])) {
        bv[at] = bv[at - 1];
        bi[at] = bi[at - 1];
        at--;
    }
    bv[at] = v;
    bi[at] = j;
    l->n[row] = n;
    if (n == K) l->bar[row] = bv[K - 1];
}

/* Tile s [ni, nj] (row stride ld) = rows i0.. against rows j0..: row i0 + r is offered (s[r][c], j0 + c) (not
 * itself), and when `transpose`, row j0 + c is offered (s[r][c], i0 + r). Values are screened LANES at a time
 * against the bars. */
static void scan_tile(lists *l, const float *s, int64_t ld, int64_t i0, int64_t ni, int64_t j0, int64_t nj,
                      int transpose) {
    for (int64_t r = 0; r < ni; r++) {
        const float *row = s + r * ld;
        const int64_t i = i0 + r;
        for (int64_t c0 = 0; c0 < nj; c0 += LANES) {
            const int64_t c1 = c0 + LANES < nj ? c0 + LANES : nj;
            const float bar = l->bar[i];
            int any = 0;
            for (int64_t c = c0; c < c1; c++) any |= row[c] >= bar;
            if (any)
                for (int64_t c = c0; c < c1; c++)
                    if (row[c] >= l->bar[i] && j0 + c != i) offer(l, i, row[c], (int32_t)(j0 + c));
            if (!transpose) continue;
            const float *tb = l->bar + j0;
            any = 0;
            for (int64_t c = c0; c < c1; c++) any |= row[c] >= tb[c];
            if (any)
                for (int64_t c = c0; c < c1; c++)
                    if (row[c] >= tb[c]) offer(l, j0 + c, row[c], (int32_t)i);
        }
    }
}

/* The lists of every row over the upper half of the cosine matrix of the unit rows w [M, d], L per row: tiles
 * (I, J >= I) in parallel, each computed by the int16 screen scr (its bound's largest value into *B) or, scr NULL,
 * by one single-threaded sgemm (*B = 0), and offered to the rows of I and, transposed, of J; every thread's lists
 * are then offered to the first's (the order is total, so any order gives one result). Returns per[0] of the
 * `*used` lists in per (lists_free each, then free(per)). */
static lists *half_matrix(const analyze_screen *scr, const float *w, int64_t M, int64_t d, int L, double *B,
                          lists **per_out, int *used_out) {
    const int64_t n_blk = (M + TILE - 1) / TILE, n_pairs = n_blk * (n_blk + 1) / 2;
    const int T = omp_get_max_threads();
    lists *per = musae_xcalloc((size_t)T, sizeof(lists));
    int used = 0;
    double Bm = 0;
    if (!scr) cpu_blas_init(); /* each of our threads runs its own single-threaded sgemm */
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num();
#pragma omp single
        used = omp_get_num_threads();
        lists_init(&per[t], M, L);
        float *s = musae_xmalloc(sizeof(float) * TILE * TILE);
        void *ws = scr ? analyze_screen_tile_ws(scr) : NULL;
        double Bt = 0;
#pragma omp for schedule(dynamic, 1)
        for (int64_t p = 0; p < n_pairs; p++) {
            int64_t bi = 0, bj = p; /* pair p: row block bi, column block bj >= bi, row-major over the upper half */
            while (bj >= n_blk - bi) bj -= n_blk - bi, bi++;
            bj += bi;
            const int64_t i0 = bi * TILE, j0 = bj * TILE;
            const int64_t ni = i0 + TILE <= M ? TILE : M - i0, nj = j0 + TILE <= M ? TILE : M - j0;
            if (scr) {
                const double b = analyze_screen_tile(scr, ws, w + i0 * d, ni, j0, nj, s);
                Bt = b > Bt ? b : Bt;
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, (int)d, 1.0f, w + i0 * d, (int)d,
                            w + j0 * d, (int)d, 0.0f, s, (int)nj);
            }
            scan_tile(&per[t], s, scr ? (nj + 31) / 32 * 32 : nj, i0, ni, j0, nj, bj > bi);
        }
#pragma omp critical
        Bm = Bt > Bm ? Bt : Bm;
        free(ws);
        free(s);
    }
    for (int t = 1; t < used; t++)
        for (int64_t r = 0; r < M; r++)
            for (int q = 0; q < per[t].n[r]; q++) offer(&per[0], r, per[t].v[r * L + q], per[t].i[r * L + q]);
    *B = Bm;
    *per_out = per;
    *used_out = used;
    return &per[0];
}

/* (v, ix)[0..n) sorted by `better`: insertion sort, the lists being short and nearly in order. */
static void sort_short(float *v, int32_t *ix, int n) {
    for (int q = 1; q < n; q++)
        for (int e = q; e > 0 && better(v[e], ix[e], v[e - 1], ix[e - 1]); e--) {
            const float tv = v[e];
            const int32_t ti = ix[e];
            v[e] = v[e - 1], ix[e] = ix[e - 1];
            v[e - 1] = tv, ix[e - 1] = ti;
        }
}

/* The int16 screen's route (CPUs with AVX2 but not AMX): the upper half of the screened cosine matrix, tile by
 * tile (M²·d/2 multiply-adds at the int16 rate instead of the f32 sgemm's), into per-row lists of the K + SLACK
 * best screen values; then each row's list is rescored exactly (analyze_rescore: the AMX path's values and sums)
 * and sorted. With B the screens' bound (|screen − rescore| <= B for every pair), a latent outside a full list has
 * screen value <= the list's worst s_L, so rescore value <= s_L + B: when the K-th best rescored value of the
 * list is above that, the list holds the row's exact top K; a row where it is not is rescored against every
 * latent. Either way a row's neighbours are the top K of the rescore's cosines, as on AMX. */
enum { SLACK = 8 };

static int64_t neighbours_i16(const analyze_screen *scr, const float *w, int64_t M, int64_t d, int K, int32_t *nb,
                              float *cos) {
    const int KC = K + SLACK, avx512 = musae_isa_get() >= MUSAE_ISA_AVX512;
    double B;
    lists *per;
    int used;
    lists *out = half_matrix(scr, w, M, d, KC, &B, &per, &used);
    int64_t n_whole = 0;
    float *zeros = musae_xcalloc((size_t)M, sizeof(float));
#pragma omp parallel
    {
        int32_t *ci = musae_xmalloc(sizeof(int32_t) * (size_t)(M + KC));
        float *cv = musae_xmalloc(sizeof(float) * (size_t)(M + KC));
#pragma omp for schedule(dynamic, 64) reduction(+ : n_whole)
        for (int64_t r = 0; r < M; r++) {
            int n = out->n[r];
            memcpy(ci, out->i + r * KC, sizeof(int32_t) * (size_t)n);
            analyze_rescore(avx512, w, zeros, d, w + r * d, ci, n, cv);
            sort_short(cv, ci, n);
            /* latents outside the list exist (n < M − 1 others) and might rank: the whole row */
            if (n < M - 1 && !(n >= K && (double)cv[K - 1] > (double)out->bar[r] + B)) {
                n_whole++;
                int64_t m = 0;
                for (int64_t j = 0; j < M; j++)
                    if (j != r) ci[m++] = (int32_t)j;
                analyze_rescore(avx512, w, zeros, d, w + r * d, ci, m, cv);
                /* the top K of the M − 1 values: a sorted head of K, each value tested against its last */
                n = 0;
                for (int64_t q = 0; q < m; q++) {
                    if (n == K && !better(cv[q], ci[q], cv[K - 1], ci[K - 1])) continue;
                    int at = n < K ? n++ : K - 1;
                    const float v = cv[q];
                    const int32_t j = ci[q];
                    for (; at > 0 && better(v, j, cv[at - 1], ci[at - 1]); at--) cv[at] = cv[at - 1], ci[at] = ci[at - 1];
                    cv[at] = v, ci[at] = j;
                }
            }
            for (int q = 0; q < K; q++) {
                nb[r * K + q] = q < n ? ci[q] : -1;
                cos[r * K + q] = q < n ? cv[q] : 0.0f;
            }
        }
        free(ci);
        free(cv);
    }
    LOG_DEBUG("analyze: decoder neighbours from the %s screen's half matrix, bound %.3g; %lld of %lld rows "
                "rescored whole", analyze_screen_name(analyze_screen_kind_of(scr)), B, (long long)n_whole, (long long)M);
    free(zeros);
    for (int t = 0; t < used; t++) lists_free(&per[t]);
    free(per);
    return n_whole;
}

int64_t analyze_neighbours(const float *W_dec, int64_t M, int64_t d, int K, analyze_screen_kind kind, int32_t *nb,
                           float *cos) {
    MUSAE_ASSERT(M > 0 && d > 0 && K > 0 && M <= INT32_MAX && d <= INT32_MAX, "M %lld, d %lld, K %d", (long long)M,
                 (long long)d, K);
    float *w = musae_xmalloc(sizeof(float) * (size_t)(M * d));
    memcpy(w, W_dec, sizeof(float) * (size_t)(M * d));
    sae_cpu_normalize_rows(w, M, d);
    /* int16 screens (AVX2, AVX-VNNI, AVX-512 VNNI without AMX): the half matrix above */
    analyze_screen *i16 = analyze_screen_is_i16(kind) ? analyze_screen_init_rows(w, NULL, M, d, K, 0, kind) : NULL;
    if (i16) {
        const int64_t n_whole = neighbours_i16(i16, w, M, d, K, nb, cos);
        analyze_screen_free(i16);
        free(w);
        return n_whole;
    }
    /* on AMX CPUs: the encoder's bf16 screen + f32 rescore (eval/analyze_encode.h) with the unit rows as both
     * weights and inputs, the top K + 1 of each row (itself among them, unless K + 1 others tie at cosine 1);
     * all M² cosines, the tiles' rate being ~10x the f32 one */
    analyze_screen *amx = kind == ANALYZE_SCREEN_AMX ? analyze_screen_init_rows(w, NULL, M, d, K + 1, 0, kind) : NULL;
    if (amx) {
        sae_codes c = {0};
        c.ptr = musae_xcalloc((size_t)M + 1, sizeof(int64_t));
        analyze_screen_encode(amx, w, M, &c);
        for (int64_t r = 0; r < M; r++) {
            int q = 0;
            for (int64_t e = c.ptr[r]; e < c.ptr[r + 1] && q < K; e++)
                if (c.idx[e] != r) nb[r * K + q] = c.idx[e], cos[r * K + q++] = c.val[e];
            for (; q < K; q++) nb[r * K + q] = -1, cos[r * K + q] = 0.0f;
        }
        free(c.ptr);
        free(c.idx);
        free(c.val);
        analyze_screen_free(amx);
        free(w);
        return 0;
    }
    /* no screen (MUSAE_ANALYZE_SCREEN=off, MUSAE_ISA below avx2, non-finite weights): the f32 sgemm's half matrix */
    double B;
    lists *per;
    int used;
    lists *out = half_matrix(NULL, w, M, d, K, &B, &per, &used);
    /* where the CPU runs the screens' rescore (AVX2 and up), the chosen cosines are recomputed by it and re-sorted,
     * so they are the screens' values bit for bit (eval/analyze_rescore.h: one summation order on every level)
     * rather than OpenBLAS's, whose rounding differs between its kernels */
    if (MUSAE_ISA_VARIANTS && musae_isa_get() >= MUSAE_ISA_AVX2) {
        float *zeros = musae_xcalloc((size_t)M, sizeof(float));
        const int avx512 = musae_isa_get() >= MUSAE_ISA_AVX512;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < M; r++) {
            analyze_rescore(avx512, w, zeros, d, w + r * d, out->i + r * K, out->n[r], out->v + r * K);
            sort_short(out->v + r * K, out->i + r * K, out->n[r]);
        }
        free(zeros);
    }
    for (int64_t r = 0; r < M; r++)
        for (int q = 0; q < K; q++) {
            const int in = q < out->n[r];
            nb[r * K + q] = in ? out->i[r * K + q] : -1;
            cos[r * K + q] = in ? out->v[r * K + q] : 0.0f;
        }
    for (int t = 0; t < used; t++) lists_free(&per[t]);
    free(per);
    free(w);
    return 0;
}
