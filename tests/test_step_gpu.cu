/* The CUDA step table (kernels/cuda/step_*.cu) against the CPU one (kernels/cpu/step_*.c), op by op, and
 * generation on the GPU: the captured-graph loop against the plain device loop, the host loop and the CPU.
 *   test_step_gpu            every op and generation case
 *   test_step_gpu --quick    fewer and smaller cases (what tools/cuda_emu/run_step.sh runs on the emulator)
 *   test_step_gpu --only ops|generate
 * Exit 0 = passed, 1 = a failure, 77 = skipped (no usable GPU; the reason is printed).
 *
 * Rules. Bitwise: embed (the same fp32 adds in the same order), kv_append and capture (copies), add_rows_at
 * (one rounded product and one rounded add per element), and the sampler: tokens, the written sequence and
 * ids, and the CFG scores (kernels/sample_rule.h makes every deciding value the same bits). attention: the
 * sum(K) rule of tests/test_ops_gpu, NMSE <= max((64u)², 64·K·u²) with K = dh + keys. Generation: the graph
 * loop must give exactly the plain device loop's codes and scores (the same kernels on the same inputs); the
 * GPU codes must equal the CPU's in fp32 on the tiny model (its logits agree to ~1e-6, far from any greedy
 * tie or draw boundary in these cases), and READ captures agree by the sum rule over the model's depth. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "host/core/philox.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/step_ops.h"
#include "model/generate.h"
#include "test.h"

static const double U32 = 5.9604644775390625e-08; /* 2^-24 */
static const musae_ops *G, *C;
static const musae_step_ops *GS, *CS;
static int g_quick = 0;
static const char *g_only = NULL; /* "ops" or "generate" */
static uint64_t g_draw = 0;

static float unif(float lo, float hi) {
    musae_u32x4 w = musae_philox(0x5eed, 21, g_draw / 4);
    const float u = musae_u32_to_unit(w.v[g_draw % 4]);
    g_draw++;
    return lo + (hi - lo) * u;
}
static std::vector<float> rnd(int64_t n, float lo, float hi) {
    std::vector<float> v((size_t)n);
    for (auto &x : v) x = unif(lo, hi);
    return v;
}
template <class T> static T *dput(const std::vector<T> &v) {
    T *d = (T *)G->alloc(v.size() * sizeof(T));
    G->upload(d, v.data(), v.size() * sizeof(T));
    return d;
}
template <class T> static std::vector<T> dget(const T *d, size_t n) {
    std::vector<T> v(n);
    G->download(v.data(), d, n * sizeof(T));
    return v;
}
static int64_t *dpos(int64_t p) { return dput(std::vector<int64_t>{p}); }

static void report(const char *op, const char *cas, bool ok, const char *detail) {
    printf("%-12s %-44s %s  %s\n", op, cas, ok ? "ok  " : "FAIL", detail);
    CHECK(ok, "%s %s: %s", op, cas, detail);
}

// ---- ops ---------------------------------------------------------------------------------------------------

static void case_embed(int64_t K, int64_t n_ids, int64_t dim, int64_t rows, int64_t p) {
    auto table = rnd(K * n_ids * dim, -1, 1), pt = rnd((p + 1) * dim, -1, 1);
    std::vector<int64_t> ids((size_t)(K * rows));
    for (auto &i : ids) i = (int64_t)unif(0, (float)n_ids - 0.01f);
    std::vector<float> ref((size_t)(rows * dim));
    CS->embed(ref.data(), table.data(), K, n_ids, dim, ids.data(), rows, pt.data(), &p);
    float *x = (float *)G->alloc(ref.size() * sizeof(float));
    float *dt = dput(table), *dp = dput(pt);
    int64_t *di = dput(ids), *ps = dpos(p);
    GS->embed(x, dt, K, n_ids, dim, di, rows, dp, ps);
    const bool ok = dget(x, ref.size()) == ref;
    char cas[96];
    snprintf(cas, sizeof cas, "K%lld ids%lld dim%lld rows%lld pos%lld", (long long)K, (long long)n_ids, (long long)dim,
             (long long)rows, (long long)p);
    report("embed", cas, ok, "bitwise");
    G->free(x), G->free(dt), G->free(dp), G->free(di), G->free(ps);
}

