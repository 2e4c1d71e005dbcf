/* Distributed SAE training (sae/sae_dist.h).
 *
 * One process (label cpu): the pure selections of phase 3 against the one-process ops. The candidates that
 * P shards (of latents or of rows) would send are made with the ordinary ops on slices, merged, and must equal
 * sae_cpu_encode's per-row top-k / top-k_aux and sae_cpu_batch_topk's selection exactly, on values with many
 * ties. An identity encoder (d = M, W_enc = I, b_enc = 0) makes the pre-activations exactly the chosen values.
 *
 * Under `mpirun -np 2` (label mpi, argument 2): the distributed step itself, both modes, per-row and batch
 * top-k, AuxK active, against a one-process trainer on the same global batches. Tolerance rule for the final
 * weights: every Adam step moves an element by about lr at most (|m̂|/√v̂ ≲ 1), and regrouping a sum of up to N
 * fp32 terms (N = batch rows; the rank split and the all-reduce only regroup sums) changes it by a relative
 * (N−1)·u, u = 2⁻²⁴; and the update is rounded to the weight's spacing, so two runs whose updates differ by
 * less may still land one ulp (2u·|w|) apart. Over T steps: |Δw| ≤ T·(lr·N·u + 2u·max|w|) per tensor.
 * Selections are the same (the pre-activations differ by far less than their gaps), so dead counters and L0
 * must match exactly. */
#include <math.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "host/dist/dist.h"
#include "sae/sae_dist.h"
#include "test.h"

/* values in {−0.5, −0.25, 0, 0.25, ..., 1.75}: negatives, zeros and many ties */
static float tie_val(uint64_t stream, uint64_t i) {
    return 0.25f * (float)((int)(musae_philox(11, stream, i).v[0] % 10u) - 2);
}

static void codes_init(sae_codes *c, int64_t rows, int64_t cap) {
    c->n_rows = 0;
    c->cap = cap;
    c->ptr = calloc((size_t)rows + 1, sizeof(int64_t));
    c->idx = malloc(sizeof(int32_t) * (size_t)cap + 4);
    c->val = malloc(sizeof(float) * (size_t)cap + 4);
}

static void codes_fini(sae_codes *c) {
    free(c->ptr);
    free(c->idx);
    free(c->val);
}

