/* musae steer and generate --features through the binary (docs/STEER.md), on tests/fixtures/tiny-musicgen with the
 * SAE tests/fixtures/sae/steer_tiny and a FEATURES.h5 written here through the one writer (eval/features_io.h):
 *   - generate --features takes β = /features/max_act[f]: its codes equal --beta with that number; a NaN β, an SAE
 *     whose sha256 is not the recorded one, --features with --beta are refused (exit 1 + message);
 *   - a study of 3 features × 2 α × 2 prompts × 3 seeds with 3 random draws and CLAP (tests/fixtures/tiny-clap,
 *     labels from a LABELS.jsonl written here, exemplars cut from two tones of a store written here): 192 clips.
 *     summary.json's statistics (activation and CLAP gains) equal the ones computed here from steer.jsonl with the
 *     test's own code (steer_run_check.h: Wilcoxon by enumerating every sign vector, BH by its definition, the
 *     bootstrap resampling; here: Wilson's interval, means); each clip's CLAP measures equal the ones recomputed
 *     from `musae clap` embeddings of its WAV, the sources and the label texts; each desc_delta is desc minus the
 *     baseline's; each clip's code_diff equals the count recomputed from the codes files; every random draw and the
 *     other-feature control have the steered vector's norm (α·β); every clip was generated with the seed of its
 *     (prompt, seed) baseline; the baseline's codes equal plain generate with the same seed (α = 0), and its
 *     re-measured activations equal the ones computed here from the residual generate --capture-layers recorded for
 *     that clip (f16, so within 5e-3); a run stopped after 2 batches with a torn last line, and a run killed by
 *     SIGKILL in its 4th batch, continued by the same command give the same steer.jsonl and summary.json; musae
 *     dashboard --steer shows the folder;
 *   - refusals: α out of range, a feature out of range, a NaN β, another SAE, --feature with --kept-top, --clap
 *     without audio, --labels without --clap, --random-draws 0, a --labeler with no line in the labels file (each
 *     exit 1 + its message), and a finished study whose steer.jsonl line lost its act entries or holds a seed out
 *     of range (the summary names the file, line and field).
 * The share of features whose re-measured activation rises is printed (noise on a random model; not asserted). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>

#include "cli.h"
#include "eval/features_io.h"
#include "host/core/sha256.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "steer_run_check.h"

enum { M = 16, R = 3 /* the default --random-draws */ };
static char g_model[1024], g_sae[1024], g_clap[1024];
/* the exemplar sources: two 1 s tones, store clips 0 and 1 (each the whole file); an even feature's exemplars are
 * both, an odd feature's only the second */
static const char *const k_src[2] = {"src0.wav#t=0,1", "src1.wav#t=0,1"};
/* LABELS.jsonl: feature 2's first usable line is dsp's (llm's comes later), 5's is llm's (dsp's is no_signal), 9 has none */
static const char *const k_label[3] = {"bright drums", "calm piano", NULL};
static const int k_feat[3] = {2, 5, 9};
static const double k_alpha[2] = {0.5, 1.0};

static double max_act_of(int f) { return 1.0 + 0.25 * f; }

/* FEATURES.h5 for the SAE at sae_dir (its sha256 recorded); feature nan_f (>= 0) gets max_act NaN */
static void write_features(const char *path, const char *sae_dir, int nan_f) {
    musae_features f;
    memset(&f, 0, sizeof f);
    f.M = M, f.N = 2, f.C = 2, f.nnz = 0;
    features_alloc(&f);
    char st[2048], err[512];
    snprintf(st, sizeof st, "%s/sae.safetensors", sae_dir);
    CHECK(musae_sha256_file(st, f.sae_sha256) == 0, "sha256 of %s", st);
    for (int i = 0; i < M; i++) {
        f.max_act[i] = i == nan_f ? NAN : (float)max_act_of(i);
        f.mean_act[i] = 0.5f;
        f.keep[i] = 1;
        f.clip_rate[i] = 0.5;
        f.n_active_frames[i] = 1;
        f.top_clip[i * 2] = i % 2 ? 1 : 0;
        f.top_clip[i * 2 + 1] = i % 2 ? -1 : 1;
        for (int j = 0; j < 10 * 5; j++) f.quantile_clip[i * 50 + j] = -1;
        for (int j = 0; j < 20; j++) f.random_clip[i * 20 + j] = -1;
        for (int j = 0; j < 8; j++) f.neighbors[i * 8 + j] = -1;
    }
    for (int b = 0; b <= FEATURES_HIST_BINS; b++) f.hist_edges[b] = (float)(b + 1);
    for (int c = 0; c < 2; c++) {
        f.clip_path[c] = strdup(k_src[c]);
        f.clip_frames[c] = 50;
        f.clip_store_index[c] = c;
    }
    snprintf(f.acts, sizeof f.acts, "%s", at("store.h5"));
    snprintf(f.sae, sizeof f.sae, "%s", sae_dir);
    snprintf(f.model, sizeof f.model, "tiny");
    snprintf(f.selection, sizeof f.selection, "topk");
    snprintf(f.split, sizeof f.split, "all");
    f.d_model = 32, f.k = 4, f.frame_rate = 50, f.n_frames = 50, f.max_rate = 1;
    CHECK(features_write(path, &f, NULL, err, sizeof err) == 0, "features_write: %s", err);
    features_free(&f);
}

/* The exemplars' audio (two 1 s tones at 16 kHz) and the store FEATURES.h5 names (its clips named as /clips) */
static void write_sources(void) {
    char err[512];
    for (int c = 0; c < 2; c++) {
        float x[16000];
        for (int i = 0; i < 16000; i++) x[i] = 0.3f * sinf(2.0f * 3.14159265f * (220.0f + 440.0f * c) * i / 16000.0f);
        char path[64];
        snprintf(path, sizeof path, "src%d.wav", c);
        musae_audio_writer *w = musae_audio_writer_open(at(path), 16000, 1, MUSAE_AUDIO_PCM16, err, sizeof err);
        CHECK(w && musae_audio_write(w, x, 16000, err, sizeof err) == 0 && musae_audio_writer_close(w, NULL, err, sizeof err) == 0,
              "%s: %s", path, err);
    }
    musae_store_spec sp = {0};
    sp.model = "tiny";
    sp.d_model = 32;
    sp.frame_rate = 50;
    sp.n_layers = 1;
    sp.layers[0] = 0;
    sp.dtype = MUSAE_F32;
    sp.dtype_source = "f32";
    musae_store_writer *w = musae_store_create(at("store.h5"), &sp);
    float *x = calloc(50 * 32, sizeof(float));
    for (int c = 0; c < 2; c++) {
        const float *acts[1] = {x};
        musae_store_add_clip(w, k_src[c], 50, acts);
    }
    musae_store_close_writer(w, 1);
    free(x);
}

