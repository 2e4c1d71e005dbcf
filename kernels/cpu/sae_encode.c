/* SAE encoder: GEMM + bias + ReLU + per-row top-k (and the dead-latent top-k_aux for AuxK), fused by tiles.
 *
 * Each thread takes blocks of ROWS rows and walks the latents in tiles of TILE_M: one single-threaded sgemm
 * makes the [ROWS, TILE_M] pre-activation tile (it stays in L2), and every row's candidates are merged at once
 * into that row's min-heap of the best k. Most values fall below the heap's minimum after the first tiles,
 * so the merge is a compare per value. The [N, M] matrix is never written unless the caller asks for it.
 * The blocks are fixed, not cut per thread: OpenBLAS rounds a row by its place in the sgemm, so blocks of
 * N / threads rows made the pre-activations depend on OMP_NUM_THREADS (tests/test_sae_ops.c). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/sae_vec.h"
#include "kernels/sae_ops.h"

enum { TILE_M = 512, ROWS = 256 };

/* "a is a worse selection than b": smaller value, or the same value at a higher latent (ties go low). */
static inline int worse(float av, int32_t ai, float bv, int32_t bi) { return av < bv || (av == bv && ai > bi); }

/* Min-heap of the k best (value, index) pairs seen so far; the root is the worst kept. */
typedef struct {
    float *v;
    int32_t *i;
    int n, k;
} heap;

static inline void heap_sift_down(heap *h, int p) {
    for (;;) {
        int l = 2 * p + 1, r = l + 1, w = p;
        if (l < h->n && worse(h->v[l], h->i[l], h->v[w], h->i[w])) w = l;
        if (r < h->n && worse(h->v[r], h->i[r], h->v[w], h->i[w])) w = r;
        if (w == p) return;
        float tv = h->v[p];
        int32_t ti = h->i[p];
        h->v[p] = h->v[w];
        h->i[p] = h->i[w];
        h->v[w] = tv;
        h->i[w] = ti;
        p = w;
    }
}

static inline void heap_push(heap *h, float v, int32_t i) {
    if (h->n < h->k) { /* sift up */
        int c = h->n++;
        while (c > 0) {
            int p = (c - 1) / 2;
            if (!worse(v, i, h->v[p], h->i[p])) break;
            h->v[c] = h->v[p];
            h->i[c] = h->i[p];
            c = p;
        }
        h->v[c] = v;
        h->i[c] = i;
    } else if (worse(h->v[0], h->i[0], v, i)) {
        h->v[0] = v;
        h->i[0] = i;
        heap_sift_down(h, 0);
    }
}

/* Heap contents sorted best first, in place: pop the worst to the end, O(k log k). */
static void heap_sort_desc(heap *h) {
    for (int end = h->n - 1; end > 0; end--) {
        float tv = h->v[0];
        int32_t ti = h->i[0];
        h->v[0] = h->v[end];
        h->i[0] = h->i[end];
        h->v[end] = tv;
        h->i[end] = ti;
        heap hh = {h->v, h->i, end, h->k};
        heap_sift_down(&hh, 0);
    }
}

/* Bias + ReLU over one row of a tile, then the merge. Values are scanned 16 at a time against the heap's
 * current bar (its minimum once full, else 0): a block with nothing above the bar, the common case once the
 * heap is full, costs one vector compare, and no branch depends on an individual value. */
ISA_BODY void merge_row_body(float *restrict t, const float *restrict bias, int64_t nc, int64_t c0, heap *h, heap *ha,
                             const uint8_t *restrict dead) {
    for (int64_t j = 0; j < nc; j++) {
        float z = t[j] + bias[j];
        t[j] = z > 0.0f ? z : 0.0f;
    }
    for (int64_t j0 = 0; j0 < nc; j0 += SAE_LANES) {
        const int64_t j1 = j0 + SAE_LANES <= nc ? j0 + SAE_LANES : nc;
        float bar = h->n < h->k ? 0.0f : h->v[0];
        int any = 0;
        for (int64_t j = j0; j < j1; j++) any |= t[j] > bar;
        if (any && h->k > 0) /* k = 0: batch-top-k selects later from the whole matrix */
            for (int64_t j = j0; j < j1; j++)
                if (t[j] > (h->n < h->k ? 0.0f : h->v[0])) heap_push(h, t[j], (int32_t)(c0 + j));
        if (!ha) continue;
        bar = ha->n < ha->k ? 0.0f : ha->v[0];
        any = 0;
        for (int64_t j = j0; j < j1; j++) any |= (t[j] > bar) & (dead[j] != 0);
        if (any)
            for (int64_t j = j0; j < j1; j++)
                if (dead[j] && t[j] > (ha->n < ha->k ? 0.0f : ha->v[0])) heap_push(ha, t[j], (int32_t)(c0 + j));
    }
}
MUSAE_ISA_DISPATCH(merge_row,
                   (float *restrict t, const float *restrict bias, int64_t nc, int64_t c0, heap *h, heap *ha,
                    const uint8_t *restrict dead),
                   (t, bias, nc, c0, h, ha, dead))

