/* The device-resident decoding step (model/mg_step.h, kernels/step_ops.h) on the CPU step table:
 *   - the sampling op (kernels/cpu/step_sample.c) against model/sampling.c on adversarial rows: ties at the
 *     top-k threshold, all-equal rows, -inf and NaN entries, ±0, top-p edges, k >= V, temperatures, greedy;
 *   - musae_exp_neg against libm exp;
 *   - mg_generate's device loop against its host loop on tests/fixtures/tiny-musicgen: codes, every step's
 *     scores and tokens (on_step), and READ captures must be identical (greedy and sampled with top-k and
 *     top-p, CFG 3, unconditional and text, batch 1 and 3, with a non-zero ADD hook, shared by the items or one
 *     vector per item; sampled also with same_draws, every item on Philox stream 0), and a SET hook must
 *     select the host loop. Exact equality is the claim: the step is mg_forward's t = 1 call op for op. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/philox.h"
#include "kernels/cpu/step_cpu.h"
#include "kernels/sample_rule.h"
#include "model/generate.h"
#include "model/mg_step.h"
#include "test.h"

static uint64_t g_draw;
static float unif(void) {
    musae_u32x4 w = musae_philox(0x57e9, 3, g_draw / 4);
    return musae_u32_to_unit(w.v[g_draw++ % 4]);
}

/* ---- sampling op vs model/sampling.c ---------------------------------------------------------------------- */

enum { ROW_RANDOM, ROW_QUANT, ROW_EQUAL, ROW_NEGINF, ROW_ZEROS, ROW_NAN, ROW_ONE_FINITE, ROW_KINDS };

static void make_row(float *s, int64_t V, int kind) {
    for (int64_t i = 0; i < V; i++) {
        const float r = unif();
        switch (kind) {
        case ROW_RANDOM: s[i] = (r - 0.5f) * 20.0f; break;
        case ROW_QUANT: s[i] = floorf(r * 6.0f) * 0.5f; break; /* few distinct values: ties everywhere */
        case ROW_EQUAL: s[i] = 1.25f; break;
        case ROW_NEGINF: s[i] = r < 0.7f ? -INFINITY : floorf(r * 8.0f); break;
        case ROW_ZEROS: s[i] = r < 0.5f ? -0.0f : (r < 0.8f ? 0.0f : -1.0f); break; /* ±0 are one score */
        case ROW_NAN: s[i] = r < 0.2f ? NAN : (r - 0.5f) * 4.0f; break;
        default: s[i] = -INFINITY; break;
        }
    }
    if (kind == ROW_ONE_FINITE) s[V / 3] = -3.0f;
    if (kind == ROW_NAN && V > 1) s[1] = NAN;
    if (kind == ROW_NEGINF || kind == ROW_NAN) s[V / 2] = 2.0f; /* at least one candidate */
}

static void test_sample_rows(void) {
    const int64_t Vs[] = {1, 7, 64, 2048};
    const int top_ks[] = {0, 1, 2, 3, 50, 250, 2048, 5000};
    const float top_ps[] = {1.0f, 0.9f, 0.5f, 1e-6f, 0.99999994f};
    const float temps[] = {1.0f, 0.7f, 3.0f};
    int64_t n = 0, bad = 0;
    for (size_t vi = 0; vi < sizeof Vs / sizeof Vs[0]; vi++) {
        const int64_t V = Vs[vi];
        float *s = malloc(sizeof(float) * (size_t)V);
        uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)V);
        double *prob = malloc(sizeof(double) * (size_t)V);
        void *work = malloc(mg_sample_work_bytes(V));
        for (int kind = 0; kind < ROW_KINDS; kind++)
            for (int rep = 0; rep < 3; rep++) {
                make_row(s, V, kind);
                for (size_t a = 0; a < sizeof top_ks / sizeof top_ks[0]; a++)
                    for (size_t b = 0; b < sizeof top_ps / sizeof top_ps[0]; b++)
                        for (size_t c = 0; c < sizeof temps / sizeof temps[0]; c++)
                            for (int d = 0; d < 4; d++) {
                                /* u at the ends of [0, 1) and random */
                                const float u = d == 0 ? 0.0f : d == 1 ? 0.99999994f : unif();
                                mg_sampler ms = {0, temps[c], top_ks[a], top_ps[b], 0, 0};
                                musae_sample_params sp = {.V = V, .temperature = temps[c], .top_k = top_ks[a],
                                                          .top_p = top_ps[b]};
                                const int64_t want = mg_sample_row(s, V, &ms, u, work);
                                const int64_t got = cpu_step_sample_row(s, V, &sp, u, keys, prob);
                                n++;
                                if (got != want && bad++ < 5)
                                    fprintf(stderr, "V %lld kind %d k %d p %g T %g u %g: op %lld, sampling.c %lld\n",
                                            (long long)V, kind, top_ks[a], (double)top_ps[b], (double)temps[c],
                                            (double)u, (long long)got, (long long)want);
                            }
                /* greedy: first argmax, NaN rules of torch.argmax's sequential scan */
                mg_sampler g = {.greedy = 1};
                musae_sample_params gp = {.V = V, .greedy = 1};
                n++;
                if (mg_sample_row(s, V, &g, 0, work) != cpu_step_sample_row(s, V, &gp, 0, keys, prob)) bad++;
            }
        free(s), free(keys), free(prob), free(work);
    }
    printf("sampling op vs model/sampling.c: %lld rows, %lld differ\n", (long long)n, (long long)bad);
    CHECK(bad == 0, "%lld of %lld sampled tokens differ", (long long)bad, (long long)n);
}

