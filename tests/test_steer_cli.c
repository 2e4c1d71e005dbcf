/* musae generate --steer through the binary (docs/STEER.md), on tests/fixtures/tiny-musicgen:
 *   - exactness: greedy steered codes equal golden/steer_generate.safetensors (HF generate with a forward hook
 *     adding the same vector after layer 0; tools/reference/golden_steer.py) for both CFG branches, the
 *     conditional one, a frame range and two features summed, on the host loop and the device loop (the CPU
 *     step table); --steer-vector with the golden's vector gives the same codes; every golden differs from the
 *     unsteered codes, so a steering that did nothing would fail; the codes file's "steer" metadata states the
 *     layer, terms, β, branch, frames and ‖v‖ (= ‖the golden's vector‖);
 *   - α = 0 gives codes bitwise equal to plain generate with the same seed (greedy with CFG, and sampled), on
 *     both loops;
 *   - refusals, each by exit status 1 and its message: a zero decoder row, a zero --steer-vector, a feature out
 *     of range, β NaN / Inf / 0 / negative / missing, |α| above the allowed maximum (and --alpha-max allowing
 *     it), --steer without --sae, frame ranges outside the generation, an SAE of another width, of a layer the
 *     model lacks, of another model, the unconditional branch without CFG, a malformed spec, a vector of the
 *     wrong shape. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>

#include "host/io/safetensors.h"
#include "cli.h"

#define P1 "80s pop track with bassy drums and synth"
#define P2 "90s rock song with loud guitars and heavy drums!"
#define TEXT "--prompt '" P1 "' --prompt '" P2 "' --frames 20 --greedy --guidance 3"

static char g_model[1024], g_sae[1024], g_golden[1024];

/* The codes of g_dir/out against tensor `name` of file `ref`: the count of differing codes (-1: unreadable). */
static int64_t diff_codes(const char *out, const char *ref, const char *name) {
    int64_t n1 = 0, n2 = 0;
    int64_t *a = read_codes(at(out), "codes", &n1, NULL), *b = read_codes(ref, name, &n2, NULL);
    int64_t d = -1;
    if (a && b && n1 == n2) {
        d = 0;
        for (int64_t i = 0; i < n1; i++) d += a[i] != b[i];
    }
    free(a), free(b);
    return d;
}

/* golden tensors a and b of one file: count of differing codes */
static int64_t diff_codes_files(const char *file, const char *a, const char *b) {
    int64_t n1 = 0, n2 = 0;
    int64_t *x = read_codes(file, a, &n1, NULL), *y = read_codes(file, b, &n2, NULL);
    int64_t d = -1;
    if (x && y && n1 == n2) {
        d = 0;
        for (int64_t i = 0; i < n1; i++) d += x[i] != y[i];
    }
    free(x), free(y);
    return d;
}