static void case_kv_append(int64_t rows, int64_t width, int64_t t_max, int64_t p) {
    auto cache = rnd(rows * t_max * width, -1, 1), src = rnd(rows * width, -1, 1);
    float *dc = dput(cache), *ds = dput(src);
    int64_t *ps = dpos(p);
    CS->kv_append(cache.data(), src.data(), rows, width, t_max * width, &p);
    GS->kv_append(dc, ds, rows, width, t_max * width, ps);
    char cas[96];
    snprintf(cas, sizeof cas, "rows%lld width%lld t_max%lld pos%lld", (long long)rows, (long long)width,
             (long long)t_max, (long long)p);
    report("kv_append", cas, dget(dc, cache.size()) == cache, "bitwise, other positions untouched");
    G->free(dc), G->free(ds), G->free(ps);
}

static void case_attention(int64_t batch, int64_t heads, int64_t dh, int64_t t_max, int64_t p) {
    const int64_t H = heads * dh, H2 = 2 * H;
    auto q = rnd(batch * H, -1, 1), kv = rnd(batch * t_max * H2, -1, 1);
    musae_attn_params a = {};
    a.batch = batch, a.heads = heads, a.tq = 1, a.dh = dh;
    a.q_sb = H, a.q_st = H, a.k_sb = t_max * H2, a.k_st = H2, a.v_sb = t_max * H2, a.v_st = H2, a.o_sb = H, a.o_st = H;
    a.scale = 1.0f / sqrtf((float)dh), a.causal = 1;
    std::vector<float> ref((size_t)(batch * H));
    CS->attention(ref.data(), q.data(), kv.data(), kv.data() + H, &a, t_max, &p);
    float *dq = dput(q), *dkv = dput(kv), *out = (float *)G->alloc(ref.size() * sizeof(float));
    int64_t *ps = dpos(p);
    GS->attention(out, dq, dkv, dkv + H, &a, t_max, ps);
    auto got = dget(out, ref.size());
    double num = 0, den = 0;
    bool finite = true;
    for (size_t i = 0; i < ref.size(); i++) {
        finite &= isfinite(got[i]) != 0;
        num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    const double nmse = den > 0 ? num / den : num, K = (double)(dh + p + 1);
    const double tol = fmax((64 * U32) * (64 * U32), 64 * K * U32 * U32);
    char cas[96], det[96];
    snprintf(cas, sizeof cas, "b%lld h%lld dh%lld t_max%lld pos%lld", (long long)batch, (long long)heads, (long long)dh,
             (long long)t_max, (long long)p);
    snprintf(det, sizeof det, "NMSE %.2e <= %.2e", nmse, tol);
    report("attention", cas, finite && nmse <= tol, det);
    G->free(dq), G->free(dkv), G->free(out), G->free(ps);
}

static void case_add_rows(int64_t rows, int64_t dim, int64_t n_vec, int64_t p0, int64_t p1, int64_t p) {
    auto x = rnd(rows * dim, -2, 2), v = rnd(n_vec * dim, -1, 1), al = rnd(rows, -3, 3);
    float *dx = dput(x), *dv = dput(v), *da = dput(al);
    int64_t *ps = dpos(p);
    CS->add_rows_at(x.data(), v.data(), n_vec, al.data(), rows, dim, p0, p1, &p);
    GS->add_rows_at(dx, dv, n_vec, da, rows, dim, p0, p1, ps);
    char cas[96];
    snprintf(cas, sizeof cas, "rows%lld dim%lld vecs%lld [%lld, %lld) at %lld", (long long)rows, (long long)dim,
             (long long)n_vec, (long long)p0, (long long)p1, (long long)p);
    report("add_rows_at", cas, dget(dx, x.size()) == x, "bitwise");
    G->free(dx), G->free(dv), G->free(da), G->free(ps);
}

static void case_capture(int64_t rows, int64_t dim, int64_t slots, int64_t p) {
    auto ring = rnd(slots * rows * dim, -1, 1), x = rnd(rows * dim, -1, 1);
    float *dr = dput(ring), *dx = dput(x);
    int64_t *ps = dpos(p);
    CS->capture(ring.data(), x.data(), rows, dim, slots, &p);
    GS->capture(dr, dx, rows, dim, slots, ps);
    char cas[96];
    snprintf(cas, sizeof cas, "rows%lld dim%lld slots%lld pos%lld", (long long)rows, (long long)dim, (long long)slots,
             (long long)p);
    report("capture", cas, dget(dr, ring.size()) == ring, "bitwise");
    G->free(dr), G->free(dx), G->free(ps);
}

/* logits kinds: 0 random, 1 quantized (ties), 2 all equal, 3 mostly -inf, 4 ±0 and -1, 5 some NaN */
static float logit(int kind, int64_t i) {
    const float r = unif(0, 1);
    switch (kind) {
    case 0: return (r - 0.5f) * 16.0f;
    case 1: return floorf(r * 6.0f) * 0.5f;
    case 2: return 0.75f;
    case 3: return (r < 0.8f && i % 97) ? -INFINITY : floorf(r * 4.0f);
    case 4: return r < 0.4f ? -0.0f : (r < 0.7f ? 0.0f : -1.0f);
    default: return (r < 0.1f && i) ? NAN : (r - 0.5f) * 4.0f;
    }
}

static void case_sample(int64_t B, int64_t K, int64_t V, int cfg, int kind, int greedy, float T, int top_k, float top_p,
                        int64_t steps) {
    const mg_delay_plan plan = mg_delay_plan_steps(K, steps);
    const int64_t rows = cfg ? 2 * B : B, L = plan.max_length;
    musae_sample_params p = {};
    p.B = B, p.K = K, p.V = V, p.rows = rows, p.cfg = cfg, p.guidance = 3.0f, p.greedy = greedy, p.temperature = T;
    p.top_k = top_k, p.top_p = top_p, p.seed = 42, p.delayed = plan.delayed, p.max_length = L;
    std::vector<int64_t> seq((size_t)(B * K * L), V), ids((size_t)(K * rows), V), tok((size_t)(B * K));
    std::vector<float> sc((size_t)(B * K * V));
    int64_t *dseq = dput(seq), *dids = dput(ids), *dtok = dput(tok);
    float *dsc = dput(sc);
    bool ok_tok = true, ok_sc = true, ok_seq = true;
    for (int64_t s = 0; s < steps; s++) {
        std::vector<float> lg((size_t)(rows * K * V));
        for (int64_t i = 0; i < (int64_t)lg.size(); i++) lg[i] = logit(kind, i % V);
        float *dlg = dput(lg);
        int64_t *ps = dpos(s);
        CS->sample(lg.data(), cfg ? sc.data() : NULL, tok.data(), seq.data(), ids.data(), &p, &s);
        GS->sample(dlg, cfg ? dsc : NULL, dtok, dseq, dids, &p, ps);
        ok_tok &= dget(dtok, tok.size()) == tok;
        if (cfg) {
            auto g = dget(dsc, sc.size());
            ok_sc &= !memcmp(g.data(), sc.data(), sc.size() * sizeof(float)); /* NaN bits too */
        }
        ok_seq &= dget(dseq, seq.size()) == seq && dget(dids, ids.size()) == ids;
        G->free(dlg), G->free(ps);
    }
    char cas[128];
    snprintf(cas, sizeof cas, "B%lld K%lld V%lld cfg%d kind%d %s T%g k%d p%g", (long long)B, (long long)K, (long long)V,
             cfg, kind, greedy ? "greedy" : "sample", (double)T, top_k, (double)top_p);
    report("sample", cas, ok_tok && ok_sc && ok_seq, ok_tok ? (ok_sc ? (ok_seq ? "tokens, scores, seq, ids identical"
                                                                           : "seq/ids differ")
                                                                     : "scores differ")
                                                            : "tokens differ");
    G->free(dseq), G->free(dids), G->free(dtok), G->free(dsc);
}

static void test_ops(void) {
    case_embed(4, 2049, 32, 6, 0);
    case_embed(4, 2049, 1024, 3, 17);
    case_kv_append(6, 64, 40, 0);
    case_kv_append(3, 2048, 9, 8);
    const int64_t ps[] = {0, 1, 31, 32, 100, 399};
    for (int64_t p : ps) {
        if (g_quick && p > 40) continue;
        case_attention(2, 4, 8, 400, p);
        case_attention(6, 16, 64, g_quick ? 64 : 1503, p);
    }
    if (!g_quick) case_attention(1, 24, 64, 2048, 2047);
    case_add_rows(3, 32, 1, 3, 9, 2);
    case_add_rows(3, 32, 1, 3, 9, 3);
    case_add_rows(6, 1024, 1, 3, 9, 8);
    case_add_rows(6, 1024, 1, 3, 9, 9);
    case_add_rows(6, 1024, 3, 3, 9, 5); /* per-item vectors: rows [cond items; uncond items] */
    case_add_rows(4, 32, 4, 0, 1, 0);
    case_capture(6, 32, 4, 0);
    case_capture(3, 1024, 64, 130);
    for (int kind = 0; kind < 6; kind++) {
        case_sample(2, 4, 2048, 1, kind, 1, 1.0f, 0, 1.0f, 3);
        case_sample(2, 4, 2048, 1, kind, 0, 1.0f, 250, 1.0f, 3);
        if (g_quick) continue;
        case_sample(3, 4, 2048, 0, kind, 0, 0.7f, 50, 0.9f, 3);
        case_sample(1, 4, 2048, 1, kind, 0, 1.5f, 0, 0.5f, 3);
        case_sample(2, 4, 2048, 0, kind, 0, 1.0f, 2048, 1e-6f, 3);
        case_sample(2, 3, 7, 1, kind, 0, 1.0f, 3, 0.99f, 2);
    }
}

// ---- generation --------------------------------------------------------------------------------------------

typedef struct {
    int64_t B, K, V;
    std::vector<float> *scores;
} step_log;

static void on_step(void *ctx, int64_t step, const float *scores, const int64_t *tok) {
    step_log *l = (step_log *)ctx;
    l->scores->insert(l->scores->end(), scores, scores + l->B * l->K * l->V);
}

static void test_generate(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny-musicgen", test_fixtures());
    mg_model mg, mc;
    mg_load(&mg, dir, G, MUSAE_PREC_FP32);
    mg_load(&mc, dir, C, MUSAE_PREC_FP32);
    const int64_t K = mg.K, V = mg.V, H = mg.H, S = 5;
    struct {
        int64_t B, frames;
        int text;
        float guidance;
        mg_sampler s;
        const char *name;
    } cases[] = {
        {2, 10, 1, 3.0f, {1, 1.0f, 0, 1.0f, 0, 0}, "text CFG 3 greedy + hooks"},
        {3, 12, 1, 3.0f, {0, 1.0f, 250, 1.0f, 5, 0}, "text CFG 3 top-k 250 + hooks"},
        {1, 12, 0, 1.0f, {0, 0.8f, 50, 0.9f, 9, 0}, "uncond top-k 50 top-p 0.9 + hooks"},
        {3, 12, 1, 3.0f, {0, 1.0f, 250, 1.0f, 5, 1}, "text CFG 3 top-k 250 same_draws + hooks"},
    };
    const int n_cases = g_quick ? 1 : 4;
    for (int c = 0; c < n_cases; c++) {
        const int64_t B = cases[c].B;
        const mg_delay_plan plan = mg_delay_plan_frames(K, cases[c].frames);
        const int64_t T = plan.steps;
        auto states = rnd(B * S * H, -1, 1);
        std::vector<float> mask((size_t)(B * S));
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < S; j++) mask[b * S + j] = j < S - b % S ? 1.0f : 0.0f;
        mg_text text = {states.data(), mask.data(), S};
        const int cfg = cases[c].text && cases[c].guidance > 1.0f;
        const int64_t rows = cfg ? 2 * B : B;
        auto vh = rnd(H, -0.5f, 0.5f);
        float *vg = dput(vh);
        float *vc = (float *)C->alloc(sizeof(float) * H);
        C->upload(vc, vh.data(), sizeof(float) * H);
        /* runs: 0 CPU device loop, 1 GPU graph, 2 GPU plain device loop, 3 GPU host loop */
        const mg_gen_loop loops[4] = {MG_LOOP_DEVICE, MG_LOOP_GRAPH, MG_LOOP_DEVICE, MG_LOOP_HOST};
        std::vector<int64_t> codes[4];
        std::vector<float> sc[4], cap[4];
        for (int r = 0; r < 4; r++) {
            const mg_model *m = r ? &mg : &mc;
            codes[r].assign((size_t)(B * K * plan.frames), -1);
            cap[r].assign((size_t)(rows * T * H), 0.0f);
            mg_hook hk[2] = {};
            hk[0].kind = MG_HOOK_ADD, hk[0].layer = 0, hk[0].branch = MG_BRANCH_BOTH, hk[0].pos_begin = 2;
            hk[0].pos_end = 7, hk[0].vec = r ? vg : vc, hk[0].scale = 2.0f;
            hk[1].kind = MG_HOOK_READ, hk[1].layer = 1, hk[1].branch = MG_BRANCH_BOTH, hk[1].pos_end = MG_POS_END;
            hk[1].dst = cap[r].data(), hk[1].dst_t = T;
            mg_gen_params p = {};
            p.steps = T, p.guidance = cases[c].guidance, p.sampler = cases[c].s, p.loop = loops[r];
            step_log lg = {B, K, V, &sc[r]};
            mg_generate(m, B, cases[c].text ? &text : NULL, &p, hk, 2, on_step, &lg, codes[r].data());
        }
        const bool graph_plain = codes[1] == codes[2] && sc[1] == sc[2] && cap[1] == cap[2];
        for (int r = 1; r < 4; r++) { /* where a difference starts, when there is one */
            int64_t first = -1;
            for (size_t i = 0; i < sc[0].size() && first < 0; i++)
                if (fabs((double)sc[r][i] - sc[0][i]) > 1e-3) first = (int64_t)(i / (size_t)(B * K * V));
            printf("  run %d (%s) vs CPU: codes %s, scores first off by > 1e-3 at step %lld\n", r,
                   r == 1 ? "GPU graph" : r == 2 ? "GPU device" : "GPU host", codes[r] == codes[0] ? "equal" : "differ",
                   (long long)first);
        }
        const bool gpu_cpu = codes[1] == codes[0] && codes[3] == codes[0];
        double num = 0, den = 0, worst = 0;
        for (size_t i = 0; i < sc[0].size(); i++) {
            const double d = (double)sc[1][i] - sc[0][i];
            num += d * d, den += (double)sc[0][i] * sc[0][i], worst = fmax(worst, fabs(d));
        }
        double cn = 0, cd = 0;
        for (size_t i = 0; i < cap[0].size(); i++) {
            const double d = (double)cap[1][i] - cap[0][i];
            cn += d * d, cd += (double)cap[0][i] * cap[0][i];
        }
        /* depth: 2 layers of GEMMs over H and ffn plus attention over T keys */
        const double Kd = 2.0 * (H + mg.ffn + T + H) * 4, tol = 64 * Kd * U32 * U32;
        char det[160];
        snprintf(det, sizeof det, "graph == plain device loop (codes, scores, READ): %s", graph_plain ? "yes" : "NO");
        report("generate", cases[c].name, graph_plain, det);
        snprintf(det, sizeof det, "GPU graph/host-loop codes == CPU: %s; scores max abs %.2e", gpu_cpu ? "yes" : "NO",
                 worst);
        report("generate", cases[c].name, gpu_cpu, det);
        snprintf(det, sizeof det, "scores NMSE %.2e, READ NMSE %.2e <= %.2e", den ? num / den : num, cd ? cn / cd : cn,
                 tol);
        report("generate", cases[c].name, (den ? num / den : num) <= tol && (cd ? cn / cd : cn) <= tol, det);
        G->free(vg);
        C->free(vc);
    }
    mg_free(&mg);
    mg_free(&mc);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = argv[++i];
        else {
            fprintf(stderr, "usage: test_step_gpu [--quick] [--only ops|generate]\n");
            return 2;
        }
    }
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("%s", why);
    G = musae_ops_cuda();
    if (!G) TEST_SKIP("musae_ops_cuda() returned NULL");
    GS = musae_step_ops_cuda();
    C = musae_ops_cpu();
    CS = musae_step_ops_cpu();
    MUSAE_ASSERT(GS && GS->graph_begin, "the CUDA step table must exist and have graphs");
    if (!g_only || !strcmp(g_only, "ops")) test_ops();
    if (!g_only || !strcmp(g_only, "generate")) test_generate();
    TEST_END();
}