static void check_generate_features(void) {
    const char *g = "generate --model %s --prompt 'calm piano' --frames 12 --greedy --guidance 3 --sae %s "
                    "--steer 3:0.5 %s --codes-out %s";
    char fl[2048];
    snprintf(fl, sizeof fl, "--features %s", at("F.h5"));
    CHECK(run(g, g_model, g_sae, fl, "gf.st") == 0, "generate --features");
    snprintf(fl, sizeof fl, "--beta %.9g", (double)(float)max_act_of(3));
    CHECK(run(g, g_model, g_sae, fl, "gb.st") == 0, "generate --beta");
    int64_t n1 = 0, n2 = 0;
    int64_t *a = read_codes(at("gf.st"), "codes", &n1, NULL), *b = read_codes(at("gb.st"), "codes", &n2, NULL);
    int64_t d = a && b && n1 == n2 ? 0 : -1;
    for (int64_t i = 0; d >= 0 && i < n1; i++) d += a[i] != b[i];
    CHECK(d == 0, "--features gives other codes than --beta max_act[3] (%" PRId64 " differ)", d);
    free(a), free(b);
    snprintf(fl, sizeof fl, "--features %s", at("Fnan.h5"));
    CHECK(run(g, g_model, g_sae, fl, "x.st") == 1, "NaN β accepted");
    err_has("max_act[3] = nan is no usable β");
    snprintf(fl, sizeof fl, "--features %s", at("Fother.h5"));
    CHECK(run(g, g_model, g_sae, fl, "x.st") == 1, "another SAE's FEATURES.h5 accepted");
    err_has("Fother.h5 was computed with another SAE");
    err_has("steer_tiny/sae.safetensors has");
    snprintf(fl, sizeof fl, "--features %s --beta 2", at("F.h5"));
    CHECK(run(g, g_model, g_sae, fl, "x.st") == 1, "--features with --beta accepted");
    err_has("two sources of β");
}

/* the random draws of (f, α, prompt, seed), in draw order; returns how many there are */
static int draws_of(cJSON **l, int n, int f, double a, int p, int s, const cJSON **out) {
    int c = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(js(l[i], "kind"), "random") && jnum(l[i], "prompt") == p && jnum(l[i], "seed") == s &&
            jnum(l[i], "feature") == f && jnum(l[i], "alpha") == a && c < R) {
            CHECK(jnum(l[i], "draw") == c, "%s: draw %g, expected %d", js(l[i], "id"), jnum(l[i], "draw"), c);
            out[c++] = l[i];
        }
    return c;
}

