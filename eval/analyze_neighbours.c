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

/* Tile s [ni, nj] = rows i0.. against rows j0..: row i0 + r is offered (s[r][c], j0 + c) (not itself), and when
 * `transpose`, row j0 + c is offered (s[r][c], i0 + r). Values are screened LANES at a time against the bars. */
static void scan_tile(lists *l, const float *s, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int transpose) {
    for (int64_t r = 0; r < ni; r++) {
        const float *row = s + r * nj;
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

void analyze_neighbours(const float *W_dec, int64_t M, int64_t d, int K, int32_t *nb, float *cos) {
    MUSAE_ASSERT(M > 0 && d > 0 && K > 0 && M <= INT32_MAX && d <= INT32_MAX, "M %lld, d %lld, K %d", (long long)M,
                 (long long)d, K);
    float *w = musae_xmalloc(sizeof(float) * (size_t)(M * d));
    memcpy(w, W_dec, sizeof(float) * (size_t)(M * d));
    sae_cpu_normalize_rows(w, M, d);
    /* on AMX CPUs: the encoder's bf16 screen + f32 rescore (eval/analyze_encode.h) with the unit rows as both
     * weights and inputs, the top K + 1 of each row (itself among them, unless K + 1 others tie at cosine 1).
     * Not the int16 screen: it would compute all M² cosines at ~1.3x the f32 rate (VNNI), where the half matrix
     * below computes M²/2. */
    analyze_screen *amx = analyze_screen_choice() == ANALYZE_SCREEN_AMX
                              ? analyze_screen_init_rows(w, NULL, M, d, K + 1, 0, ANALYZE_SCREEN_AMX)
                              : NULL;
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
        return;
    }
    cpu_blas_init(); /* each of our threads runs its own single-threaded sgemm */
    const int64_t nb_blk = (M + TILE - 1) / TILE, n_pairs = nb_blk * (nb_blk + 1) / 2;
    const int T = omp_get_max_threads();
    lists *per = musae_xcalloc((size_t)T, sizeof(lists));
    int used = 0;
#pragma omp parallel num_threads(T)
    {
        const int t = omp_get_thread_num();
#pragma omp single
        used = omp_get_num_threads();
        lists_init(&per[t], M, K);
        float *s = musae_xmalloc(sizeof(float) * TILE * TILE);
#pragma omp for schedule(dynamic, 1)
        for (int64_t p = 0; p < n_pairs; p++) {
            int64_t bi = 0, rem = p; /* pair p: row block bi, column block bj >= bi, row-major over the upper half */
            while (rem >= nb_blk - bi) rem -= nb_blk - bi, bi++;
            const int64_t bj = bi + rem, i0 = bi * TILE, j0 = bj * TILE;
            const int64_t ni = i0 + TILE <= M ? TILE : M - i0, nj = j0 + TILE <= M ? TILE : M - j0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ni, (int)nj, (int)d, 1.0f, w + i0 * d, (int)d,
                        w + j0 * d, (int)d, 0.0f, s, (int)nj);
            scan_tile(&per[t], s, i0, ni, j0, nj, bj > bi);
        }
        free(s);
    }
    /* the merge: every thread's lists offered to the first's (the order is total, so any order gives one result) */
    lists *out = &per[0];
    for (int t = 1; t < used; t++)
        for (int64_t r = 0; r < M; r++)
            for (int q = 0; q < per[t].n[r]; q++) offer(out, r, per[t].v[r * K + q], per[t].i[r * K + q]);
    /* where the CPU runs the screens' rescore (AVX2 and up), the chosen cosines are recomputed by it and re-sorted,
     * so they are the AMX path's values bit for bit (eval/analyze_rescore.h: one summation order on every level)
     * rather than OpenBLAS's, whose rounding differs between its kernels */
    if (MUSAE_ISA_VARIANTS && musae_isa_get() >= MUSAE_ISA_AVX2) {
        float *zeros = musae_xcalloc((size_t)M, sizeof(float));
        const int avx512 = musae_isa_get() >= MUSAE_ISA_AVX512;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < M; r++) {
            float *v = out->v + r * K;
            int32_t *ix = out->i + r * K;
            const int n = out->n[r];
            analyze_rescore(avx512, w, zeros, d, w + r * d, ix, n, v);
            for (int q = 1; q < n; q++) /* insertion sort: the lists are short and nearly in order */
                for (int e = q; e > 0 && better(v[e], ix[e], v[e - 1], ix[e - 1]); e--) {
                    const float tv = v[e];
                    const int32_t ti = ix[e];
                    v[e] = v[e - 1], ix[e] = ix[e - 1];
                    v[e - 1] = tv, ix[e - 1] = ti;
                }
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
}