/* Rows were written at n*k with cnt[n] entries; pack them into CSR order (entries only move left). */
static void compact(sae_codes *c, const int32_t *cnt, int64_t N, int k) {
    int64_t at = 0;
    c->ptr[0] = 0;
    for (int64_t n = 0; n < N; n++) {
        if (at != n * k) {
            memmove(c->idx + at, c->idx + n * k, sizeof(int32_t) * (size_t)cnt[n]);
            memmove(c->val + at, c->val + n * k, sizeof(float) * (size_t)cnt[n]);
        }
        at += cnt[n];
        c->ptr[n + 1] = at;
    }
    c->n_rows = N;
}

void sae_cpu_encode(const float *xc, const float *W_enc, const float *b_enc, int64_t N, int64_t d, int64_t M, int k,
                    const uint8_t *dead, int k_aux, sae_codes *codes, sae_codes *aux, float *pre) {
    MUSAE_ASSERT(k >= 0 && k <= M && k_aux >= 0 && k_aux <= M, "k %d, k_aux %d, M %lld", k, k_aux, (long long)M);
    MUSAE_ASSERT(codes->cap >= N * k, "codes hold %lld entries, need %lld", (long long)codes->cap, (long long)(N * k));
    const int use_aux = dead && k_aux > 0;
    MUSAE_ASSERT(!use_aux || (aux && aux->cap >= N * k_aux), "aux codes too small for N·k_aux");
    MUSAE_ASSERT(d <= INT32_MAX && M <= INT32_MAX, "d %lld, M %lld", (long long)d, (long long)M);
    int32_t *cnt = musae_xmalloc(sizeof(int32_t) * (size_t)N * 2 + 8), *cnt_aux = cnt + N;
    cpu_blas_init(); /* our OpenMP threads each run their own single-threaded sgemm */
    const int64_t R = ROWS, n_blocks = (N + R - 1) / R;
#pragma omp parallel
    {
        float *tile = musae_xmalloc(sizeof(float) * (size_t)(R * TILE_M));
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < n_blocks; blk++) {
            const int64_t r0 = blk * R, nr = r0 + R <= N ? R : N - r0;
            for (int64_t r = 0; r < nr; r++) cnt[r0 + r] = cnt_aux[r0 + r] = 0;
            for (int64_t c0 = 0; c0 < M; c0 += TILE_M) {
                const int64_t nc = c0 + TILE_M <= M ? TILE_M : M - c0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)d, 1.0f, xc + r0 * d,
                            (int)d, W_enc + c0 * d, (int)d, 0.0f, tile, (int)nc);
                for (int64_t r = 0; r < nr; r++) {
                    const int64_t n = r0 + r;
                    float *t = tile + r * nc;
                    heap h = {codes->val + n * k, codes->idx + n * k, cnt[n], k};
                    heap ha = {use_aux ? aux->val + n * k_aux : NULL, use_aux ? aux->idx + n * k_aux : NULL,
                               cnt_aux[n], k_aux};
                    merge_row(t, b_enc + c0, nc, c0, &h, use_aux ? &ha : NULL, use_aux ? dead + c0 : NULL);
                    if (pre) memcpy(pre + n * M + c0, t, sizeof(float) * (size_t)nc);
                    cnt[n] = h.n;
                    cnt_aux[n] = ha.n;
                }
            }
            for (int64_t r = 0; r < nr; r++) {
                const int64_t n = r0 + r;
                heap h = {codes->val + n * k, codes->idx + n * k, cnt[n], k};
                heap_sort_desc(&h); /* AuxK entries stay in heap order: nothing reads them in order */
            }
        }
        free(tile);
    }
    compact(codes, cnt, N, k);
    if (aux) {
        if (use_aux) compact(aux, cnt_aux, N, k_aux);
        else {
            aux->n_rows = N;
            memset(aux->ptr, 0, sizeof(int64_t) * (size_t)(N + 1));
        }
    }
    free(cnt);
}