/* The "steer" metadata of g_dir/s.st against the golden case: layer 0, branch, frames, β 6, ‖v‖ */
static void check_meta(const char *name) {
    char err[512], vname[64];
    musae_st st, gs;
    if (musae_st_open(&st, at("s.st"), err, sizeof err) || musae_st_open(&gs, g_golden, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    snprintf(vname, sizeof vname, "%s.vector", name);
    float *v = musae_st_load(&gs, vname, MUSAE_F32, 1, (int64_t[]){32});
    double n2 = 0;
    for (int i = 0; i < 32; i++) n2 += (double)v[i] * v[i];
    const char *s = musae_st_meta(&st, "steer");
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    const cJSON *layer = cJSON_GetObjectItem(j, "layer"), *beta = cJSON_GetObjectItem(j, "beta");
    const cJSON *norm = cJSON_GetObjectItem(j, "norm"), *branch = cJSON_GetObjectItem(j, "branch");
    const cJSON *frames = cJSON_GetObjectItem(j, "frames"), *terms = cJSON_GetObjectItem(j, "terms");
    const char *want_branch = !strcmp(name, "both") || !strcmp(name, "frames") ? "both" : "cond";
    CHECK(j && cJSON_IsNumber(layer) && layer->valueint == 0 && cJSON_IsNumber(beta) && beta->valuedouble == 6.0 &&
              cJSON_IsString(branch) && !strcmp(branch->valuestring, want_branch) &&
              cJSON_GetArraySize(terms) == (!strcmp(name, "two") ? 2 : 1) &&
              (!strcmp(name, "frames") ? cJSON_GetArraySize(frames) == 2 && cJSON_GetArrayItem(frames, 0)->valueint == 5 &&
                                             cJSON_GetArrayItem(frames, 1)->valueint == 12
                                       : cJSON_IsNull(frames)) &&
              cJSON_IsNumber(norm) && fabs(norm->valuedouble - sqrt(n2)) <= 1e-6 * sqrt(n2),
          "%s: steer metadata '%s' (want layer 0, beta 6, branch %s, norm %.9g)", name, s ? s : "(none)", want_branch,
          sqrt(n2));
    cJSON_Delete(j);
    free(v);
    musae_st_close(&st);
    musae_st_close(&gs);
}

static int gen(const char *out, const char *loop, const char *extra) {
    const int rc = run("generate --model %s " TEXT " --loop %s --codes-out %s %s", g_model, loop, out, extra);
    if (rc) {
        char *e = slurp("err.txt");
        CHECK(0, "generate %s (%s loop) exited %d: %s", extra, loop, rc, e);
        free(e);
    }
    return rc;
}

static void test_goldens(void) {
    static const struct {
        const char *name, *flags;
    } cases[] = {
        {"both", "--steer 3:0.8 --beta 6 --steer-branch both"},
        {"cond", "--steer 3:0.8 --beta 6"}, /* cond is the default branch */
        {"frames", "--steer 3:0.8 --beta 6 --steer-branch both --steer-frames 5:12"},
        {"two", "--steer 3:0.5,9:-0.7 --beta 6 --steer-branch cond"},
    };
    char extra[2048], name[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "%s.codes", cases[i].name);
        const int64_t vs_plain = diff_codes_files(g_golden, name, "plain.codes");
        CHECK(vs_plain > 0, "golden %s equals the unsteered codes (%" PRId64 " differ)", cases[i].name, vs_plain);
        for (int l = 0; l < 2; l++) {
            const char *loop = l ? "device" : "host";
            snprintf(extra, sizeof extra, "--sae %s %s", g_sae, cases[i].flags);
            if (gen("s.st", loop, extra)) continue;
            const int64_t d = diff_codes("s.st", g_golden, name);
            CHECK(d == 0, "%s (%s loop): %" PRId64 " of 160 codes differ from HF with the hook", cases[i].name, loop, d);
            if (l == 0) check_meta(cases[i].name);
            printf("%-7s %-6s loop: %" PRId64 " codes differ from HF (the golden differs from unsteered in %" PRId64
                   ")\n", cases[i].name, loop, d, vs_plain);
        }
    }
}

/* --steer-vector with the golden's "both" vector, α = β = 1: the same add, so the same codes */
static void test_vector(void) {
    char err[512];
    musae_st st;
    if (musae_st_open(&st, g_golden, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    float *v = musae_st_load(&st, "both.vector", MUSAE_F32, 1, (int64_t[]){32});
    musae_st_close(&st);
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "direction", MUSAE_F32, 1, (int64_t[]){32}, v);
    CHECK(musae_st_writer_save(w, at("dir.st"), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    float zero[32] = {0};
    w = musae_st_writer_new();
    musae_st_writer_add(w, "direction", MUSAE_F32, 1, (int64_t[]){32}, zero);
    CHECK(musae_st_writer_save(w, at("zerovec.st"), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    w = musae_st_writer_new();
    musae_st_writer_add(w, "direction", MUSAE_F32, 2, (int64_t[]){2, 16}, v);
    CHECK(musae_st_writer_save(w, at("shape.st"), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    free(v);
    for (int l = 0; l < 2; l++) {
        const char *loop = l ? "device" : "host";
        if (gen("v.st", loop, "--steer-vector dir.st --steer-layer 0 --steer-branch both")) continue;
        const int64_t d = diff_codes("v.st", g_golden, "both.codes");
        CHECK(d == 0, "--steer-vector (%s loop): %" PRId64 " codes differ from HF's 'both'", loop, d);
    }
}

/* α = 0: bitwise the plain run, greedy with CFG and sampled, on both loops */
static void test_alpha_zero(void) {
    char extra[2048];
    for (int l = 0; l < 2; l++) {
        const char *loop = l ? "device" : "host";
        if (gen("plain.st", loop, "")) continue;
        snprintf(extra, sizeof extra, "--sae %s --steer 3:0,9:-0 --beta 6 --steer-branch both", g_sae);
        if (gen("a0.st", loop, extra)) continue;
        const int64_t d = diff_codes("a0.st", at("plain.st"), "codes");
        CHECK(d == 0, "α = 0 greedy CFG (%s loop): %" PRId64 " codes differ from plain generate", loop, d);
        /* sampled, top-k 50, without text (one branch) */
        int rc = run("generate --model %s --frames 24 --batch 2 --seed 11 --top-k 50 --loop %s --codes-out ps.st",
                     g_model, loop);
        rc |= run("generate --model %s --frames 24 --batch 2 --seed 11 --top-k 50 --loop %s --codes-out zs.st "
                  "--sae %s --steer 5:0 --beta 3",
                  g_model, loop, g_sae);
        CHECK(rc == 0, "sampled runs (%s loop) failed", loop);
        const int64_t ds = diff_codes("zs.st", at("ps.st"), "codes");
        CHECK(ds == 0, "α = 0 sampled (%s loop): %" PRId64 " codes differ from plain generate", loop, ds);
        printf("alpha 0, %s loop: greedy CFG %" PRId64 " codes differ, sampled %" PRId64 "\n", loop, d, ds);
    }
    /* and the plain run is the golden's unsteered codes (HF) */
    CHECK(diff_codes("plain.st", g_golden, "plain.codes") == 0, "plain generate differs from HF's plain codes");
}

static void refuse(const char *what, const char *needle, const char *extra) {
    const int rc = run("generate --model %s " TEXT " --codes-out r.st %s", g_model, extra);
    char *e = slurp("err.txt");
    CHECK(rc == 1, "%s: exit %d, expected 1 (%s)", what, rc, e);
    CHECK(strstr(e, needle) != NULL, "%s: stderr '%s' does not say '%s'", what, e, needle);
    free(e);
}

/* An SAE copy with W_dec row 5 zero and musae.json variants */
static void make_bad_saes(void) {
    char err[512];
    musae_st st;
    char path[2048];
    snprintf(path, sizeof path, "%s/sae.safetensors", g_sae);
    if (musae_st_open(&st, path, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    const int64_t sm[2] = {16, 32}, s16[1] = {16}, s32[1] = {32};
    float *we = musae_st_load(&st, "encoder.weight", MUSAE_F32, 2, sm), *be = musae_st_load(&st, "encoder.bias", MUSAE_F32, 1, s16);
    float *wd = musae_st_load(&st, "W_dec", MUSAE_F32, 2, sm), *bd = musae_st_load(&st, "b_dec", MUSAE_F32, 1, s32);
    musae_st_close(&st);
    memset(wd + 5 * 32, 0, 32 * sizeof(float));
    CHECK(sh("mkdir -p zero_row && cp %s/cfg.json %s/musae.json zero_row/", g_sae, g_sae) == 0, "copy the SAE");
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "encoder.weight", MUSAE_F32, 2, sm, we);
    musae_st_writer_add(w, "encoder.bias", MUSAE_F32, 1, s16, be);
    musae_st_writer_add(w, "W_dec", MUSAE_F32, 2, sm, wd);
    musae_st_writer_add(w, "b_dec", MUSAE_F32, 1, s32, bd);
    CHECK(musae_st_writer_save(w, at("zero_row/sae.safetensors"), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    free(we), free(be), free(wd), free(bd);
    /* layer 5 (the tiny model has 0..1), another model, layer 1 */
    const char *variants[][2] = {{"layer5", "s/\"layer\": 0/\"layer\": 5/"},
                                 {"other_model", "s/\"layer\": 0,/\"layer\": 0, \"model\": \"facebook\\/musicgen-small:0123456789abcdef\",/"},
                                 {"layer1", "s/\"layer\": 0/\"layer\": 1/"}};
    for (int i = 0; i < 3; i++)
        CHECK(sh("mkdir -p %s && cp %s/cfg.json %s/sae.safetensors %s/ && sed '%s' %s/musae.json > %s/musae.json && "
                 "grep -q . %s/musae.json",
                 variants[i][0], g_sae, g_sae, variants[i][0], variants[i][1], g_sae, variants[i][0], variants[i][0]) == 0,
              "make the %s SAE", variants[i][0]);
    CHECK(sh("grep -q '\"layer\": 5' layer5/musae.json && grep -q musicgen-small other_model/musae.json") == 0,
          "the musae.json edits did not apply");
}

static void test_refusals(void) {
    char f[2048];
    make_bad_saes();
    snprintf(f, sizeof f, "--sae zero_row --steer 5:0.5 --beta 2");
    refuse("zero decoder row", "feature 5 of zero_row has a zero decoder row", f);
    refuse("zero vector", "'direction' is the zero vector", "--steer-vector zerovec.st --steer-layer 0");
    refuse("vector shape", "tensor 'direction' is F32 of rank 2", "--steer-vector shape.st --steer-layer 0");
    refuse("vector without layer", "--steer-vector needs --steer-layer", "--steer-vector dir.st");
    snprintf(f, sizeof f, "--sae %s --steer 16:0.5 --beta 2", g_sae);
    refuse("feature out of range", "feature 16 is out of range", f);
    snprintf(f, sizeof f, "--sae %s --steer -1:0.5 --beta 2", g_sae);
    refuse("negative feature", "feature -1 is out of range", f);
    const char *betas[] = {"nan", "inf", "0", "-2"};
    for (int i = 0; i < 4; i++) {
        snprintf(f, sizeof f, "--sae %s --steer 3:0.5 --beta %s", g_sae, betas[i]);
        refuse("bad beta", "expected a finite number > 0", f);
    }
    snprintf(f, sizeof f, "--sae %s --steer 3:0.5", g_sae);
    refuse("no beta", "--steer needs --beta", f);
    snprintf(f, sizeof f, "--sae %s --steer 3:1.5 --beta 2", g_sae);
    refuse("alpha above 1", "|α| = 1.5 exceeds the allowed 1", f);
    snprintf(f, sizeof f, "--sae %s --steer 3:-2.5 --beta 2 --alpha-max 2", g_sae);
    refuse("alpha above --alpha-max", "|α| = 2.5 exceeds the allowed 2", f);
    snprintf(f, sizeof f, "--sae %s --steer 3:nan --beta 2", g_sae);
    refuse("alpha NaN", "is not a finite number", f);
    refuse("--steer without --sae", "--steer needs --sae", "--steer 3:0.5 --beta 2");
    refuse("--sae alone", "go with --steer or --steer-vector", "--sae x --beta 2");
    snprintf(f, sizeof f, "--sae %s --steer 3 --beta 2", g_sae);
    refuse("malformed spec", "expected FEATURE:ALPHA", f);
    const char *frames[] = {"0:21", "5:5", "-1:4", "7:3"};
    for (int i = 0; i < 4; i++) {
        snprintf(f, sizeof f, "--sae %s --steer 3:0.5 --beta 2 --steer-frames %s", g_sae, frames[i]);
        refuse("frames outside", "is outside the generation", f);
    }
    snprintf(f, sizeof f, "--sae %s/../sparsify_tiny --steer 3:0.5 --beta 2 --steer-layer 0", g_sae);
    refuse("d_model mismatch", "has d_in 16; the decoder of", f);
    refuse("layer the model lacks", "was trained on layer 5", "--sae layer5 --steer 3:0.5 --beta 2");
    refuse("another model", "was trained on activations of 'facebook/musicgen-small:0123456789abcdef'",
           "--sae other_model --steer 3:0.5 --beta 2");
    refuse("--steer-layer against musae.json", "--steer-layer 0: layer1 was trained on layer 1",
           "--sae layer1 --steer 3:0.5 --beta 2 --steer-layer 0");
    snprintf(f, sizeof f, "--sae %s --steer 3:0.5 --beta 2 --steer-branch sideways", g_sae);
    refuse("bad branch", "expected cond, uncond or both", f);
    refuse("both directions", "give one", "--sae x --steer 3:0.5 --steer-vector dir.st --beta 2");
    /* the unconditional branch without CFG */
    int rc = run("generate --model %s --frames 4 --greedy --codes-out r.st --sae %s --steer 3:0.5 --beta 2 "
                 "--steer-branch uncond", g_model, g_sae);
    char *e = slurp("err.txt");
    CHECK(rc == 1 && strstr(e, "has no unconditional branch"), "uncond without CFG: exit %d: %s", rc, e);
    free(e);
    /* what the refusals allow: --alpha-max 2 takes α 1.5; --force takes the other model's SAE */
    snprintf(f, sizeof f, "--sae %s --steer 3:1.5 --beta 2 --alpha-max 2", g_sae);
    CHECK(gen("ok.st", "auto", f) == 0, "--alpha-max 2 refused α 1.5");
    CHECK(gen("ok.st", "auto", "--sae other_model --steer 3:0.5 --beta 2 --force") == 0, "--force refused");
}

int main(void) {
    scratch_open("steer_cli");
    snprintf(g_model, sizeof g_model, "%s/tiny-musicgen", test_fixtures());
    snprintf(g_sae, sizeof g_sae, "%s/sae/steer_tiny", test_fixtures());
    snprintf(g_golden, sizeof g_golden, "%s/golden/steer_generate.safetensors", test_fixtures());
    test_goldens();
    test_vector();
    test_alpha_zero();
    test_refusals();
    scratch_close();
    TEST_END();
}