static void check_study(const char *dir) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/steer.jsonl", dir);
    int n = 0;
    cJSON **l = read_lines(rel, &n);
    CHECK(n == 192, "%d lines in steer.jsonl, expected 2 prompts x 3 seeds x (2 + 3 features x 2 alphas x (2 + 3 draws))",
          n);
    snprintf(rel, sizeof rel, "%s/summary.json", dir);
    char *ss = slurp(rel);
    cJSON *sum = cJSON_Parse(ss);
    free(ss);
    CHECK(sum != NULL, "summary.json is not JSON");
    /* per clip: norms, paired seeds, code_diff recomputed from the codes files */
    for (int i = 0; i < n; i++) {
        const cJSON *x = l[i];
        const char *k = js(x, "kind");
        const int p = (int)jnum(x, "prompt"), s = (int)jnum(x, "seed");
        const cJSON *b = find(l, n, "baseline", -1, 0, p, s);
        CHECK(b != NULL, "clip %s has no baseline of its prompt and seed", js(x, "id"));
        if (!b) continue;
        if (strcmp(k, "baseline") && strcmp(k, "passthrough")) {
            const double want = (double)(float)(jnum(x, "alpha") * (float)max_act_of((int)jnum(x, "feature")));
            CHECK(fabs(jnum(x, "norm") - want) <= 1e-5 * want, "%s: ‖v‖ %.9g, α·β·‖d‖ = %.9g", js(x, "id"),
                  jnum(x, "norm"), want);
        } else {
            CHECK(jnum(x, "norm") == 0, "%s: a nonzero vector", js(x, "id"));
        }
        /* the passthrough replaces the layer's output by the tiny SAE's (poor) reconstruction: the codes move */
        if (!strcmp(k, "passthrough"))
            CHECK(jnum(x, "code_diff") > 0, "%s: the passthrough changed no code", js(x, "id"));
        const cJSON *de = cJSON_GetObjectItem(x, "desc");
        CHECK(cJSON_IsObject(de) && cJSON_IsNumber(cJSON_GetObjectItem(de, "rms_db")), "%s: no descriptors",
              js(x, "id"));
        /* the descriptor deltas: each descriptor minus the twin baseline's */
        const cJSON *dl = cJSON_GetObjectItem(x, "desc_delta"), *bd = cJSON_GetObjectItem(b, "desc");
        for (const cJSON *v = de ? de->child : NULL; v; v = v->next) {
            const double want = jnum(de, v->string) - jnum(bd, v->string), got = jnum(dl, v->string);
            /* JSON keeps 15 significant digits where they read back within cJSON's tolerance: compare to 1e-12 */
            CHECK(isfinite(want) ? fabs(got - want) <= 1e-12 * (1 + fabs(want)) : isnan(got),
                  "%s: desc_delta.%s %.12g, recomputed %.12g", js(x, "id"),
                  v->string, got, want);
        }
        snprintf(rel, sizeof rel, "%s/%s", dir, js(x, "audio"));
        CHECK(*js(x, "audio") && dir_has(rel), "%s: no WAV", js(x, "id"));
        snprintf(rel, sizeof rel, "%s/%s", dir, js(x, "codes"));
        { /* the pair's shared seed is the one the codes were generated with */
            char err[512];
            musae_st cs;
            CHECK(musae_st_open(&cs, at(rel), err, sizeof err) == 0, "%s", err);
            const char *sd = musae_st_meta(&cs, "seed");
            CHECK(sd && atof(sd) == jnum(b, "seed"), "%s: generated with seed %s, its baseline's is %g", js(x, "id"),
                  sd ? sd : "none", jnum(b, "seed"));
            musae_st_close(&cs);
        }
        int64_t n1 = 0, n2 = 0;
        int64_t *c = read_codes(at(rel), "codes", &n1, NULL);
        snprintf(rel, sizeof rel, "%s/%s", dir, js(b, "codes"));
        int64_t *cb = read_codes(at(rel), "codes", &n2, NULL);
        if (c && cb && n1 == n2) {
            int64_t d = 0;
            for (int64_t j = 0; j < n1; j++) d += c[j] != cb[j];
            CHECK(near(jnum(x, "code_diff"), (double)d / (double)n1), "%s: code_diff %g, recomputed %g", js(x, "id"),
                  jnum(x, "code_diff"), (double)d / (double)n1);
        }
        free(c), free(cb);
    }
    /* the statistics */
    const cJSON *pa = cJSON_GetObjectItem(sum, "per_alpha");
    CHECK(cJSON_GetArraySize(pa) == 2, "per_alpha has %d entries", cJSON_GetArraySize(pa));
    int rising = 0, total = 0;
    for (int ai = 0; ai < 2 && cJSON_GetArraySize(pa) == 2; ai++) {
        const cJSON *e = cJSON_GetArrayItem(pa, ai);
        const cJSON *fl = cJSON_GetObjectItem(e, "features");
        double pb[3], pr[3], qb[3], qr[3], mb[3];
        for (int fi = 0; fi < 3; fi++) {
            double db[6], dr[6], rms = 0;
            int m = 0;
            for (int s = 0; s < 3; s++)
                for (int p = 0; p < 2; p++) {
                    const cJSON *x = find(l, n, "steered", k_feat[fi], k_alpha[ai], p, s);
                    const cJSON *rd[R];
                    const int nr = draws_of(l, n, k_feat[fi], k_alpha[ai], p, s, rd);
                    CHECK(nr == R, "feature %d α %g prompt %d seed %d: %d random draws", k_feat[fi], k_alpha[ai], p, s,
                          nr);
                    const cJSON *r = nr == R ? rd[0] : NULL;
                    const cJSON *b = find(l, n, "baseline", -1, 0, p, s);
                    const cJSON *o = find(l, n, "other", k_feat[fi], k_alpha[ai], p, s);
                    CHECK(x && r && b && o, "feature %d α %g prompt %d seed %d: a clip is missing", k_feat[fi],
                          k_alpha[ai], p, s);
                    if (!(x && r && b && o)) continue;
                    CHECK(jnum(o, "other_feature") == k_feat[(fi + 1) % 3], "the other control of %d is feature %g",
                          k_feat[fi], jnum(o, "other_feature"));
                    double ra = 0;
                    for (int q = 0; q < R; q++) {
                        CHECK(fabs(jnum(rd[q], "norm") - jnum(x, "norm")) <= 1e-6 * jnum(x, "norm"),
                              "random draw %d ‖v‖ %.9g vs steered %.9g", q, jnum(rd[q], "norm"), jnum(x, "norm"));
                        ra += jnum(rd[q], "act_target");
                    }
                    ra /= R; /* the steered clip is compared with the mean of the draws */
                    CHECK(fabs(jnum(o, "norm") - jnum(x, "norm")) <= 1e-6 * jnum(x, "norm"),
                          "other ‖v‖ %.9g vs steered %.9g", jnum(o, "norm"), jnum(x, "norm"));
                    const double t = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "act"), fi)->valuedouble;
                    CHECK(jnum(x, "act_target") == t, "act_target is not act[%d]", fi);
                    db[m] = t - cJSON_GetArrayItem(cJSON_GetObjectItem(b, "act"), fi)->valuedouble;
                    rms += jnum(cJSON_GetObjectItem(x, "desc"), "rms_db") - jnum(cJSON_GetObjectItem(b, "desc"), "rms_db");
                    dr[m] = t - ra;
                    m++;
                }
            const cJSON *fj = cJSON_GetArrayItem(fl, fi);
            const cJSON *vb = cJSON_GetObjectItem(fj, "vs_baseline"), *vr = cJSON_GetObjectItem(fj, "vs_random");
            CHECK(jnum(fj, "feature") == k_feat[fi] && jnum(fj, "n_pairs") == m, "feature entry %d", fi);
            pb[fi] = wilcoxon_p(db, m);
            pr[fi] = wilcoxon_p(dr, m);
            CHECK(near(jnum(vb, "p"), pb[fi]), "α %g feature %d: p vs baseline %.12g, recomputed %.12g", k_alpha[ai],
                  k_feat[fi], jnum(vb, "p"), pb[fi]);
            CHECK(near(jnum(vr, "p"), pr[fi]), "α %g feature %d: p vs random %.12g, recomputed %.12g", k_alpha[ai],
                  k_feat[fi], jnum(vr, "p"), pr[fi]);
            double s = 0;
            for (int i = 0; i < m; i++) s += db[i];
            mb[fi] = s / m;
            CHECK(near(jnum(vb, "gain_mean"), mb[fi]), "gain_mean %.12g, recomputed %.12g", jnum(vb, "gain_mean"),
                  mb[fi]);
            double lo, hi;
            const uint64_t stream = ((uint64_t)ai << 40) | ((uint64_t)k_feat[fi] << 2);
            boot(db, m, 200, 7, stream, &lo, &hi);
            const cJSON *ci = cJSON_GetObjectItem(vb, "gain_ci95");
            CHECK(near(cJSON_GetArrayItem(ci, 0)->valuedouble, lo) && near(cJSON_GetArrayItem(ci, 1)->valuedouble, hi),
                  "bootstrap CI [%g, %g], recomputed [%g, %g]", cJSON_GetArrayItem(ci, 0)->valuedouble,
                  cJSON_GetArrayItem(ci, 1)->valuedouble, lo, hi);
            const double rd = jnum(cJSON_GetObjectItem(fj, "desc_delta_mean"), "rms_db");
            CHECK(near(rd, rms / m), "desc_delta_mean.rms_db %.12g, recomputed %.12g", rd, rms / m);
            rising += mb[fi] > 0;
            total++;
        }
        bh(pb, 3, qb);
        bh(pr, 3, qr);
        int k = 0;
        for (int fi = 0; fi < 3; fi++) {
            const cJSON *fj = cJSON_GetArrayItem(fl, fi);
            CHECK(near(jnum(cJSON_GetObjectItem(fj, "vs_baseline"), "q"), qb[fi]),
                  "q vs baseline %.12g, recomputed %.12g", jnum(cJSON_GetObjectItem(fj, "vs_baseline"), "q"), qb[fi]);
            CHECK(near(jnum(cJSON_GetObjectItem(fj, "vs_random"), "q"), qr[fi]), "q vs random");
            const int st = qb[fi] <= 0.05 && qr[fi] <= 0.05;
            CHECK(cJSON_IsTrue(cJSON_GetObjectItem(fj, "steerable")) == st, "steerable flag of feature %d", k_feat[fi]);
            k += st;
        }
        const double z = 1.959963984540054, ph = k / 3.0;
        const double c = (ph + z * z / 6) / (1 + z * z / 3),
                     h = z * sqrt(ph * (1 - ph) / 3 + z * z / 36) / (1 + z * z / 3);
        const cJSON *ci = cJSON_GetObjectItem(e, "steerable_ci95_wilson");
        CHECK(jnum(e, "n_steerable") == k, "n_steerable %g, recomputed %d", jnum(e, "n_steerable"), k);
        CHECK(near(cJSON_GetArrayItem(ci, 0)->valuedouble, fmax(0, c - h)) &&
                  near(cJSON_GetArrayItem(ci, 1)->valuedouble, fmin(1, c + h)),
              "Wilson CI");
    }
    const cJSON *curve = cJSON_GetObjectItem(sum, "curve");
    CHECK(cJSON_GetArraySize(curve) == 7, "the curve has %d points (passthrough + 3 kinds x 2 α)",
          cJSON_GetArraySize(curve));
    /* each point's mean gain and code_diff recomputed over its clips */
    for (int i = 0; i < cJSON_GetArraySize(curve); i++) {
        const cJSON *pt = cJSON_GetArrayItem(curve, i);
        const char *kind = js(pt, "kind");
        const int pass = !strcmp(kind, "passthrough");
        double g = 0, cd = 0;
        int c = 0;
        for (int e = 0; e < n; e++) {
            const cJSON *x = l[e];
            if (strcmp(js(x, "kind"), kind) || jnum(x, "alpha") != jnum(pt, "alpha")) continue;
            const cJSON *b = find(l, n, "baseline", -1, 0, (int)jnum(x, "prompt"), (int)jnum(x, "seed"));
            int fi = 0;
            while (fi < 2 && k_feat[fi] != jnum(x, "feature")) fi++;
            if (!pass) g += jnum(x, "act_target") - cJSON_GetArrayItem(cJSON_GetObjectItem(b, "act"), fi)->valuedouble;
            cd += jnum(x, "code_diff");
            c++;
        }
        CHECK(c == jnum(pt, "clips") && near(jnum(pt, "code_diff_mean"), cd / c),
              "curve %s α %g: code_diff_mean %.12g, recomputed %.12g over %d clips", kind, jnum(pt, "alpha"),
              jnum(pt, "code_diff_mean"), cd / c, c);
        if (!pass)
            CHECK(near(jnum(pt, "gain_mean"), g / c), "curve %s α %g: gain_mean %.12g, recomputed %.12g", kind,
                  jnum(pt, "alpha"), jnum(pt, "gain_mean"), g / c);
    }
    printf("features whose re-measured activation rises over the baseline (tiny random model, noise): %d of %d\n",
           rising, total);
    cJSON_Delete(sum);
    for (int i = 0; i < n; i++) cJSON_Delete(l[i]);
    free(l);
}

