/* The GPU SAE trainer (sae/sae_gpu.h) against the CPU trainer (sae/sae.h), and its streamed feed.
 *
 *  (a) lockstep: along the CPU trainer's own trajectory (AuxK switching on, warmup and decay, per-row top-k and
 *      batch-top-k), the GPU is loaded with the CPU's state before each step, both take the same step, and the
 *      results are compared by the rules below. Then a free run of both from the same init on the same batches.
 *  (b) planted concepts (the setting of tests/test_sae_planted.c: d 256, G 1024, k_true 8, M 2048, k 16, 3M
 *      tokens): the GPU trainer (f32 and bf16) reaches the CPU trainer's held-out FVU within 1% and recovers
 *      >= 95% of the directions.
 *  (c) the same steps fed from the store through the feed, from pageable host batches and from pinned host
 *      batches give bitwise the same state (the kernels are deterministic), and the feed's stream positions
 *      equal musae_stream_tell's.
 *  (d) load_from_cpu → store_to_cpu is bitwise exact.
 *  (e) NCCL builds, one rank: the data-parallel step (sae_gpu_trainer_set_data_parallel) equals the plain step
 *      bitwise (a one-rank all-reduce is the identity); more ranks need more GPUs than this test has.
 *
 * Rules (from tests/test_sae_gpu.cu's kernel rules; u = 2^-24):
 *  exposure  The GPU's fp32 GEMM sums in another order than the CPU's: a pre-activation may differ by up to
 *            δ = 2·(d+1)·u·(Σ_j |W_ij·xc_j| + |b_i|) (each side's worst-case dot-product error). A selection
 *            boundary (k-th vs (k+1)-th value of a row, k_aux-th of the dead latents, n·k-th of the batch, or 0
 *            for ReLU) closer than 2·max δ can flip: those latents are "exposed", and so is every latent
 *            selected in a row holding an exposed one (that row's residual, hence its gradient, differs).
 *            Everything below excludes exposed latents, and the batch-wide quantities (db_dec, FVU, L0, the
 *            threshold) are compared only in steps without exposure (counted and printed). Coverage floors keep
 *            this from passing on nothing: every step compares at least half the latents, at least a third of
 *            the f32 steps are without exposure, and a comparison over no rows (or a zero reference) fails.
 *  exact     step, tokens, scale, dead fraction (the counters before a step are the loaded ones), and the
 *            counters of non-exposed latents.
 *  order     gradients of non-exposed latents: NMSE <= 16·(κ·n·u)², n = d + N (the pre-activation sum, then the
 *            batch sum of the backward), κ = 1/√FVU (the residual x − x̂ cancels: its relative error is the
 *            reconstruction's times ‖x‖/‖x − x̂‖). FVU and AuxK: relative <= 4·κ²·(d + k + 1)·u.
 *  adam      weights: Adam divides each element's moment by its own history, so an order-level gradient error
 *            stays an order-level update error except for elements whose gradient is itself at noise level
 *            (each then moves by at most ~2·lr·3.2): ‖p_gpu − p_cpu‖² <= 1e-4·‖p_cpu − p_before‖² over
 *            non-exposed rows.
 *  bf16      lockstep checks the counters, the dead fraction and the FVU within 5% (bf16 GEMM operands and
 *            gathers move every pre-activation by ~2^-9 relative, so selections differ).
 *  free run  after 60 free steps: held-out FVU within 2% and median decoder-row cosine >= 0.99 (flips
 *            accumulate, so the functional match is checked, not the bits).
 * Skips (exit 77) without a GPU. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include <cuda_runtime.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/dist/dist.h"
#include "host/dist/nccl.h"
#include "host/io/store.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "sae/sae.h"
#include "sae/sae_gpu.h"
#include "sae/train.h"
#include "test.h"

static const double U = 1.0 / 16777216.0;

// ---- synthetic planted data (in memory): rows = Σ of 3 power-law-weighted directions + noise, scaled by 5 --------
struct Planted {
    int d, G;
    std::vector<float> dirs; // [G, d] unit rows
};
static Planted make_planted(int d, int G, uint64_t seed) {
    Planted p{d, G, std::vector<float>((size_t)G * d)};
    for (int g = 0; g < G; g++) {
        double n2 = 0;
        for (int j = 0; j < d; j++) {
            musae_u32x4 r = musae_philox(seed, 1, (uint64_t)g * d + j);
            double u1 = ((double)(r.v[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(r.v[1] >> 8) / 16777216.0;
            p.dirs[(size_t)g * d + j] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
            n2 += (double)p.dirs[(size_t)g * d + j] * p.dirs[(size_t)g * d + j];
        }
        for (int j = 0; j < d; j++) p.dirs[(size_t)g * d + j] = (float)(p.dirs[(size_t)g * d + j] / sqrt(n2));
    }
    return p;
}
static void planted_batch(const Planted &p, uint64_t seed, int64_t batch_no, int64_t n, float *x) {
    for (int64_t r = 0; r < n; r++) {
        float *row = x + r * p.d;
        const uint64_t ctr = (uint64_t)(batch_no * 1000003 + r) * 8;
        for (int j = 0; j < p.d; j++) {
            musae_u32x4 q = musae_philox(seed, 2, ctr * 64 + (uint64_t)j);
            row[j] = 0.05f * (2.0f * musae_u32_to_unit(q.v[0]) - 1.0f);
        }
        for (int t = 0; t < 3; t++) {
            musae_u32x4 q = musae_philox(seed, 3, ctr + (uint64_t)t);
            // power law: low concept ids are frequent
            const double u = musae_u32_to_unit(q.v[0]);
            const int g = (int)(p.G * u * u) % p.G;
            const float a = 0.5f + musae_u32_to_unit(q.v[1]);
            for (int j = 0; j < p.d; j++) row[j] += a * p.dirs[(size_t)g * p.d + j];
        }
        for (int j = 0; j < p.d; j++) row[j] *= 5.0f;
    }
}

// ---- (d) exact round trip --------------------------------------------------------------------------------------
static void fill_state(sae_trainer *t, uint64_t seed) {
    const int64_t n = sae_params_numel(t->cfg.d, t->cfg.M);
    for (int64_t i = 0; i < n; i++) {
        t->p.base[i] = 2.0f * musae_u32_to_unit(musae_philox(seed, 10, (uint64_t)i).v[0]) - 1.0f;
        t->g.base[i] = 2.0f * musae_u32_to_unit(musae_philox(seed, 11, (uint64_t)i).v[0]) - 1.0f;
        t->m.base[i] = 2.0f * musae_u32_to_unit(musae_philox(seed, 12, (uint64_t)i).v[0]) - 1.0f;
        t->v.base[i] = musae_u32_to_unit(musae_philox(seed, 13, (uint64_t)i).v[0]);
    }
    for (int64_t i = 0; i < t->cfg.M; i++) t->since_fired[i] = (int64_t)(musae_philox(seed, 14, (uint64_t)i).v[0] % 100000);
    t->step = 1234;
    t->tokens = 987654321;
    t->scale = 0.123456789f;
    t->threshold = 0.1 + 1.0 / 3.0;
}

static int same_state(const sae_trainer *a, const sae_trainer *b, int with_grad) {
    const size_t pb = sizeof(float) * (size_t)sae_params_numel(a->cfg.d, a->cfg.M);
    return !memcmp(a->p.base, b->p.base, pb) && (!with_grad || !memcmp(a->g.base, b->g.base, pb)) &&
           !memcmp(a->m.base, b->m.base, pb) && !memcmp(a->v.base, b->v.base, pb) &&
           !memcmp(a->since_fired, b->since_fired, sizeof(int64_t) * (size_t)a->cfg.M) && a->step == b->step &&
           a->tokens == b->tokens && !memcmp(&a->scale, &b->scale, sizeof(float)) &&
           !memcmp(&a->threshold, &b->threshold, sizeof(double));
}

static void test_round_trip(musae_dtype prec) {
    sae_config c;
    sae_config_defaults(&c, 40, 300, 7);
    sae_trainer a, b;
    sae_trainer_init(&a, &c, 64);
    sae_trainer_init(&b, &c, 32); // another batch capacity: the state does not depend on it
    fill_state(&a, 5);
    sae_gpu_trainer *g = sae_gpu_trainer_init(&c, 50, prec, NULL);
    sae_gpu_trainer_load_from_cpu(g, &a);
    sae_gpu_trainer_store_to_cpu(g, &b);
    CHECK(same_state(&a, &b, 1), "load_from_cpu -> store_to_cpu is not bitwise exact (%s)", musae_dtype_name(prec));
    CHECK(sae_gpu_trainer_steps(g) == 1234, "step counter %lld", (long long)sae_gpu_trainer_steps(g));
    sae_gpu_trainer_free(g);
    sae_trainer_free(&a);
    sae_trainer_free(&b);
    printf("round trip (%s): exact\n", musae_dtype_name(prec));
}

// ---- (a) lockstep ----------------------------------------------------------------------------------------------
// Marks exposed latents of one step (see the rules) from the CPU state before the step (t0) and the CPU's codes
// after it (t1). Returns the number of exposed rows.
static int64_t exposure(const sae_trainer *t0, const sae_trainer *t1, const float *x_raw, int64_t n,
                        std::vector<uint8_t> &excl, double *delta_max) {
    const sae_config *c = &t0->cfg;
    const int64_t d = c->d, M = c->M;
    std::vector<double> pre((size_t)(n * M)), del((size_t)(n * M));
    std::vector<float> xc((size_t)d);
    double dmax = 0;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t j = 0; j < d; j++) xc[(size_t)j] = x_raw[r * d + j] * t0->scale - t0->p.b_dec[j];
        for (int64_t i = 0; i < M; i++) {
            double s = t0->p.b_enc[i], mag = fabs((double)t0->p.b_enc[i]);
            for (int64_t j = 0; j < d; j++) {
                const double w = (double)t0->p.W_enc[i * d + j] * xc[(size_t)j];
                s += w;
                mag += fabs(w);
            }
            pre[(size_t)(r * M + i)] = s;
            del[(size_t)(r * M + i)] = 2.0 * (double)(d + 1) * U * mag;
            dmax = std::max(dmax, del[(size_t)(r * M + i)]);
        }
    }
    *delta_max = dmax;
    const double w = 2 * dmax;
    std::vector<uint8_t> row_bad((size_t)n, 0);
    excl.assign((size_t)M, 0);
    // The selection of the kk largest positive values of `vals` can differ between the two sides where the kk-th
    // and (kk+1)-th raw values lie within w of each other (and the kk-th could be positive), or where one of the
    // top kk + 1 lies within w of ReLU's zero. Marks those entries (raw values: a clearly negative value can be
    // selected by neither side).
    auto boundary = [&](std::vector<std::pair<double, int64_t>> &vals, int64_t kk, int64_t stride) {
        if (kk <= 0 || vals.empty()) return;
        std::sort(vals.begin(), vals.end(), [](const std::pair<double, int64_t> &a, const std::pair<double, int64_t> &b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        const int64_t nv = (int64_t)vals.size();
        const double vk = kk - 1 < nv ? vals[(size_t)(kk - 1)].first : -INFINITY;
        const double vn = kk < nv ? vals[(size_t)kk].first : -INFINITY;
        const bool tight = vk - vn <= w && vk > -w;
        for (int64_t q = 0; q < nv; q++) {
            const double v = vals[(size_t)q].first;
            const bool near_boundary = tight && (fabs(v - vk) <= w || fabs(v - vn) <= w);
            const bool near_zero = q <= kk && fabs(v) <= w;
            if (near_boundary || near_zero) {
                excl[(size_t)(vals[(size_t)q].second % M)] = 1;
                row_bad[(size_t)(vals[(size_t)q].second / stride)] = 1;
            }
            if (v < vn - w && v < -w) break; // sorted: nothing further down can be near either
        }
    };
    std::vector<uint8_t> dead((size_t)M);
    int64_t n_dead = 0;
    for (int64_t i = 0; i < M; i++) n_dead += dead[(size_t)i] = t0->since_fired[i] > c->dead_tokens;
    const int use_aux = c->auxk_alpha > 0 && c->k_aux > 0 && n_dead > 0;
    const int64_t ka = use_aux ? std::min<int64_t>(n_dead, c->k_aux) : 0;
    std::vector<std::pair<double, int64_t>> vals;
    if (c->batch_topk) {
        for (int64_t e = 0; e < n * M; e++) vals.push_back({pre[(size_t)e], e});
        boundary(vals, n * c->k, M);
    }
    for (int64_t r = 0; r < n; r++) {
        if (!c->batch_topk) {
            vals.clear();
            for (int64_t i = 0; i < M; i++) vals.push_back({pre[(size_t)(r * M + i)], r * M + i});
            boundary(vals, c->k, M);
        }
        if (ka > 0) {
            vals.clear();
            for (int64_t i = 0; i < M; i++)
                if (dead[(size_t)i]) vals.push_back({pre[(size_t)(r * M + i)], r * M + i});
            boundary(vals, ka, M);
        }
    }
    // every latent selected (by the CPU) in an exposed row is contaminated through that row's residual
    int64_t bad = 0;
    for (int64_t r = 0; r < n; r++) {
        if (!row_bad[(size_t)r]) continue;
        bad++;
        for (int64_t e = t1->codes.ptr[r]; e < t1->codes.ptr[r + 1]; e++) excl[(size_t)t1->codes.idx[e]] = 1;
        if (ka > 0)
            for (int64_t e = t1->aux.ptr[r]; e < t1->aux.ptr[r + 1]; e++) excl[(size_t)t1->aux.idx[e]] = 1;
    }
    return bad;
}

// NMSE of a against b over the rows [M, width] not excluded (width 1: a vector over latents). NaN, which fails
// every bound, when there is nothing to compare: every row excluded, or a reference (b − base) that is all zero.
static double nmse_rows(const float *a, const float *b, int64_t M, int64_t width, const std::vector<uint8_t> &excl,
                        const float *base = NULL) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < M; i++) {
        if (excl[(size_t)i]) continue;
        for (int64_t j = 0; j < width; j++) {
            const double x = a[i * width + j], y = b[i * width + j], z = base ? base[i * width + j] : 0.0;
            num += (x - y) * (x - y);
            den += (y - z) * (y - z);
        }
    }
    return den > 0 ? num / den : NAN;
}

struct LockCounts {
    int64_t steps = 0, clean = 0, excluded = 0, aux_steps = 0, min_compared = INT64_MAX;
    double worst_grad = 0, worst_upd = 0;
};

static void lockstep(int batch_topk, musae_dtype prec) {
    const int d = 48, M = 384, k = batch_topk ? 5 : 6, S = 14;
    const int64_t N = 200;
    sae_config c;
    sae_config_defaults(&c, d, M, k);
    c.batch_topk = batch_topk;
    c.k_aux = 24;
    c.dead_tokens = 500; // AuxK from the 4th step on
    c.warmup_steps = 4;
    c.total_steps = S;
    c.decay_frac = 0.3;
    c.lr = 3e-3f;
    c.seed = 3;
    const Planted P = make_planted(d, 96, 21);
    std::vector<float> x((size_t)(N * d)), init((size_t)(1024 * d));
    planted_batch(P, 7, 999, 1024, init.data());
    sae_trainer t, before, got;
    sae_trainer_init(&t, &c, N);
    sae_trainer_init(&before, &c, N);
    sae_trainer_init(&got, &c, N);
    sae_trainer_init_weights(&t, init.data(), 1024);
    sae_gpu_trainer *g = sae_gpu_trainer_init(&c, N, prec, NULL);
    LockCounts lc;
    for (int s = 0; s < S; s++) {
        const int64_t n = s == S - 1 ? N - 37 : N; // a short last batch
        planted_batch(P, 7, s, n, x.data());
        sae_gpu_trainer_load_from_cpu(g, &t);
        sae_gpu_trainer_store_to_cpu(g, &before); // == t (checked by (d)); keeps p_before
        sae_gpu_trainer_step(g, x.data(), n);
        sae_step_stats gs, cs;
        CHECK(sae_gpu_trainer_stats(g, t.step, &gs) == 0, "stats of step %lld", (long long)t.step);
        sae_gpu_trainer_store_to_cpu(g, &got);
        sae_trainer_step(&t, x.data(), n, &cs);
        std::vector<uint8_t> excl;
        double dmax;
        const int64_t bad_rows = exposure(&before, &t, x.data(), n, excl, &dmax);
        int64_t n_excl = 0;
        for (uint8_t e : excl) n_excl += e;
        lc.steps++;
        lc.excluded += n_excl;
        lc.min_compared = std::min(lc.min_compared, (int64_t)M - n_excl);
        lc.aux_steps += cs.dead_frac > 0;
        const double kappa = 1.0 / sqrt(std::max(cs.fvu, 1e-6));
        const double order = 16 * pow(kappa * (double)(d + n) * U, 2);
        const double fvu_rel = 4 * kappa * kappa * (double)(d + k + 1) * U;
        char where[96];
        snprintf(where, sizeof where, "%s %s step %d", batch_topk ? "batch-top-k" : "top-k", musae_dtype_name(prec), s);
        // exact
        CHECK(got.step == t.step && got.tokens == t.tokens && got.scale == t.scale, "%s: counters", where);
        CHECK(gs.dead_frac == cs.dead_frac, "%s: dead fraction %g vs %g", where, gs.dead_frac, cs.dead_frac);
        if (prec != MUSAE_F32) { // bf16 operands move every pre-activation by ~2^-9: selections differ, FVU close
            CHECK(fabs(gs.fvu - cs.fvu) <= 0.05 * cs.fvu, "%s: FVU %.6g vs %.6g (5%%)", where, gs.fvu, cs.fvu);
            continue;
        }
        int64_t bad_sf = 0;
        for (int64_t i = 0; i < M; i++) bad_sf += !excl[(size_t)i] && got.since_fired[i] != t.since_fired[i];
        CHECK(bad_sf == 0, "%s: %lld counters of non-exposed latents differ", where, (long long)bad_sf);
        // order: gradients
        const double e1 = nmse_rows(got.g.W_enc, t.g.W_enc, M, d, excl), e2 = nmse_rows(got.g.b_enc, t.g.b_enc, M, 1, excl),
                     e3 = nmse_rows(got.g.W_dec, t.g.W_dec, M, d, excl);
        lc.worst_grad = std::max(lc.worst_grad, std::max(e1, std::max(e2, e3)) / order);
        CHECK(e1 <= order && e2 <= order && e3 <= order, "%s: gradient NMSE W_enc %.3g b_enc %.3g W_dec %.3g > %.3g",
              where, e1, e2, e3, order);
        // adam: updates
        const double u1 = nmse_rows(got.p.W_enc, t.p.W_enc, M, d, excl, before.p.W_enc),
                     u2 = nmse_rows(got.p.W_dec, t.p.W_dec, M, d, excl, before.p.W_dec),
                     u3 = nmse_rows(got.p.b_enc, t.p.b_enc, M, 1, excl, before.p.b_enc);
        lc.worst_upd = std::max(lc.worst_upd, std::max(u1, std::max(u2, u3)));
        CHECK(u1 <= 1e-4 && u2 <= 1e-4 && u3 <= 1e-4, "%s: update NMSE W_enc %.3g W_dec %.3g b_enc %.3g > 1e-4", where,
              u1, u2, u3);
        if (bad_rows == 0) { // the batch-wide quantities
            lc.clean++;
            std::vector<uint8_t> none(1, 0);
            const double eb = nmse_rows(got.g.b_dec, t.g.b_dec, 1, d, none);
            CHECK(eb <= order, "%s: db_dec NMSE %.3g > %.3g", where, eb, order);
            CHECK(fabs(gs.fvu - cs.fvu) <= fvu_rel * cs.fvu, "%s: FVU %.9g vs %.9g", where, gs.fvu, cs.fvu);
            CHECK(fabs(gs.auxk - cs.auxk) <= fvu_rel * fabs(cs.auxk) + 1e-300, "%s: AuxK %.9g vs %.9g", where, gs.auxk,
                  cs.auxk);
            CHECK(gs.l0 == cs.l0, "%s: L0 %g vs %g", where, gs.l0, cs.l0);
            if (batch_topk) {
                const double tol = (s == 0 ? 1.0 : 0.001) * 2 * dmax + 1e-12;
                CHECK(fabs(got.threshold - t.threshold) <= tol, "%s: threshold %.9g vs %.9g", where, got.threshold,
                      t.threshold);
            }
        }
    }
    printf("lockstep %-11s %s: %lld steps (%lld with AuxK), %lld without exposure, %.1f latents excluded per step; "
           "worst gradient NMSE %.3g of its bound, worst update NMSE %.3g\n",
           batch_topk ? "batch-top-k" : "top-k", musae_dtype_name(prec), (long long)lc.steps, (long long)lc.aux_steps,
           (long long)lc.clean, (double)lc.excluded / (double)lc.steps, lc.worst_grad, lc.worst_upd);
    CHECK(lc.aux_steps >= 3, "AuxK was active in only %lld steps: the test no longer covers it", (long long)lc.aux_steps);
    // coverage: exposure is rare (a near-tie within 2·δ); on this trajectory the CPU sees at most 48 of 384 latents
    // excluded in a step and 7 (top-k) or 11 (batch-top-k) of 14 steps clean. Past these floors the comparisons
    // above would check too little to mean anything.
    CHECK(lc.min_compared * 2 >= M, "a step compared only %lld of %d latents (floor: half)", (long long)lc.min_compared,
          M);
    if (prec == MUSAE_F32)
        CHECK(lc.clean * 3 >= lc.steps, "only %lld of %lld steps without exposure compared the batch-wide quantities "
              "(floor: a third)", (long long)lc.clean, (long long)lc.steps);
    sae_gpu_trainer_free(g);
    sae_trainer_free(&t);
    sae_trainer_free(&before);
    sae_trainer_free(&got);
}

// ---- (e) data parallel, one rank ---------------------------------------------------------------------------------
static void test_data_parallel_one_rank(int *argc, char ***argv) {
#ifdef MUSAE_NCCL
    musae_dist dist;
    musae_dist_init(&dist, argc, argv);
    if (dist.world != 1) {
        printf("data parallel: launched on %d ranks; this check runs on one\n", dist.world);
        musae_dist_finalize(&dist);
        return;
    }
    musae_nccl *nc = musae_nccl_init(&dist);
    const int d = 48, M = 384, k = 6, S = 12;
    const int64_t N = 200;
    sae_config c;
    sae_config_defaults(&c, d, M, k);
    c.k_aux = 24;
    c.dead_tokens = 500;
    c.warmup_steps = 3;
    c.lr = 3e-3f;
    const Planted P = make_planted(d, 96, 21);
    std::vector<float> x((size_t)(N * d));
    planted_batch(P, 7, 999, N, x.data());
    sae_trainer t, a, b;
    sae_trainer_init(&t, &c, N);
    sae_trainer_init(&a, &c, N);
    sae_trainer_init(&b, &c, N);
    sae_trainer_init_weights(&t, x.data(), N);
    sae_gpu_trainer *plain = sae_gpu_trainer_init(&c, N, MUSAE_F32, NULL), *dp = sae_gpu_trainer_init(&c, N, MUSAE_F32, NULL);
    sae_gpu_trainer_set_data_parallel(dp, nc, 0, 1);
    sae_gpu_trainer_load_from_cpu(plain, &t);
    sae_gpu_trainer_load_from_cpu(dp, &t);
    int bad_stats = 0;
    for (int s = 0; s < S; s++) {
        planted_batch(P, 7, s, N, x.data());
        sae_gpu_trainer_step(plain, x.data(), N);
        sae_gpu_trainer_step(dp, x.data(), N);
        sae_step_stats sa, sb;
        CHECK(sae_gpu_trainer_stats(plain, s, &sa) == 0 && sae_gpu_trainer_stats(dp, s, &sb) == 0, "stats");
        // the data-parallel statistics travel as floats
        bad_stats += fabs(sa.fvu - sb.fvu) > 1e-6 * sa.fvu || sa.l0 != sb.l0 || sa.dead_frac != sb.dead_frac ||
                     fabs(sa.auxk - sb.auxk) > 1e-6 * fabs(sa.auxk);
    }
    sae_gpu_trainer_store_to_cpu(plain, &a);
    sae_gpu_trainer_store_to_cpu(dp, &b);
    CHECK(same_state(&a, &b, 1), "data parallel on one rank != the plain GPU step");
    CHECK(bad_stats == 0, "%d steps with other statistics", bad_stats);
    printf("data parallel, one rank: %s after %d steps\n", same_state(&a, &b, 1) ? "bitwise equal" : "DIFFERENT", S);
    sae_gpu_trainer_free(plain);
    sae_gpu_trainer_free(dp);
    sae_trainer_free(&t);
    sae_trainer_free(&a);
    sae_trainer_free(&b);
    musae_nccl_free(nc);
    musae_dist_finalize(&dist);
#else
    (void)argc, (void)argv;
    printf("data parallel: built without NCCL, not checked\n");
#endif
}

// ---- (a) free run ------------------------------------------------------------------------------------------------
static double eval_fvu(const sae_trainer *t, const Planted &P, int64_t n) {
    sae_model m;
    sae_model_from_trainer(&m, t, 0, "synthetic");
    std::vector<float> x((size_t)(n * P.d));
    planted_batch(P, 8, 0, n, x.data());
    sae_eval_acc acc;
    sae_eval_init(&acc, P.d, m.M);
    sae_eval_batch(&acc, &m, x.data(), n);
    const double fvu = sae_eval_finish(&acc).fvu;
    sae_eval_free(&acc);
    sae_model_free(&m);
    return fvu;
}

static void free_run(int batch_topk) {
    const int d = 48, M = 384, k = 6, S = 60;
    const int64_t N = 256;
    sae_config c;
    sae_config_defaults(&c, d, M, k);
    c.batch_topk = batch_topk;
    c.k_aux = 24;
    c.dead_tokens = 2000;
    c.warmup_steps = 10;
    c.lr = 2e-3f;
    c.seed = 4;
    const Planted P = make_planted(d, 96, 21);
    std::vector<float> x((size_t)(N * d));
    planted_batch(P, 7, 999, N, x.data());
    sae_trainer t, got;
    sae_trainer_init(&t, &c, N);
    sae_trainer_init(&got, &c, N);
    sae_trainer_init_weights(&t, x.data(), N);
    sae_gpu_trainer *g = sae_gpu_trainer_init(&c, N, MUSAE_F32, NULL);
    sae_gpu_trainer_load_from_cpu(g, &t);
    for (int s = 0; s < S; s++) {
        planted_batch(P, 7, s, N, x.data());
        sae_gpu_trainer_step(g, x.data(), N);
        sae_trainer_step(&t, x.data(), N, NULL);
    }
    sae_gpu_trainer_store_to_cpu(g, &got);
    const double fc = eval_fvu(&t, P, 2048), fg = eval_fvu(&got, P, 2048);
    std::vector<double> cosv((size_t)M);
    for (int64_t i = 0; i < M; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t j = 0; j < d; j++) {
            const double a = got.p.W_dec[i * d + j], b = t.p.W_dec[i * d + j];
            ab += a * b, aa += a * a, bb += b * b;
        }
        cosv[(size_t)i] = ab / sqrt(std::max(aa * bb, 1e-300));
    }
    std::sort(cosv.begin(), cosv.end());
    const double med = cosv[(size_t)M / 2];
    printf("free run %-11s: %d steps, held-out FVU gpu %.5f cpu %.5f, decoder-row cosine median %.6f min %.4f\n",
           batch_topk ? "batch-top-k" : "top-k", S, fg, fc, med, cosv[0]);
    CHECK(fabs(fg - fc) <= 0.02 * fc, "free run: FVU %.5f vs %.5f (2%%)", fg, fc);
    CHECK(med >= 0.99, "free run: median decoder-row cosine %.5f < 0.99", med);
    CHECK(got.step == t.step && got.tokens == t.tokens, "free run: counters");
    sae_gpu_trainer_free(g);
    sae_trainer_free(&t);
    sae_trainer_free(&got);
}

// ---- (b), (c): the planted store, trained as sae/train.c does -----------------------------------------------------
static char g_dir[600];

static musae_stream_opts train_stream_opts(void) {
    musae_stream_opts so = {};
    so.split = MUSAE_SPLIT_TRAIN;
    so.val_fraction = 0.05;
    so.split_seed = 0;
    so.seed = 1;
    so.shuffle = 1;
    so.window_rows = 131072;
    so.loop = 1;
    so.n_layers = 1;
    so.layers[0] = 0;
    return so;
}

static void planted_config(sae_config *c, int d, int64_t tokens, int64_t batch) {
    sae_config_defaults(c, d, d * 8, 16);
    c->k_aux = d / 2;
    c->warmup_steps = 100;
    c->dead_tokens = 200000;
    c->seed = 1;
    c->total_steps = (tokens + batch - 1) / batch;
}

enum Feed { FEED_STORE, FEED_PAGEABLE, FEED_PINNED };

// Init (scale, b_dec, W) from the stream's first rows, as sae_train_run; gpu NULL trains on the CPU.
static void init_from_stream(musae_store *s, sae_trainer *t) {
    musae_stream_opts so = train_stream_opts();
    musae_stream *st = musae_stream_open(s, &so);
    int64_t rows = std::min<int64_t>(32768, musae_stream_split_rows(st));
    std::vector<float> buf((size_t)(rows * t->cfg.d));
    float *b[1] = {buf.data()};
    rows = musae_stream_next(st, rows, b);
    musae_stream_close(st);
    sae_trainer_init_weights(t, buf.data(), rows);
}

// Trains `steps` steps (tokens/batch schedule) on the CPU (g NULL) or the GPU with the given feed; returns the
// lagged-stats FVU average of the last 50 steps.
static double train_loop(musae_store *s, sae_trainer *t, sae_gpu_trainer *g, Feed feed, int64_t tokens, int64_t batch,
                         int64_t *pos_mismatch) {
    musae_stream_opts so = train_stream_opts();
    musae_stream *st = musae_stream_open(s, &so);
    const int d = t->cfg.d;
    double fvu_tail = 0;
    int64_t tail_n = 0, done = 0;
    const int64_t steps = (tokens + batch - 1) / batch;
    if (g && feed == FEED_STORE) {
        musae_stream *ref = musae_stream_open(s, &so); // positions: the feed's against a direct reader
        std::vector<float> rbuf((size_t)(batch * d));
        float *rb[1] = {rbuf.data()};
        sae_gpu_feed *f = sae_gpu_feed_open(st, 1, d, batch, tokens, sae_gpu_trainer_stream(g));
        const float *dev[1];
        musae_stream_pos pos;
        int64_t n;
        while ((n = sae_gpu_feed_next(f, dev, &pos)) > 0) {
            const int64_t step = sae_gpu_trainer_steps(g);
            sae_gpu_trainer_step(g, dev[0], n);
            sae_step_stats ss;
            if (step > 0 && step >= steps - 50 && sae_gpu_trainer_stats(g, step - 1, &ss) == 0) { // one step behind
                fvu_tail += ss.fvu;
                tail_n++;
            }
            const int64_t got = musae_stream_next(ref, n, rb);
            musae_stream_pos rp = musae_stream_tell(ref);
            *pos_mismatch += got != n || rp.delivered != pos.delivered || rp.window != pos.window ||
                             rp.offset != pos.offset || rp.epoch != pos.epoch;
            done += n;
        }
        const sae_gpu_feed_stats fs = sae_gpu_feed_get_stats(f);
        printf("  feed: %lld batches, GPU waited %.3f s for data, host waited %.3f s, reader %.3f s\n",
               (long long)fs.batches, fs.gpu_wait_s, fs.host_wait_s, fs.read_s);
        sae_gpu_feed_close(f);
        musae_stream_close(ref);
    } else {
        float *buf;
        if (feed == FEED_PINNED) CUDA_CHECK(cudaHostAlloc((void **)&buf, sizeof(float) * (size_t)(batch * d), 0));
        else buf = (float *)musae_xmalloc(sizeof(float) * (size_t)(batch * d));
        float *b[1] = {buf};
        for (int64_t step = 0; step < steps; step++) {
            const int64_t want = std::min(batch, tokens - done);
            const int64_t n = musae_stream_next(st, want, b);
            sae_step_stats ss;
            if (g) {
                sae_gpu_trainer_step(g, buf, n);
                CHECK(sae_gpu_trainer_stats(g, step, &ss) == 0, "stats");
            } else {
                sae_trainer_step(t, buf, n, &ss);
            }
            if (step >= steps - 50) {
                fvu_tail += ss.fvu;
                tail_n++;
            }
            done += n;
        }
        if (feed == FEED_PINNED) CUDA_CHECK(cudaFreeHost(buf));
        else free(buf);
    }
    CHECK(done == tokens, "trained on %lld rows of %lld", (long long)done, (long long)tokens);
    musae_stream_close(st);
    if (g) sae_gpu_trainer_store_to_cpu(g, t);
    return tail_n ? fvu_tail / (double)tail_n : NAN;
}

static sae_eval_result eval_store(const sae_trainer *t, musae_store *s) {
    sae_model m;
    sae_model_from_trainer(&m, t, 0, "synthetic");
    sae_eval_result r = sae_evaluate_store(&m, s, 0, MUSAE_SPLIT_VAL, 0.05, 0, 1 << 20, 2048, 0);
    sae_model_free(&m);
    return r;
}

static void test_planted(musae_store *s) {
    const int d = musae_store_get_info(s)->d_model;
    const int64_t tokens = 3000000, batch = 2048;
    sae_config c;
    planted_config(&c, d, tokens, batch);
    sae_trainer cpu, gt;
    sae_trainer_init(&cpu, &c, batch);
    sae_trainer_init(&gt, &c, batch);
    init_from_stream(s, &cpu);
    double t0 = musae_now();
    int64_t pm = 0;
    train_loop(s, &cpu, NULL, FEED_PAGEABLE, tokens, batch, &pm);
    const double cpu_s = musae_now() - t0;
    const sae_eval_result rc = eval_store(&cpu, s);
    printf("planted CPU: held-out FVU %.5f, recovered %.1f%%, L0 %.2f (%.1f s)\n", rc.fvu, 100 * rc.recovered, rc.l0, cpu_s);
    const musae_dtype precs[2] = {MUSAE_F32, MUSAE_BF16};
    for (musae_dtype prec : precs) {
        init_from_stream(s, &gt);
        sae_gpu_trainer *g = sae_gpu_trainer_init(&c, batch, prec, NULL);
        sae_gpu_trainer_load_from_cpu(g, &gt);
        t0 = musae_now();
        pm = 0;
        train_loop(s, &gt, g, FEED_STORE, tokens, batch, &pm);
        const double gpu_s = musae_now() - t0;
        const sae_eval_result rg = eval_store(&gt, s);
        printf("planted GPU %s (streamed): held-out FVU %.5f, recovered %.1f%%, L0 %.2f (%.1f s, %.0f tokens/s)\n",
               musae_dtype_name(prec), rg.fvu, 100 * rg.recovered, rg.l0, gpu_s, (double)tokens / gpu_s);
        CHECK(pm == 0, "%lld feed positions differ from musae_stream_tell's", (long long)pm);
        CHECK(rg.fvu <= rc.fvu * 1.01, "%s: GPU held-out FVU %.5f, CPU %.5f (+1%% allowed)", musae_dtype_name(prec), rg.fvu,
              rc.fvu);
        CHECK(rg.recovered >= 0.95, "%s: recovered %.3f of the planted directions, need >= 0.95", musae_dtype_name(prec),
              rg.recovered);
        CHECK(rg.l0 > 0 && rg.l0 <= 16, "%s: L0 %g", musae_dtype_name(prec), rg.l0);
        sae_gpu_trainer_free(g);
    }
    sae_trainer_free(&cpu);
    sae_trainer_free(&gt);
}

// (c): store feed vs pageable vs pinned host batches, bitwise.
static void test_stream_equivalence(musae_store *s, musae_dtype prec) {
    const int d = musae_store_get_info(s)->d_model;
    const int64_t batch = 1000, tokens = 150 * batch + 321; // a short last batch
    sae_config c;
    planted_config(&c, d, tokens, batch);
    c.dead_tokens = 20000; // AuxK within the run
    sae_trainer r[3];
    const Feed feeds[3] = {FEED_STORE, FEED_PAGEABLE, FEED_PINNED};
    int64_t pm = 0;
    for (int i = 0; i < 3; i++) {
        sae_trainer_init(&r[i], &c, batch);
        init_from_stream(s, &r[i]);
        sae_gpu_trainer *g = sae_gpu_trainer_init(&c, batch, prec, NULL);
        sae_gpu_trainer_load_from_cpu(g, &r[i]);
        train_loop(s, &r[i], g, feeds[i], tokens, batch, &pm);
        sae_gpu_trainer_free(g);
    }
    CHECK(pm == 0, "%lld feed positions differ from musae_stream_tell's", (long long)pm);
    CHECK(same_state(&r[0], &r[1], 1), "%s: streamed from the store != in-memory pageable batches", musae_dtype_name(prec));
    CHECK(same_state(&r[1], &r[2], 1), "%s: pinned host batches != pageable host batches", musae_dtype_name(prec));
    printf("stream equivalence %s: store feed, pageable and pinned batches: %s after %lld steps\n", musae_dtype_name(prec),
           same_state(&r[0], &r[1], 1) && same_state(&r[1], &r[2], 1) ? "bitwise equal" : "DIFFERENT", (long long)r[0].step);
    for (int i = 0; i < 3; i++) sae_trainer_free(&r[i]);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows as it happens (the emulated run takes minutes) */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("%s", why);
    const int quick = argc > 1 && !strcmp(argv[1], "--quick"); // no planted store (a, d only)
    test_round_trip(MUSAE_F32);
    test_round_trip(MUSAE_BF16);
    test_data_parallel_one_rank(&argc, &argv);
    lockstep(0, MUSAE_F32);
    lockstep(1, MUSAE_F32);
    lockstep(0, MUSAE_BF16);
    free_run(0);
    free_run(1);
    if (!quick) {
        snprintf(g_dir, sizeof g_dir, "%s/test_sae_gpu_train_%d", test_tmp(), (int)getpid());
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cd %s && %s synth_acts -o p.h5 --d 256 --concepts 1024 "
                 "--k-true 8 --rows 300000 --seed 1 >synth.txt 2>&1", g_dir, g_dir, g_dir,
                 getenv("MUSAE_BIN") ? getenv("MUSAE_BIN") : MUSAE_BIN);
        CHECK(system(cmd) == 0, "musae synth_acts (see %s/synth.txt)", g_dir);
        char path[700], err[512];
        snprintf(path, sizeof path, "%s/p.h5", g_dir);
        musae_store *s = musae_store_open(path, err, sizeof err);
        CHECK(s != NULL, "%s", err);
        if (s) {
            test_stream_equivalence(s, MUSAE_F32);
            test_stream_equivalence(s, MUSAE_BF16);
            test_planted(s);
            musae_store_close(s);
        }
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        if (g_test_fail == 0 && system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    TEST_END();
}