/* the whole op: CFG scores bitwise, the draw of (b, k, step), the delay pattern in seq and ids */
static void test_sample_op(void) {
    const int64_t B = 3, K = 4, V = 64, steps = 9;
    const mg_delay_plan plan = mg_delay_plan_steps(K, steps);
    const int64_t L = plan.max_length, rows = 2 * B;
    musae_sample_params p = {.B = B, .K = K, .V = V, .rows = rows, .cfg = 1, .guidance = 3.0f, .temperature = 0.9f,
                             .top_k = 20, .top_p = 0.8f, .seed = 11, .delayed = plan.delayed, .max_length = L};
    mg_sampler ms = {0, 0.9f, 20, 0.8f, 11, 0};
    float *lg = malloc(sizeof(float) * (size_t)(rows * K * V)), *sc = malloc(sizeof(float) * (size_t)(B * K * V));
    float *want_sc = malloc(sizeof(float) * (size_t)(B * K * V));
    int64_t *tok = malloc(sizeof(int64_t) * (size_t)(B * K)), *seq = malloc(sizeof(int64_t) * (size_t)(B * K * L));
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(K * rows));
    void *work = malloc(mg_sample_work_bytes(V));
    for (int64_t i = 0; i < B * K * L; i++) seq[i] = V;
    int ok_sc = 1, ok_tok = 1, ok_seq = 1, ok_ids = 1;
    for (int64_t step = 0; step < steps; step++) {
        for (int64_t i = 0; i < rows * K * V; i++) lg[i] = floorf(unif() * 16.0f) * 0.25f;
        cpu_step_sample(lg, sc, tok, seq, ids, &p, &step);
        mg_cfg_combine(want_sc, lg, lg + B * K * V, 3.0f, B * K * V);
        ok_sc &= !memcmp(sc, want_sc, sizeof(float) * (size_t)(B * K * V));
        for (int64_t b = 0; b < B; b++)
            for (int64_t k = 0; k < K; k++) {
                const int64_t t = mg_sample_row(want_sc + (b * K + k) * V, V, &ms,
                                                mg_sample_uniform(11, b, k, K, step), work);
                ok_tok &= tok[b * K + k] == t;
                const int64_t val = mg_delay_free(&plan, k, step + 1) ? t : V;
                ok_seq &= seq[(b * K + k) * L + step + 1] == val;
                ok_ids &= ids[k * rows + b] == val && ids[k * rows + B + b] == val;
            }
    }
    CHECK(ok_sc, "CFG scores bitwise equal to mg_cfg_combine");
    CHECK(ok_tok, "tokens equal to mg_sample_row with mg_sample_uniform's draw");
    CHECK(ok_seq, "sequence positions follow the delay pattern");
    CHECK(ok_ids, "next-step ids of both CFG branches");
    free(lg), free(sc), free(want_sc), free(tok), free(seq), free(ids), free(work);
}

static void test_exp(void) {
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        const double x = -745.0 * i / 200000.0 - (i % 7) * 1e-9;
        const double e = exp(x), g = musae_exp_neg(x);
        if (e < 1e-300) continue; /* below the cut-off musae_exp_neg returns 0 */
        const double rel = fabs(g - e) / e;
        if (rel > worst) worst = rel;
    }
    printf("musae_exp_neg vs exp: max relative error %.3g (%.2f ulp)\n", worst, worst / 2.220446049250313e-16);
    CHECK(worst <= 4 * 2.220446049250313e-16, "musae_exp_neg within 4 ulp of exp (%.3g)", worst);
    CHECK(musae_exp_neg(0.0) == 1.0 && musae_exp_neg(-800.0) == 0.0 && musae_exp_neg(NAN) == 0.0, "exp edges");
}

/* ---- device loop vs host loop ----------------------------------------------------------------------------- */

static mg_model g_m;

typedef struct {
    int64_t n, B, K, V;
    float *scores;  /* [steps, B, K, V] */
    int64_t *tok;   /* [steps, B, K] */
} log_t;