static double dotd(const float *a, const double *b, int64_t D) {
    double s = 0;
    for (int64_t i = 0; i < D; i++) s += (double)a[i] * b[i];
    return s;
}

static const cJSON *clap_of(const cJSON *x) { return cJSON_GetObjectItem(x, "clap"); }
static double arr_at(const cJSON *x, const char *k, int i) {
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(clap_of(x), k), i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
/* the CLAP gain measures: index 0 the label alignment, 1 the exemplar alignment */
static const char *const k_cm[2] = {"clap_label", "clap_exemplars"}, *const k_arr[2] = {"label", "exemplars"},
                  *const k_tgt[2] = {"label_target", "exemplars_target"};

/* CLAP (docs/STEER.md "CLAP measures"): every clip's measures equal the ones recomputed here from `musae clap`
 * embeddings of the same WAVs, of the exemplar sources and of the label texts; summary.json's CLAP statistics equal
 * the ones recomputed here from steer.jsonl's numbers (the same independent Wilcoxon, BH, bootstrap as above). */
static void check_clap(const char *dir) {
    char rel[256], err[512];
    snprintf(rel, sizeof rel, "%s/steer.jsonl", dir);
    int n = 0;
    cJSON **l = read_lines(rel, &n);
    snprintf(rel, sizeof rel, "%s/summary.json", dir);
    char *ss = slurp(rel);
    cJSON *sum = cJSON_Parse(ss);
    free(ss);
    CHECK(sum && cJSON_IsObject(cJSON_GetObjectItem(sum, "clap")), "summary.json has no clap object");
    const cJSON *labs = cJSON_GetObjectItem(cJSON_GetObjectItem(sum, "clap"), "label");
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetArrayItem(labs, i);
        CHECK(k_label[i] ? cJSON_IsString(v) && !strcmp(v->valuestring, k_label[i]) : cJSON_IsNull(v),
              "feature %d's label is not '%s'", k_feat[i], k_label[i] ? k_label[i] : "null");
    }
    if (run("clap --model %s --audio %s/clips src0.wav src1.wav --text '%s' --text '%s' -o E.safetensors", g_clap, dir,
            k_label[0], k_label[1]))
        setup_failed("musae clap on the study's WAVs");
    musae_st st;
    CHECK(musae_st_open(&st, at("E.safetensors"), err, sizeof err) == 0, "%s", err);
    int rank;
    int64_t sa[8], stx[8];
    float *A = musae_st_load_any(&st, "audio_embeds", MUSAE_F32, &rank, sa);
    float *T = musae_st_load_any(&st, "text_embeds", MUSAE_F32, &rank, stx);
    cJSON *paths = cJSON_Parse(musae_st_meta(&st, "audio"));
    musae_st_close(&st);
    const int64_t D = sa[1], NA = sa[0];
    CHECK(A && T && cJSON_GetArraySize(paths) == NA && NA == n + 2, "musae clap embedded %lld clips for %d lines",
          (long long)NA, n);
    if (!(A && T && NA == n + 2)) return;
    /* rows by file name */
#define ROW_OF(name, out)                                                                                              \
    do {                                                                                                               \
        out = -1;                                                                                                      \
        for (int64_t q_ = 0; q_ < NA; q_++) {                                                                          \
            const char *p_ = cJSON_GetArrayItem(paths, (int)q_)->valuestring, *s_ = strrchr(p_, '/');                  \
            if (!strcmp(s_ ? s_ + 1 : p_, name)) out = q_;                                                             \
        }                                                                                                              \
    } while (0)
    double cen[3][64], txt[2][64];
    int64_t r0, r1;
    ROW_OF("src0.wav", r0);
    ROW_OF("src1.wav", r1);
    for (int i = 0; i < 3; i++) {
        double nn = 0;
        for (int64_t d = 0; d < D; d++) {
            cen[i][d] = (k_feat[i] % 2 ? 0.0 : (double)A[r0 * D + d]) + A[r1 * D + d];
            nn += cen[i][d] * cen[i][d];
        }
        for (int64_t d = 0; d < D; d++) cen[i][d] /= sqrt(nn);
    }
    for (int i = 0; i < 2; i++)
        for (int64_t d = 0; d < D; d++) txt[i][d] = T[i * D + d];
    /* per clip: the label and exemplar cosines of every studied feature, the targets, the distance to the baseline */
    for (int i = 0; i < n; i++) {
        const cJSON *x = l[i], *c = clap_of(x);
        const cJSON *b = find(l, n, "baseline", -1, 0, (int)jnum(x, "prompt"), (int)jnum(x, "seed"));
        char name[200];
        int64_t re, rb;
        snprintf(name, sizeof name, "%s.wav", js(x, "id"));
        ROW_OF(name, re);
        snprintf(name, sizeof name, "%s.wav", js(b, "id"));
        ROW_OF(name, rb);
        CHECK(cJSON_IsObject(c) && re >= 0 && rb >= 0, "%s: no clap measures or no embedding", js(x, "id"));
        if (!(cJSON_IsObject(c) && re >= 0 && rb >= 0)) continue;
        double bb[64];
        for (int64_t d = 0; d < D; d++) bb[d] = A[rb * D + d];
        const double dist = 1 - dotd(A + re * D, bb, D);
        CHECK(fabs(jnum(c, "dist") - dist) <= 1e-5, "%s: clap dist %.9g, from musae clap %.9g", js(x, "id"),
              jnum(c, "dist"), dist);
        for (int fi = 0; fi < 3; fi++) {
            const double wl = k_label[fi] ? dotd(A + re * D, txt[fi], D) : NAN, we = dotd(A + re * D, cen[fi], D);
            const double gl = arr_at(x, "label", fi), ge = arr_at(x, "exemplars", fi);
            CHECK(k_label[fi] ? fabs(gl - wl) <= 1e-5 : isnan(gl), "%s: label cosine of feature %d %.9g, from musae clap %.9g",
                  js(x, "id"), k_feat[fi], gl, wl);
            CHECK(fabs(ge - we) <= 1e-5, "%s: exemplar cosine of feature %d %.9g, from musae clap %.9g", js(x, "id"),
                  k_feat[fi], ge, we);
            if (jnum(x, "feature") == k_feat[fi]) {
                CHECK(k_label[fi] ? jnum(c, "label_target") == gl : isnan(jnum(c, "label_target")), "%s: label_target",
                      js(x, "id"));
                CHECK(jnum(c, "exemplars_target") == ge, "%s: exemplars_target", js(x, "id"));
            }
        }
    }
    /* the statistics, from steer.jsonl's numbers */
    const cJSON *pa = cJSON_GetObjectItem(sum, "per_alpha");
    for (int ai = 0; ai < 2; ai++) {
        const cJSON *e = cJSON_GetArrayItem(pa, ai), *fl = cJSON_GetObjectItem(e, "features");
        for (int cm = 0; cm < 2; cm++) {
            double pb[3], pr[3], qb[3], qr[3];
            int tested[3], nt = 0;
            for (int fi = 0; fi < 3; fi++) {
                double db[6], dr[6], dd[6];
                int m = 0, md = 0;
                for (int s = 0; s < 3; s++)
                    for (int p = 0; p < 2; p++) {
                        const cJSON *x = find(l, n, "steered", k_feat[fi], k_alpha[ai], p, s);
                        const cJSON *b = find(l, n, "baseline", -1, 0, p, s), *rd[R];
                        if (!x || !b || draws_of(l, n, k_feat[fi], k_alpha[ai], p, s, rd) != R) continue;
                        double ra = 0;
                        for (int q = 0; q < R; q++) ra += jnum(clap_of(rd[q]), k_tgt[cm]);
                        ra /= R;
                        const double t = jnum(clap_of(x), k_tgt[cm]);
                        dd[md++] = jnum(clap_of(x), "dist");
                        if (isnan(t)) continue;
                        db[m] = t - arr_at(b, k_arr[cm], fi);
                        dr[m] = t - ra;
                        m++;
                    }
                const cJSON *fj = cJSON_GetArrayItem(fl, fi), *o = cJSON_GetObjectItem(fj, k_cm[cm]);
                tested[fi] = m > 0;
                pb[fi] = pr[fi] = NAN;
                if (cm == 0) { /* the distortion, once per feature: mean CLAP distance of the steered clips */
                    double sd = 0, lo, hi;
                    CHECK(md == 6, "%d steered clips with a CLAP distance", md);
                    for (int i = 0; i < md; i++) sd += dd[i];
                    const cJSON *cd = cJSON_GetObjectItem(fj, "clap_dist");
                    boot(dd, 6, 200, 7, ((uint64_t)ai << 40) | ((uint64_t)k_feat[fi] << 2) | ((uint64_t)3 << 56), &lo,
                         &hi);
                    CHECK(near(jnum(cd, "mean"), sd / 6) &&
                              near(cJSON_GetArrayItem(cJSON_GetObjectItem(cd, "ci95"), 0)->valuedouble, lo) &&
                              near(cJSON_GetArrayItem(cJSON_GetObjectItem(cd, "ci95"), 1)->valuedouble, hi),
                          "α %g feature %d: clap_dist mean %.12g, recomputed %.12g", k_alpha[ai], k_feat[fi],
                          jnum(cd, "mean"), sd / 6);
                }
                if (!m) {
                    CHECK(cJSON_IsNull(o), "α %g feature %d: %s without a label is not null", k_alpha[ai], k_feat[fi],
                          k_cm[cm]);
                    continue;
                }
                nt++;
                CHECK(jnum(o, "n_pairs") == m, "%s n_pairs", k_cm[cm]);
                pb[fi] = wilcoxon_p(db, m), pr[fi] = wilcoxon_p(dr, m);
                const cJSON *vb = cJSON_GetObjectItem(o, "vs_baseline"), *vr = cJSON_GetObjectItem(o, "vs_random");
                CHECK(near(jnum(vb, "p"), pb[fi]) && near(jnum(vr, "p"), pr[fi]),
                      "α %g feature %d %s: p %.12g / %.12g, recomputed %.12g / %.12g", k_alpha[ai], k_feat[fi],
                      k_cm[cm], jnum(vb, "p"), jnum(vr, "p"), pb[fi], pr[fi]);
                const double *dv[2] = {db, dr};
                const cJSON *vv[2] = {vb, vr};
                for (int k = 0; k < 2; k++) {
                    double s = 0, lo, hi;
                    for (int i = 0; i < m; i++) s += dv[k][i];
                    boot(dv[k], m, 200, 7,
                         ((uint64_t)ai << 40) | ((uint64_t)k_feat[fi] << 2) | ((uint64_t)(cm + 1) << 56) | (uint64_t)k,
                         &lo, &hi);
                    const cJSON *ci = cJSON_GetObjectItem(vv[k], "gain_ci95");
                    CHECK(near(jnum(vv[k], "gain_mean"), s / m) && near(cJSON_GetArrayItem(ci, 0)->valuedouble, lo) &&
                              near(cJSON_GetArrayItem(ci, 1)->valuedouble, hi),
                          "α %g feature %d %s %s: gain %.12g [%g, %g], recomputed %.12g [%g, %g]", k_alpha[ai],
                          k_feat[fi], k_cm[cm], k ? "vs random" : "vs baseline", jnum(vv[k], "gain_mean"),
                          cJSON_GetArrayItem(ci, 0)->valuedouble, cJSON_GetArrayItem(ci, 1)->valuedouble, s / m, lo, hi);
                }
            }
            /* BH over the features that have the measure */
            double pbt[3], prt[3], qbt[3], qrt[3];
            int k = 0, j = 0;
            for (int fi = 0; fi < 3; fi++)
                if (tested[fi]) pbt[j] = pb[fi], prt[j++] = pr[fi];
            bh(pbt, j, qbt);
            bh(prt, j, qrt);
            j = 0;
            for (int fi = 0; fi < 3; fi++) {
                if (!tested[fi]) continue;
                qb[fi] = qbt[j], qr[fi] = qrt[j++];
                const cJSON *o = cJSON_GetObjectItem(cJSON_GetArrayItem(fl, fi), k_cm[cm]);
                CHECK(near(jnum(cJSON_GetObjectItem(o, "vs_baseline"), "q"), qb[fi]) &&
                          near(jnum(cJSON_GetObjectItem(o, "vs_random"), "q"), qr[fi]),
                      "α %g feature %d %s: q recomputed %.12g / %.12g", k_alpha[ai], k_feat[fi], k_cm[cm], qb[fi], qr[fi]);
                const int st2 = qb[fi] <= 0.05 && qr[fi] <= 0.05;
                CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "steerable")) == st2, "%s steerable flag", k_cm[cm]);
                k += st2;
            }
            const cJSON *pc = cJSON_GetObjectItem(e, k_cm[cm]);
            CHECK(jnum(pc, "n_features") == nt && jnum(pc, "n_steerable") == k,
                  "α %g %s: %g of %g steerable, recomputed %d of %d", k_alpha[ai], k_cm[cm], jnum(pc, "n_steerable"),
                  jnum(pc, "n_features"), k, nt);
        }
    }
    /* the curve's distortion is the CLAP distance when CLAP is measured */
    const cJSON *curve = cJSON_GetObjectItem(sum, "curve");
    CHECK(!strcmp(js(sum, "curve_distortion"), "clap_dist"), "curve_distortion is '%s'", js(sum, "curve_distortion"));
    for (int i = 0; i < cJSON_GetArraySize(curve); i++) {
        const cJSON *pt = cJSON_GetArrayItem(curve, i);
        double s = 0;
        int c = 0;
        for (int e = 0; e < n; e++)
            if (!strcmp(js(l[e], "kind"), js(pt, "kind")) && jnum(l[e], "alpha") == jnum(pt, "alpha"))
                s += jnum(clap_of(l[e]), "dist"), c++;
        CHECK(near(jnum(pt, "clap_dist_mean"), s / c) && jnum(pt, "distortion") == jnum(pt, "clap_dist_mean"),
              "curve %s α %g: clap_dist_mean %.12g, recomputed %.12g", js(pt, "kind"), jnum(pt, "alpha"),
              jnum(pt, "clap_dist_mean"), s / c);
    }
