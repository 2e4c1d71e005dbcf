/* SAE sparse backward: the gradients of decode and encode for the selected (token, latent) pairs only, so
 * the cost is O(N·(k + k_aux)·d) instead of the dense O(N·M·d) of autograd through a masked matrix.
 *
 * Entries of the main and the AuxK codes are bucketed by latent with a stable counting sort (tokens in
 * order, main before aux). One thread then owns each latent: it reads W_dec[i] once, and for every entry
 * computes the pre-activation gradient dz = <g, W_dec[i]> and accumulates dW_dec[i], dW_enc[i], db_enc[i]
 * in entry order. No atomics, and the result is the same for any thread count (OpenAI's and sparsify's
 * latent-sorted reduction). */
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/sae_vec.h"
#include "kernels/sae_ops.h"

typedef struct {
    int32_t row; /* < N: main code of token row; >= N: aux code of token row - N */
    float a;
} entry;

/* Scratch: per latent the start of its entries, the first of its AuxK entries, a cursor, and the list of
 * latents with AuxK entries; then the entries. */
size_t sae_cpu_backward_scratch_bytes(int64_t N, int64_t nnz, int64_t M) {
    return sizeof(int64_t) * (size_t)(4 * (M + 1)) + sizeof(entry) * (size_t)(nnz + 1);
}

/* Adds entries [e0, e1) of one latent to its gradient rows and *db, in entry order. */
ISA_BODY void latent_accumulate_body(const entry *ents, int64_t e0, int64_t e1, int64_t N, const float *restrict w,
                                     const float *restrict g_xhat, const float *restrict g_ehat,
                                     const float *restrict xc, int64_t d, float *restrict dwd, float *restrict dwe,
                                     float *db) {
    float dbe = *db;
    for (int64_t e = e0; e < e1; e++) {
        const int64_t r = ents[e].row, n = r < N ? r : r - N;
        const float *restrict g = r < N ? g_xhat + n * d : g_ehat + n * d;
        const float *restrict x = xc + n * d;
        const float a = ents[e].a, dz = sae_dot_body(g, w, d);
        for (int64_t i = 0; i < d; i++) {
            dwd[i] += a * g[i];
            dwe[i] += dz * x[i];
        }
        dbe += dz;
    }
    *db = dbe;
}
MUSAE_ISA_DISPATCH(latent_accumulate,
                   (const entry *ents, int64_t e0, int64_t e1, int64_t N, const float *restrict w,
                    const float *restrict g_xhat, const float *restrict g_ehat, const float *restrict xc, int64_t d,
                    float *restrict dwd, float *restrict dwe, float *db),
                   (ents, e0, e1, N, w, g_xhat, g_ehat, xc, d, dwd, dwe, db))

void sae_cpu_backward(const sae_codes *codes, const sae_codes *aux, const float *g_xhat, const float *g_ehat,
                      const float *xc, const float *W_enc, const float *W_dec, int64_t d, int64_t M, float *dW_enc,
                      float *db_enc, float *dW_dec, float *db_dec, void *scratch) {
    const int64_t N = codes->n_rows;
    const int64_t nnz = codes->ptr[N] + (aux ? aux->ptr[aux->n_rows] : 0);
    MUSAE_ASSERT(!aux || aux->n_rows == N, "aux codes have %lld rows, codes %lld", (long long)aux->n_rows, (long long)N);
    MUSAE_ASSERT(!aux || !aux->ptr[N] || g_ehat, "aux entries without g_ehat");
    MUSAE_ASSERT(2 * N < INT32_MAX, "batch of %lld rows", (long long)N);
    int64_t *start = scratch, *aux0 = start + (M + 1), *cur = aux0 + (M + 1), *hot = cur + (M + 1);
    entry *ents = (entry *)(hot + (M + 1));
    memset(start, 0, sizeof(int64_t) * (size_t)(M + 1));
    for (int64_t e = 0; e < codes->ptr[N]; e++) start[codes->idx[e] + 1]++;
    if (aux)
        for (int64_t e = 0; e < aux->ptr[N]; e++) start[aux->idx[e] + 1]++;
    for (int64_t i = 0; i < M; i++) start[i + 1] += start[i];
    MUSAE_ASSERT(start[M] == nnz, "entry count");
    /* stable fill: main entries by token, then aux entries by token; `start` is advanced and restored */
    for (int pass = 0; pass < 2; pass++) {
        const sae_codes *c = pass == 0 ? codes : aux;
        if (c)
            for (int64_t n = 0; n < N; n++)
                for (int64_t e = c->ptr[n]; e < c->ptr[n + 1]; e++) {
                    entry *t = &ents[start[c->idx[e]]++];
                    t->row = (int32_t)(pass == 0 ? n : n + N);
                    t->a = c->val[e];
                }
        if (pass == 0) memcpy(aux0, start, sizeof(int64_t) * (size_t)M);
    }
    for (int64_t i = M; i > 0; i--) start[i] = start[i - 1];
    start[0] = 0;
    /* main entries: a handful per latent, one pass each */
#pragma omp parallel for schedule(dynamic, 64) if (nnz * d > 65536)
    for (int64_t i = 0; i < M; i++) {
        memset(dW_dec + i * d, 0, sizeof(float) * (size_t)d);
        memset(dW_enc + i * d, 0, sizeof(float) * (size_t)d);
        db_enc[i] = 0.0f;
        latent_accumulate(ents, start[i], aux0[i], N, W_dec + i * d, g_xhat, g_ehat, xc, d, dW_dec + i * d,
                          dW_enc + i * d, &db_enc[i]);
    }
    /* AuxK entries: hundreds per dead latent. Walking tokens in blocks keeps the block's rows of g_ehat and
     * xc in L2 while every dead latent takes its entries from it, instead of streaming two rows from memory
     * per entry; each latent still sees its entries in token order, so the sums are the same as one pass. */
    int64_t n_hot = 0;
    for (int64_t i = 0; i < M; i++)
        if (aux0[i] < start[i + 1]) {
            hot[n_hot++] = i;
            cur[i] = aux0[i];
        }
    const int64_t TB = 64;
    for (int64_t t0 = 0; t0 < N && n_hot > 0; t0 += TB) {
        const int64_t row_end = N + (t0 + TB < N ? t0 + TB : N);
#pragma omp parallel for schedule(dynamic, 16) if (n_hot * TB * d > 65536)
        for (int64_t h = 0; h < n_hot; h++) {
            const int64_t i = hot[h];
            int64_t e1 = cur[i];
            while (e1 < start[i + 1] && ents[e1].row < row_end) e1++;
            latent_accumulate(ents, cur[i], e1, N, W_dec + i * d, g_xhat, g_ehat, xc, d, dW_dec + i * d,
                              dW_enc + i * d, &db_enc[i]);
            cur[i] = e1;
        }
    }
    /* db_dec = Σ_n g_xhat[n] − Σ_i db_enc[i]·W_enc[i], column slices in parallel, rows in order */
#pragma omp parallel for schedule(static) if (N * d > 65536)
    for (int64_t j0 = 0; j0 < d; j0 += 64) {
        const int64_t j1 = j0 + 64 < d ? j0 + 64 : d;
        for (int64_t j = j0; j < j1; j++) db_dec[j] = 0.0f;
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = j0; j < j1; j++) db_dec[j] += g_xhat[n * d + j];
        for (int64_t i = 0; i < M; i++) {
            if (db_enc[i] == 0.0f) continue;
            for (int64_t j = j0; j < j1; j++) db_dec[j] -= db_enc[i] * W_enc[i * d + j];
        }
    }
}