static void on_step(void *ctx, int64_t step, const float *scores, const int64_t *tok) {
    log_t *l = ctx;
    const int64_t bkv = l->B * l->K * l->V, bk = l->B * l->K;
    memcpy(l->scores + step * bkv, scores, sizeof(float) * (size_t)bkv);
    memcpy(l->tok + step * bk, tok, sizeof(int64_t) * (size_t)bk);
    l->n = step + 1;
}

typedef struct {
    int64_t B, frames;
    int text, steer; /* steer 2: one ADD vector per item (mg_hook.vec_n = B) */
    float guidance;
    mg_sampler s;
    const char *name;
} gen_case;

static void run_case(const gen_case *c) {
    const int64_t B = c->B, K = g_m.K, V = g_m.V, H = g_m.H, S = 5;
    const mg_delay_plan plan = mg_delay_plan_frames(K, c->frames);
    const int64_t T = plan.steps;
    float *states = NULL, *mask = NULL;
    mg_text text = {0};
    if (c->text) { /* random text states; item b has S - b real tokens */
        states = malloc(sizeof(float) * (size_t)(B * S * H));
        mask = malloc(sizeof(float) * (size_t)(B * S));
        for (int64_t i = 0; i < B * S * H; i++) states[i] = unif() * 2.0f - 1.0f;
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < S; j++) mask[b * S + j] = j < S - (b % S) ? 1.0f : 0.0f;
        text = (mg_text){states, mask, S};
    }
    const int cfg = c->text && c->guidance > 1.0f;
    const int64_t rows = cfg ? 2 * B : B;
    const int64_t n_vec = c->steer == 2 ? B : 1;
    float vh[4 * 256];
    for (int64_t i = 0; i < n_vec * H; i++) vh[i] = unif() - 0.5f;
    float *vec = g_m.ops->alloc(sizeof(float) * (size_t)(n_vec * H));
    g_m.ops->upload(vec, vh, sizeof(float) * (size_t)(n_vec * H));
    float item_scale[4] = {1.0f, -0.5f, 2.0f, 0.25f};
    /* a steering ADD over positions [3, 9) of both branches, a READ after it at the same layer, and a READ
     * of the embeddings over every position */
    float *cap[2][2];
    for (int l = 0; l < 2; l++)
        for (int w = 0; w < 2; w++) cap[l][w] = calloc((size_t)(rows * T * H), sizeof(float));
    mg_hook hk[2][3];
    for (int l = 0; l < 2; l++) {
        hk[l][0] = (mg_hook){.kind = MG_HOOK_ADD, .layer = 0, .branch = MG_BRANCH_BOTH, .pos_begin = 3, .pos_end = 9,
                             .vec = vec, .vec_n = n_vec, .scale = 1.5f, .item_scale = item_scale};
        hk[l][1] = (mg_hook){.kind = MG_HOOK_READ, .layer = 0, .branch = MG_BRANCH_BOTH, .pos_end = MG_POS_END,
                             .dst = cap[l][0], .dst_t = T};
        hk[l][2] = (mg_hook){.kind = MG_HOOK_READ, .layer = -1, .branch = MG_BRANCH_BOTH, .pos_begin = 1, .pos_end = 6,
                             .dst = cap[l][1], .dst_t = T};
    }
    int64_t *codes[2];
    log_t lg[2];
    for (int l = 0; l < 2; l++) {
        codes[l] = calloc((size_t)(B * K * plan.frames), sizeof(int64_t));
        lg[l] = (log_t){0, B, K, V, malloc(sizeof(float) * (size_t)(T * B * K * V)), malloc(sizeof(int64_t) * (size_t)(T * B * K))};
        mg_gen_params p = {.steps = T, .guidance = c->guidance, .sampler = c->s, .loop = l ? MG_LOOP_DEVICE : MG_LOOP_HOST};
        const int n_hooks = c->steer ? 3 : 0;
        const mg_gen_loop got = mg_gen_loop_for(&g_m, &p, c->steer ? hk[l] : NULL, n_hooks, NULL);
        CHECK(got == (l ? MG_LOOP_DEVICE : MG_LOOP_HOST), "%s: loop %d chosen", c->name, got);
        mg_generate(&g_m, B, c->text ? &text : NULL, &p, c->steer ? hk[l] : NULL, n_hooks, on_step, &lg[l], codes[l]);
    }
    const int same_codes = !memcmp(codes[0], codes[1], sizeof(int64_t) * (size_t)(B * K * plan.frames));
    const int same_scores = !memcmp(lg[0].scores, lg[1].scores, sizeof(float) * (size_t)(T * B * K * V));
    const int same_tok = !memcmp(lg[0].tok, lg[1].tok, sizeof(int64_t) * (size_t)(T * B * K));
    int64_t distinct = 0; /* the codes are not degenerate: count distinct values */
    for (int64_t i = 0; i < B * K * plan.frames; i++) {
        int seen = 0;
        for (int64_t j = 0; j < i && !seen; j++) seen = codes[1][j] == codes[1][i];
        distinct += !seen;
    }
    printf("%-34s B %lld, %lld frames, rows %lld: codes %s, scores %s, tokens %s (%lld distinct codes)\n", c->name,
           (long long)B, (long long)plan.frames, (long long)rows, same_codes ? "identical" : "DIFFER",
           same_scores ? "identical" : "DIFFER", same_tok ? "identical" : "DIFFER", (long long)distinct);
    CHECK(same_codes && same_scores && same_tok && lg[0].n == T && lg[1].n == T,
          "%s: device loop == host loop (codes %d, scores %d, tokens %d)", c->name, same_codes, same_scores, same_tok);
    if (c->steer) {
        const int same_cap = !memcmp(cap[0][0], cap[1][0], sizeof(float) * (size_t)(rows * T * H)) &&
                             !memcmp(cap[0][1], cap[1][1], sizeof(float) * (size_t)(rows * T * H));
        int64_t nz = 0, outside = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t t = 0; t < T; t++) {
                const float *x = cap[1][1] + (r * T + t) * H;
                for (int64_t i = 0; i < H; i++) {
                    nz += t >= 1 && t < 6 && x[i] != 0.0f;
                    outside += (t < 1 || t >= 6) && x[i] != 0.0f;
                }
            }
        CHECK(same_cap, "%s: READ captures identical", c->name);
        CHECK(nz > 0 && outside == 0, "%s: READ fills exactly its positions (%lld set, %lld outside)", c->name,
              (long long)nz, (long long)outside);
    }
    for (int l = 0; l < 2; l++) {
        free(codes[l]), free(lg[l].scores), free(lg[l].tok);
        free(cap[l][0]), free(cap[l][1]);
    }
    g_m.ops->free(vec);
    free(states), free(mask);
}