static int cand_order(const void *pa, const void *pb) {
    const sae_cand *a = pa, *b = pb;
    if (a->val != b->val) return a->val > b->val ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Row n of c as candidates sorted by (value desc, latent asc), latents shifted by m0; returns the count. */
static int64_t row_sorted(const sae_codes *c, int64_t n, int64_t m0, sae_cand *out) {
    int64_t m = 0;
    for (int64_t e = c->ptr[n]; e < c->ptr[n + 1]; e++) out[m++] = (sae_cand){c->val[e], (int32_t)n, (int32_t)(m0 + c->idx[e])};
    qsort(out, (size_t)m, sizeof *out, cand_order);
    return m;
}

/* Per-row selection over P latent shards equals the one-process encode (main codes in order, AuxK as sets). */
static void test_merge_rows(int P, int k, int k_aux) {
    const int64_t N = 37, M = 50, d = M;
    float *xc = malloc(sizeof(float) * (size_t)(N * d)), *I = calloc((size_t)(M * d), sizeof(float));
    float *zero = calloc((size_t)M, sizeof(float));
    uint8_t *dead = malloc((size_t)M);
    for (int64_t i = 0; i < N * d; i++) xc[i] = tie_val(1, (uint64_t)i);
    for (int64_t i = 0; i < M; i++) {
        I[i * d + i] = 1.0f;
        dead[i] = musae_philox(11, 2, (uint64_t)i).v[0] % 3u == 0;
    }
    sae_codes full, full_aux, loc, loc_aux, merged, merged_aux;
    codes_init(&full, N, N * k);
    codes_init(&full_aux, N, N * k_aux);
    codes_init(&loc, N, N * k);
    codes_init(&loc_aux, N, N * k_aux);
    codes_init(&merged, N, N * k);
    codes_init(&merged_aux, N, N * k_aux);
    sae_cpu_encode(xc, I, zero, N, d, M, k, dead, k_aux, &full, &full_aux, NULL);
    sae_cand *all = malloc(sizeof(sae_cand) * (size_t)(P * N * k)), *all_aux = malloc(sizeof(sae_cand) * (size_t)(P * N * k_aux));
    for (int r = 0; r < P; r++) {
        int64_t lo, hi;
        sae_dist_slice(M, r, P, &lo, &hi);
        const int64_t Ml = hi - lo;
        /* as exchange_rows sends them: each row's local entries, global latents, padded with val 0 */
        sae_cpu_encode(xc, I + lo * d, zero + lo, N, d, Ml, k < Ml ? k : (int)Ml, dead + lo, k_aux < Ml ? k_aux : (int)Ml,
                       &loc, &loc_aux, NULL);
        for (int pass = 0; pass < 2; pass++) {
            const sae_codes *c = pass ? &loc_aux : &loc;
            const int w = pass ? k_aux : k;
            sae_cand *dst = (pass ? all_aux : all) + (int64_t)r * N * w;
            for (int64_t n = 0; n < N; n++)
                for (int64_t j = 0; j < w; j++) {
                    const int64_t e = c->ptr[n] + j;
                    dst[n * w + j] = e < c->ptr[n + 1] ? (sae_cand){c->val[e], (int32_t)n, (int32_t)(lo + c->idx[e])}
                                                       : (sae_cand){0.0f, (int32_t)n, -1};
                }
        }
    }
    sae_dist_merge_rows(all, P, N, k, k, &merged);
    sae_dist_merge_rows(all_aux, P, N, k_aux, k_aux, &merged_aux);
    int same = merged.n_rows == N, same_aux = merged_aux.n_rows == N;
    sae_cand *ra = malloc(sizeof(sae_cand) * (size_t)M), *rb = malloc(sizeof(sae_cand) * (size_t)M);
    for (int64_t n = 0; n < N; n++) {
        same &= merged.ptr[n + 1] - merged.ptr[n] == full.ptr[n + 1] - full.ptr[n];
        for (int64_t e = 0; same && e < full.ptr[n + 1] - full.ptr[n]; e++)
            same &= merged.idx[merged.ptr[n] + e] == full.idx[full.ptr[n] + e] &&
                    merged.val[merged.ptr[n] + e] == full.val[full.ptr[n] + e];
        const int64_t a = row_sorted(&merged_aux, n, 0, ra), b = row_sorted(&full_aux, n, 0, rb);
        same_aux &= a == b;
        for (int64_t e = 0; same_aux && e < a; e++) same_aux &= ra[e].idx == rb[e].idx && ra[e].val == rb[e].val;
    }
    CHECK(same, "P %d, k %d: merged per-row top-k equals sae_cpu_encode's (entries and order)", P, k);
    CHECK(same_aux, "P %d, k_aux %d: merged AuxK selection equals sae_cpu_encode's", P, k_aux);
    CHECK(full.ptr[N] > 0 && full_aux.ptr[N] > 0, "the case selects something (%lld, %lld)", (long long)full.ptr[N],
          (long long)full_aux.ptr[N]);
    free(ra), free(rb), free(all), free(all_aux), free(xc), free(I), free(zero), free(dead);
    codes_fini(&full), codes_fini(&full_aux), codes_fini(&loc), codes_fini(&loc_aux), codes_fini(&merged),
        codes_fini(&merged_aux);
}

/* Batch-top-k over P shards of rows (data-parallel) or of latents equals sae_cpu_batch_topk on the whole. */
static void test_select_batch(int P, int by_latent, int64_t total) {
    const int64_t N = 23, M = 41;
    float *pre = malloc(sizeof(float) * (size_t)(N * M)), *part = malloc(sizeof(float) * (size_t)(N * M));
    for (int64_t i = 0; i < N * M; i++) pre[i] = tie_val(3, (uint64_t)i);
    sae_codes full, loc;
    codes_init(&full, N, total);
    codes_init(&loc, N, total);
    const float min_full = sae_cpu_batch_topk(pre, N, M, total, &full);
    sae_cand *all = malloc(sizeof(sae_cand) * (size_t)(P * total));
    for (int r = 0; r < P; r++) {
        int64_t lo, hi;
        sae_dist_slice(by_latent ? M : N, r, P, &lo, &hi);
        const int64_t rows = by_latent ? N : hi - lo, cols = by_latent ? hi - lo : M;
        for (int64_t n = 0; n < rows; n++)
            for (int64_t j = 0; j < cols; j++)
                part[n * cols + j] = by_latent ? pre[n * M + lo + j] : pre[(lo + n) * M + j];
        sae_cpu_batch_topk(part, rows, cols, total, &loc);
        sae_cand *dst = all + (int64_t)r * total;
        int64_t e = 0;
        for (int64_t n = 0; n < rows; n++)
            for (; e < loc.ptr[n + 1]; e++)
                dst[e] = (sae_cand){loc.val[e], (int32_t)(by_latent ? n : lo + n), (int32_t)(by_latent ? lo + loc.idx[e] : loc.idx[e])};
        for (; e < total; e++) dst[e] = (sae_cand){0.0f, -1, -1};
    }
    uint8_t *sel = malloc((size_t)(P * total));
    const float min_sel = sae_dist_select_batch(all, P * total, total, sel);
    /* the selected (row, latent) set equals the one-process selection */
    uint8_t *want = calloc((size_t)(N * M), 1), *got = calloc((size_t)(N * M), 1);
    for (int64_t n = 0; n < N; n++)
        for (int64_t e = full.ptr[n]; e < full.ptr[n + 1]; e++) want[n * M + full.idx[e]] = 1;
    int64_t n_sel = 0;
    for (int64_t i = 0; i < P * total; i++)
        if (sel[i]) {
            got[(int64_t)all[i].row * M + all[i].idx] = 1;
            n_sel++;
        }
    CHECK(n_sel == full.ptr[N] && !memcmp(want, got, (size_t)(N * M)),
          "P %d, %s shards, total %lld: %lld selected, one process %lld, same set %d", P, by_latent ? "latent" : "row",
          (long long)total, (long long)n_sel, (long long)full.ptr[N], !memcmp(want, got, (size_t)(N * M)));
    CHECK(min_sel == min_full, "smallest selected %g, one process %g", min_sel, min_full);
    free(pre), free(part), free(all), free(sel), free(want), free(got);
    codes_fini(&full), codes_fini(&loc);
}

static void test_slices(void) {
    for (int P = 1; P <= 5; P++) {
        int64_t prev = 0, lo, hi, smin = 1 << 30, smax = 0;
        for (int r = 0; r < P; r++) {
            sae_dist_slice(13, r, P, &lo, &hi);
            CHECK(lo == prev && hi >= lo, "slice %d of %d starts where the last ended", r, P);
            prev = hi;
            smin = hi - lo < smin ? hi - lo : smin;
            smax = hi - lo > smax ? hi - lo : smax;
        }
        CHECK(prev == 13 && smax - smin <= 1, "%d slices cover 13 items, sizes within 1", P);
    }
}

/* ---- under mpirun: the step against one process -------------------------------------------------------- */

static void make_batch(float *x, int64_t N, int64_t d, uint64_t step) {
    /* a few strong directions plus noise, with a large mean (as residual streams have) */
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < d; j++) {
            const uint64_t c = (step * (uint64_t)N + (uint64_t)n) * (uint64_t)d + (uint64_t)j;
            const float u = musae_u32_to_unit(musae_philox(5, 1, c).v[0]), w = musae_u32_to_unit(musae_philox(5, 2, c).v[0]);
            x[n * d + j] = 3.0f + (j % 5 == (int64_t)(n % 5) ? 2.0f * u : 0.0f) + 0.3f * (w - 0.5f);
        }
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static void test_step(const musae_dist *D, sae_dist_mode mode, int batch_topk) {
    const int64_t N = 64, d = 16, T = 40;
    sae_config c;
    sae_config_defaults(&c, (int)d, 61, 4); /* M = 61: shards of unequal size */
    c.batch_topk = batch_topk;
    c.k_aux = 8;
    c.dead_tokens = 2 * N; /* latents idle for two batches are dead: AuxK runs */
    c.warmup_steps = 5;
    c.lr = 4e-3f;
    c.seed = 9;
    sae_trainer ref, t;
    sae_trainer_init(&ref, &c, N);
    sae_dist_trainer_init(&t, &c, N, D, mode);
    float *x = malloc(sizeof(float) * (size_t)(N * d));
    make_batch(x, N, d, 1000);
    sae_trainer_init_weights(&ref, x, N);
    sae_trainer_init_weights(&t, x, N);
    int stats_same = 1, aux_steps = 0;
    double worst_rel = 0;
    for (int64_t s = 0; s < T; s++) {
        const int64_t n = s == T - 1 ? N - 5 : N; /* a short last batch, as at the end of a run */
        make_batch(x, n, d, (uint64_t)s);
        sae_step_stats a, b;
        sae_trainer_step(&ref, x, n, &a);
        sae_trainer_step(&t, x, n, &b);
        stats_same &= a.l0 == b.l0 && a.dead_frac == b.dead_frac;
        worst_rel = fmax(worst_rel, fabs(a.fvu - b.fvu) / a.fvu);
        if (a.auxk > 0) worst_rel = fmax(worst_rel, fabs(a.auxk - b.auxk) / a.auxk), aux_steps++;
    }
    sae_trainer tmp;
    const sae_trainer *full = sae_dist_full(&t, &tmp);
    if (full) {
        const char *name = mode == SAE_DIST_DATA ? "data" : "latent";
        const double u = ldexp(1.0, -24);
        const int64_t M = c.M;
        const float *got[4] = {full->p.W_enc, full->p.b_enc, full->p.W_dec, full->p.b_dec};
        const float *want[4] = {ref.p.W_enc, ref.p.b_enc, ref.p.W_dec, ref.p.b_dec};
        const int64_t len[4] = {M * d, M, M * d, d};
        const char *tn[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
        printf("%s%s (AuxK in %d steps, stats rel %.2g):", name, batch_topk ? " batch-top-k" : "", aux_steps, worst_rel);
        for (int q = 0; q < 4; q++) {
            double wmax = 0;
            for (int64_t i = 0; i < len[q]; i++) wmax = fmax(wmax, fabs(want[q][i]));
            const double tol = (double)T * ((double)c.lr * (double)N * u + 2 * u * wmax), dw = max_diff(got[q], want[q], len[q]);
            printf(" %s %.2g (%.0f%% of %.2g)", tn[q], dw, 100 * dw / tol, tol);
            CHECK(dw <= tol, "%s: %s differs by %g > T·(lr·N·u + 2u·max|w|) = %g", name, tn[q], dw, tol);
        }
        printf("\n");
        CHECK(!memcmp(full->since_fired, ref.since_fired, sizeof(int64_t) * (size_t)M), "%s: dead counters equal", name);
        CHECK(stats_same && worst_rel < 1e-5, "%s: per-step L0 and dead fraction equal, FVU/AuxK within 1e-5 (%g)",
              name, worst_rel);
        CHECK(aux_steps > 0, "%s: AuxK was active", name);
        CHECK(full->step == T && full->tokens == T * N - 5, "%s: counters", name);
        if (batch_topk) CHECK(full->threshold == ref.threshold || fabs(full->threshold - ref.threshold) <= 1e-5 * ref.threshold,
                              "%s: threshold %g vs %g", name, full->threshold, ref.threshold);
    }
    sae_dist_full_free(&tmp);
    free(x);
    sae_trainer_free(&ref);
    sae_trainer_free(&t);
}

int main(int argc, char **argv) {
    musae_dist D;
    musae_dist_init(&D, &argc, &argv);
    const int expect_world = argc > 1 ? atoi(argv[1]) : 1;
    CHECK(D.world == expect_world, "world %d, expected %d (launcher %s)", D.world, expect_world, D.launcher);
    if (D.world == 1) {
        test_slices();
        for (int P = 2; P <= 3; P++) {
            test_merge_rows(P, 5, 7);
            test_merge_rows(P, 1, 30);
            test_select_batch(P, 0, 60);
            test_select_batch(P, 1, 60);
            test_select_batch(P, 1, 900); /* more than the positive entries: every positive is taken */
        }
    } else {
        for (int bt = 0; bt < 2; bt++) {
            test_step(&D, SAE_DIST_DATA, bt);
            test_step(&D, SAE_DIST_LATENT, bt);
        }
    }
    musae_dist_finalize(&D);
    if (D.rank != 0 && !g_test_fail) return 0; /* rank 0 prints the summary */
    TEST_END();
}