#undef ROW_OF
    cJSON_Delete(paths);
    free(A), free(T);
    cJSON_Delete(sum);
    for (int i = 0; i < n; i++) cJSON_Delete(l[i]);
    free(l);
}

/* The baseline's re-measured activations by another route: the residual that generate --capture-layers recorded
 * while generating the same clip (f16, incremental, in the CFG batch) through this file's own SAE encoder (sparsify's
 * rule on the folded weights: top-4 of ReLU(W_enc (x − b_dec) + b_enc)), averaged over the frames. */
static void check_act_by_capture(const char *store, const cJSON *baseline) {
    char err[512], path[2048];
    musae_store *s = musae_store_open(at(store), err, sizeof err);
    CHECK(s != NULL, "%s", err);
    if (!s) return;
    const musae_store_info *in = musae_store_get_info(s);
    const int64_t F = in->clip_frames[0], d = 32;
    float *x = malloc(sizeof(float) * (size_t)(F * d));
    musae_store_read_rows(s, 0, in->clip_offset[0], F, x);
    musae_store_close(s);
    snprintf(path, sizeof path, "%s/sae.safetensors", g_sae);
    musae_st st;
    CHECK(musae_st_open(&st, path, err, sizeof err) == 0, "%s", err);
    float *W = musae_st_load(&st, "encoder.weight", MUSAE_F32, 2, (int64_t[]){M, 32});
    float *be = musae_st_load(&st, "encoder.bias", MUSAE_F32, 1, (int64_t[]){M});
    float *bd = musae_st_load(&st, "b_dec", MUSAE_F32, 1, (int64_t[]){32});
    musae_st_close(&st);
    double act[3] = {0, 0, 0};
    for (int64_t t = 0; t < F; t++) {
        double pre[M];
        for (int m = 0; m < M; m++) {
            double a = be[m];
            for (int j = 0; j < d; j++) a += (double)W[m * d + j] * (x[t * d + j] - bd[j]);
            pre[m] = a > 0 ? a : 0;
        }
        for (int i = 0; i < 3; i++) {
            int above = 0; /* latents ranked before k_feat[i]: greater, or equal and lower */
            for (int m = 0; m < M; m++)
                above += pre[m] > pre[k_feat[i]] || (pre[m] == pre[k_feat[i]] && m < k_feat[i]);
            if (above < 4) act[i] += pre[k_feat[i]];
        }
    }
    const cJSON *a = cJSON_GetObjectItem(baseline, "act");
    for (int i = 0; i < 3; i++) {
        const double got = cJSON_GetArrayItem(a, i)->valuedouble, want = act[i] / (double)F;
        printf("baseline act of feature %d: steer %.6f, from generate's capture %.6f\n", k_feat[i], got, want);
        CHECK(fabs(got - want) <= 5e-3 * (1 + fabs(want)), "feature %d: re-measured %.6f, from the capture %.6f",
              k_feat[i], got, want);
    }
    free(x), free(W), free(be), free(bd);
}