static void test_generate(void) {
    const mg_sampler greedy = {.greedy = 1};
    const mg_sampler topk = {0, 1.0f, 250, 1.0f, 5, 0};
    const mg_sampler topkp = {0, 0.8f, 50, 0.9f, 123, 0};
    const mg_sampler topp = {0, 1.3f, 0, 0.7f, 99, 0};
    const mg_sampler same = {0, 1.0f, 250, 1.0f, 5, 1}; /* every item draws from stream 0 (musae steer's pairs) */
    const gen_case cases[] = {
        {1, 12, 0, 0, 1.0f, greedy, "uncond greedy"},
        {3, 12, 0, 1, 1.0f, greedy, "uncond greedy + ADD/READ hooks"},
        {3, 20, 1, 0, 3.0f, greedy, "text CFG 3 greedy"},
        {1, 20, 1, 1, 3.0f, topk, "text CFG 3 top-k 250 + hooks"},
        {3, 20, 1, 1, 3.0f, topkp, "text CFG 3 top-k 50 top-p 0.9 + hooks"},
        {3, 20, 1, 2, 3.0f, topkp, "text CFG 3 top-k 50 + per-item ADD"},
        {3, 20, 1, 2, 3.0f, same, "text CFG 3 top-k 250 same_draws + per-item ADD"},
        {3, 16, 0, 0, 1.0f, topp, "uncond T 1.3 top-p 0.7"},
        {3, 16, 1, 0, 1.0f, topkp, "text no CFG top-k top-p"},
        {2, 2, 1, 0, 3.0f, topkp, "short case (no delay), CFG"},
        {2, 70, 0, 2, 1.0f, topk, "70 frames: READ chunks + per-item ADD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);

    /* a SET hook runs the host loop; no hooks and the AUTO loop run the device loop on the CPU table */
    float src[64] = {0};
    mg_hook set = {.kind = MG_HOOK_SET, .layer = 0, .branch = MG_BRANCH_BOTH, .pos_end = MG_POS_END, .src = src, .src_t = 1};
    mg_gen_params p = {.steps = 5, .sampler = {.greedy = 1}};
    const char *why = NULL;
    CHECK(mg_gen_loop_for(&g_m, &p, &set, 1, &why) == MG_LOOP_HOST, "SET hook → host loop");
    printf("with a SET hook: %s\n", why);
    CHECK(mg_gen_loop_for(&g_m, &p, NULL, 0, &why) == MG_LOOP_DEVICE, "CPU, AUTO → device loop (no graphs)");
    printf("CPU table, AUTO: %s\n", why);
}

int main(int argc, char **argv) {
    test_exp();
    test_sample_rows();
    test_sample_op();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny-musicgen", test_fixtures());
    mg_load(&g_m, dir, musae_ops_cpu(), MUSAE_PREC_FP32);
    test_generate();
    mg_free(&g_m);
    TEST_END();
}