#define STUDY0                                                                                                         \
    "steer --model %s --sae %s --features %s --prompts prompts.txt --seeds 3 --seconds 0.2 --batch 9 "                 \
    "--n-boot 200 --random-seed 7 "
#define STUDY STUDY0 "--clap %s --labels L.jsonl "

int main(void) {
    scratch_open("steer_run");
    snprintf(g_model, sizeof g_model, "%s/tiny-musicgen", test_fixtures());
    snprintf(g_sae, sizeof g_sae, "%s/sae/steer_tiny", test_fixtures());
    snprintf(g_clap, sizeof g_clap, "%s/tiny-clap", test_fixtures());
    write_sources();
    write_features(at("F.h5"), g_sae, -1);
    write_features(at("Fnan.h5"), g_sae, 3);
    CHECK(sh("mkdir -p other && cp %s/* other/ && printf 'x' >> other/sae.safetensors", g_sae) == 0, "copy the SAE");
    write_features(at("Fother.h5"), at("other"), -1);
    check_generate_features();

    CHECK(sh("printf '80s pop track with bassy drums\\ncalm piano\\n' > prompts.txt") == 0, "prompts");
    CHECK(sh("printf '%%s\\n' '{\"feature\":2,\"labeler\":\"dsp\",\"status\":\"ok\",\"label\":\"bright drums\"}' "
             "'{\"feature\":5,\"labeler\":\"dsp\",\"status\":\"no_signal\",\"label\":null}' "
             "'{\"feature\":2,\"labeler\":\"llm\",\"status\":\"ok\",\"label\":\"not taken: dsp is first\"}' "
             "'{\"feature\":5,\"labeler\":\"llm\",\"status\":\"ok\",\"label\":\"calm piano\"}' > L.jsonl") == 0,
          "labels");
    char F[2048];
    snprintf(F, sizeof F, "%s", at("F.h5"));
    CHECK(run(STUDY "--feature 2,5,9 --alpha 0.5,1 -o S1", g_model, g_sae, F, g_clap) == 0, "musae steer");
    check_study("S1");
    check_clap("S1");
    /* the dashboard's steering section over this folder: per α, 2 (prompt, seed) rows of 4 players side by side */
    CHECK(run("dashboard --features %s --steer S1 --no-audio -o site", F) == 0, "musae dashboard --steer");
    {
        char *page = slurp("site/features/f2.html");
        int rows = 0, players = 0;
        for (const char *q = page; (q = strstr(q, "<div class=\"steer\">")); q++) rows++;
        for (const char *q = page; (q = strstr(q, "src=\"../steer/s")); q++) players++;
        CHECK(rows == 4 && players == 16, "feature 2's page: %d steering rows, %d players (expected 4 and 16)", rows,
              players);
        CHECK(strstr(page, "<td>CLAP label</td>") && strstr(page, "<td>CLAP distance</td>"),
              "the steering cards show no CLAP measures");
        free(page);
    }
    /* α = 0: the baseline of prompt 0, seed 1 is plain generate's item 0 with seed 1 */
    CHECK(run("generate --model %s --prompt '80s pop track with bassy drums' --prompt 'calm piano' --seconds 0.2 "
              "--seed 1 --codes-out plain.st --capture-layers 0 --acts plain_acts.h5",
              g_model) == 0,
          "plain generate");
    int64_t n1 = 0, n2 = 0;
    int64_t *a = read_codes(at("plain.st"), "codes", &n1, NULL),
            *b = read_codes(at("S1/clips/p0_s1_baseline.st"), "codes", &n2, NULL);
    int64_t d = a && b && n1 == 2 * n2 ? 0 : -1;
    for (int64_t i = 0; d >= 0 && i < n2; i++) d += a[i] != b[i];
    CHECK(d == 0, "the α = 0 clip differs from plain generate (%" PRId64 ")", d);
    free(a), free(b);
    {
        int nl = 0;
        cJSON **l = read_lines("S1/steer.jsonl", &nl);
        const cJSON *base = find(l, nl, "baseline", -1, 0, 0, 1);
        CHECK(base != NULL, "no baseline p0_s1");
        if (base) check_act_by_capture("plain_acts.h5", base);
        for (int i = 0; i < nl; i++) cJSON_Delete(l[i]);
        free(l);
    }
    /* stopped after 2 batches, a torn line, continued */
    CHECK(run(STUDY "--feature 2,5,9 --alpha 0.5,1 -o S2 --max-batches 2", g_model, g_sae, F, g_clap) == 2,
          "stop after 2");
    CHECK(!dir_has("S2/summary.json"), "a stopped run wrote summary.json");
    CHECK(sh("printf '{\"id\":\"p0_s1_bas' >> S2/steer.jsonl") == 0, "tear the last line");
    CHECK(run(STUDY "--feature 2,5,9 --alpha 0.5,1 -o S2", g_model, g_sae, F, g_clap) == 0, "continue");
    err_has("dropping an incomplete line");
    CHECK(same_bytes("S1/steer.jsonl", "S2/steer.jsonl"), "the continued steer.jsonl differs");
    CHECK(same_bytes("S1/summary.json", "S2/summary.json"), "the continued summary.json differs");
    /* killed (SIGKILL) in its 4th batch (after p1_s0's baseline was embedded, before the batch's lines), then continued */
    {
        char args[4096];
        snprintf(args, sizeof args, STUDY "--feature 2,5,9 --alpha 0.5,1 -o S3", g_model, g_sae, F, g_clap);
        const pid_t pid = start_and_wait_for(bin(), args, "S3/clips/p1_s0_baseline.clap.safetensors", 300);
        kill(pid, SIGKILL);
        wait_exit(pid);
        char *part = slurp("S3/steer.jsonl");
        int nl = 0;
        for (const char *q = part; *q; q++) nl += *q == '\n';
        printf("killed with %d of 192 lines written\n", nl);
        free(part);
        CHECK(run(STUDY "--feature 2,5,9 --alpha 0.5,1 -o S3", g_model, g_sae, F, g_clap) == 0, "continue after a kill");
        CHECK(same_bytes("S1/steer.jsonl", "S3/steer.jsonl"), "steer.jsonl continued after SIGKILL differs");
        CHECK(same_bytes("S1/summary.json", "S3/summary.json"), "summary.json continued after SIGKILL differs");
    }
    /* a finished study whose steer.jsonl lost a line's per-feature activations: the summary refuses it (it indexes
     * every line's act by the study's features) */
    CHECK(sh("rm -rf S4 && cp -r S1 S4 && sed -i '1s/\"act\":\\[[^]]*\\]/\"act\":[]/' S4/steer.jsonl") == 0,
          "a copy of S1 with line 1's act emptied");
    CHECK(run(STUDY "--feature 2,5,9 --alpha 0.5,1 -o S4", g_model, g_sae, F, g_clap) == 1,
          "a steer.jsonl line without its act entries accepted");
    err_has("S4/steer.jsonl: line 1: act: 0 entries, but the file names 3 studied features");
    CHECK(sh("rm -rf S4 && cp -r S1 S4 && sed -i '1s/\"seed\":0/\"seed\":-1e300/' S4/steer.jsonl") == 0,
          "a copy of S1 with line 1's seed out of range");
    CHECK(run(STUDY "--feature 2,5,9 --alpha 0.5,1 -o S4", g_model, g_sae, F, g_clap) == 1,
          "a steer.jsonl line with seed -1e300 accepted");
    err_has("S4/steer.jsonl: line 1: seed: not a non-negative integer");

    /* --kept-top: the kept features with the largest max_act (1 + f/4: 15, then 14); another study in the folder */
    CHECK(run(STUDY0 "--kept-top 2 --alpha 1 --no-audio -o K", g_model, g_sae, F) == 0, "--kept-top");
    char *kl = slurp("K/steer.jsonl");
    CHECK(strstr(kl, "\"id\":\"p0_s0_f15_a0_steered\"") && strstr(kl, "\"id\":\"p0_s0_f14_a0_other\"") &&
              !strstr(kl, "_f13_"),
          "--kept-top 2 did not study features 15 and 14");
    free(kl);
    CHECK(run(STUDY0 "--feature 2,5 --alpha 1 --no-audio -o K", g_model, g_sae, F) == 1, "another study in K accepted");
    err_has("holds another study");
    CHECK(run(STUDY0 "--kept-top 2 --alpha 0.5 --no-audio -o K", g_model, g_sae, F) == 1, "another α in K accepted");
    err_has("holds another study");

    /* refusals */
    const struct {
        const char *flags, *msg;
    } bad[] = {
        {"--feature 2 --alpha 1.5", "--alpha 1.5 exceeds the allowed 1"},
        {"--feature 2 --alpha 0", "expected a finite α > 0"},
        {"--feature 16 --alpha 1", "--feature 16 is out of range"},
        {"--feature 2 --kept-top 2 --alpha 1", "give one of --feature"},
        {"--feature 2 --alpha 1 --clap CLAP", "--clap: the CLAP measures need the clips' audio"},
        {"--feature 2 --alpha 1 --labels L.jsonl", "--labels L.jsonl: the label alignment is a CLAP measure"},
        {"--feature 2 --alpha 1 --random-draws 0", "--random-draws: expected an integer in 1..1000, got '0'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const int rc = run(STUDY0 "%s --no-audio -o R", g_model, g_sae, F, bad[i].flags);
        CHECK(rc == 1, "'%s': exit %d, want 1", bad[i].flags, rc);
        err_has(bad[i].msg);
    }
    CHECK(run(STUDY "--feature 2 --alpha 1 --labeler nobody -o R", g_model, g_sae, F, g_clap) == 1,
          "a --labeler without a line in L.jsonl accepted");
    err_has("--labeler nobody: L.jsonl has no line of that labeler");
    CHECK(run(STUDY0 "--feature 3 --alpha 1 --no-audio -o R", g_model, g_sae, at("Fnan.h5")) == 1, "NaN β accepted");
    err_has("max_act[3] = nan is no usable β");
    CHECK(run(STUDY0 "--feature 3 --alpha 1 --no-audio -o R", g_model, g_sae, at("Fother.h5")) == 1,
          "other SAE accepted");
    err_has("was computed with another SAE");
    scratch_close();
    TEST_END();
}
