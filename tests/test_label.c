/* musae label --labeler dsp end to end (issue describe's acceptance: "a store where a planted feature fires exactly
 * on the fast clips is labelled fast tempo").
 *
 * Made here: 24 clips of 8 s cut from one WAV of click tracks, even clips at 160 BPM and odd ones at 80 BPM, each
 * with its own click level (so loudness overlaps between the two groups) and its own phase; a store whose clips
 * carry those names (capture_clip_name) and whose rows hold direction e0 exactly in the fast clips, e1 in the
 * clips i % 4 < 2 (half fast, half slow: the control) and e2 in all but two clips; an SAE whose latent i reads
 * e_i. Then musae
 * analyze, musae describe --acts, musae label: latent 0 is labelled "fast tempo" (the tempo test's evidence:
 * AUROC 1 over 12 top clips against 12 random ones, medians near 160 and 80), latent 1 is not labelled by tempo.
 * Then the file's contract (one line per kept feature, in order, parseable, numbers finite), latent 2 kept under
 * --max-rate 0.95 with only 2 random clips gets an explicit "too few clips" no_signal line, another labeler's
 * lines kept across reruns, and refusals (exit 1 + message). About 15 s on 2 cores (describe dominates). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fixture_io.h"
#include "eval/capture.h"
#include "eval/describe.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"

#define SR DESCRIBE_RATE
enum { N_CLIPS = 24, CLIP_S = 8, D = 8, M = 4, K = 3, ROWS = 4, LAYER = 0 };

static int is_fast(int c) { return c % 2 == 0; }
static int is_control(int c) { return c % 4 < 2; }

/* clip c's click level: a permutation of 12 levels in each group, so loudness does not follow tempo */
static double level(int c) { return 0.15 + 0.06 * ((c / 2 * 5) % 12); }

/* 10 ms 1 kHz clicks with a fast decay (as tests/test_describe.c), every 60/bpm s from `phase` seconds on */
static void clicks(float *x, int64_t n, double bpm, double phase, double amp) {
    for (double t = phase; t < (double)n / SR; t += 60.0 / bpm) {
        const int64_t a = llround(t * SR);
        for (int64_t i = 0; i < 320 && a + i < n; i++) x[a + i] += (float)(amp * exp(-i / 60.0) * sin(2 * M_PI * 1000 * i / SR));
    }
}

static void make_audio(void) {
    const int64_t per = (int64_t)CLIP_S * SR, n = per * N_CLIPS;
    float *x = musae_xcalloc((size_t)n, sizeof(float));
    for (int c = 0; c < N_CLIPS; c++) clicks(x + c * per, per, is_fast(c) ? 160 : 80, 0.037 * (c % 7), level(c));
    fx_write_wav(at("clicks.wav"), x, n, SR, 1, MUSAE_AUDIO_FLOAT);
    free(x);
}

static void make_store(void) {
    musae_store_writer *w = fx_store_create(at("s.h5"), "test/model", D, LAYER);
    char name[512];
    float rows[ROWS * D];
    for (int c = 0; c < N_CLIPS; c++) {
        memset(rows, 0, sizeof rows);
        for (int r = 0; r < ROWS; r++) {
            if (is_fast(c)) rows[r * D + 0] = 2.0f + 0.1f * (float)((c + r) % 5);
            if (is_control(c)) rows[r * D + 1] = 1.5f + 0.1f * (float)(r % 3);
            if (c >= 2) rows[r * D + 2] = 0.5f; /* latent 2: 22 of 24 clips, too common to keep by default */
        }
        capture_clip_name("clicks.wav", (int64_t)c * CLIP_S * SR, (int64_t)CLIP_S * SR, SR, name, sizeof name);
        const float *a[1] = {rows};
        musae_store_add_clip(w, name, ROWS, a);
    }
    musae_store_close_writer(w, 1);
}

/* A checkpoint folder as musae train writes it: latent i reads and writes basis direction e_i. */
static void make_sae(void) {
    float W[M * D] = {0}, b_enc[M] = {0}, b_dec[D] = {0};
    for (int i = 0; i < M; i++) W[i * D + i] = 1;
    fx_write_sae(at("sae"), M, D, K, LAYER, W, b_enc, W, b_dec, "\"selection\": \"topk\", \"threshold\": 0");
}

/* The lines of a LABELS.jsonl, parsed (NULL-terminated); exits the test when one does not parse. */
static cJSON **read_lines(const char *rel, int *n) {
    char *s = slurp(rel), *save = NULL;
    cJSON **out = musae_xcalloc(64, sizeof(cJSON *));
    *n = 0;
    for (char *l = strtok_r(s, "\n", &save); l && *n < 63; l = strtok_r(NULL, "\n", &save)) {
        out[*n] = cJSON_Parse(l);
        CHECK(out[*n] != NULL, "%s: line %d does not parse: %s", rel, *n + 1, l);
        if (!out[*n]) exit(1);
        (*n)++;
    }
    free(s);
    return out;
}
static void free_lines(cJSON **l, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(l[i]);
    free(l);
}

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* Every number in j is finite (cJSON would print a NaN as null: this checks the parsed file) */
static int all_finite(const cJSON *j) {
    if (cJSON_IsNumber(j) && !isfinite(j->valuedouble)) return 0;
    for (const cJSON *c = j->child; c; c = c->next)
        if (!all_finite(c)) return 0;
    return 1;
}

/* The dsp line of a feature, or NULL. */
static const cJSON *line_of(cJSON **l, int n, int feature) {
    for (int i = 0; i < n; i++)
        if (item(l[i], "feature")->valueint == feature && !strcmp(item(l[i], "labeler")->valuestring, "dsp")) return l[i];
    return NULL;
}

static void test_planted(void) {
    if (run("analyze --sae sae --acts s.h5 -o features.h5 --split all --max-rate 0.6") != 0) setup_failed("musae analyze");
    if (run("describe --acts s.h5 -o desc.h5") != 0) setup_failed("musae describe --acts");
    CHECK(run("label --labeler dsp --features features.h5 --descriptors desc.h5 -o labels.jsonl") == 0, "label:\n%s",
          slurp("err.txt"));
    err_has("2 kept features, ");
    int n;
    cJSON **l = read_lines("labels.jsonl", &n);
    CHECK(n == 2, "%d lines, want one per kept feature (latents 0 and 1)", n);
    for (int i = 0; i < n; i++) {
        CHECK(cJSON_IsNumber(item(l[i], "feature")) && cJSON_IsString(item(l[i], "labeler")) &&
                  cJSON_IsString(item(l[i], "label")) && cJSON_IsNumber(item(l[i], "score")) &&
                  cJSON_IsString(item(l[i], "status")) && cJSON_IsArray(item(l[i], "evidence")) &&
                  cJSON_IsObject(item(l[i], "source")) && cJSON_IsString(item(l[i], "musae_version")),
              "line %d lacks a key of docs/LABELS.md", i + 1);
        CHECK(item(l[i], "feature")->valueint == i, "line %d is feature %d: want 0, 1 in order", i + 1,
              item(l[i], "feature")->valueint);
        CHECK(all_finite(l[i]), "line %d holds a non-finite number", i + 1);
    }
    const cJSON *fast = line_of(l, n, 0), *ctrl = line_of(l, n, 1);
    if (fast) {
        const char *label = item(fast, "label")->valuestring;
        printf("planted feature 0: %s (score %.3f)\n", label, item(fast, "score")->valuedouble);
        CHECK(!strncmp(label, "fast tempo (median ", 19), "the planted feature's label '%s' does not start with fast tempo",
              label);
        CHECK(!strcmp(item(fast, "status")->valuestring, "ok") && item(fast, "score")->valuedouble >= 0.99,
              "planted feature: status %s score %g", item(fast, "status")->valuestring, item(fast, "score")->valuedouble);
        const cJSON *tempo = NULL;
        for (const cJSON *e = item(fast, "evidence")->child; e && !tempo; e = e->next)
            if (!strcmp(item(e, "descriptor")->valuestring, "tempo_bpm") && !strcmp(item(e, "weighting")->valuestring, "top"))
                tempo = e;
        CHECK(tempo != NULL, "no tempo_bpm evidence over the top clips");
        if (tempo) {
            CHECK(!strcmp(item(tempo, "direction")->valuestring, "higher") && item(tempo, "auroc")->valuedouble == 1 &&
                      item(tempo, "cliffs_delta")->valuedouble == 1,
                  "tempo evidence: %s, AUROC %g", item(tempo, "direction")->valuestring, item(tempo, "auroc")->valuedouble);
            CHECK(item(tempo, "n_top")->valueint == 12 && item(tempo, "n_random")->valueint == 12, "n_top %d n_random %d",
                  item(tempo, "n_top")->valueint, item(tempo, "n_random")->valueint);
            CHECK(fabs(item(tempo, "median_top")->valuedouble / 160 - 1) <= 0.04 &&
                      fabs(item(tempo, "median_random")->valuedouble / 80 - 1) <= 0.04,
                  "tempo medians %g vs %g, want 160 vs 80 within 4 %%", item(tempo, "median_top")->valuedouble,
                  item(tempo, "median_random")->valuedouble);
            /* 12 above 12 without ties: normal approximation, z = 71.5 / sqrt(144 * 25 / 12) */
            CHECK(item(tempo, "p")->valuedouble < 1e-4 && item(tempo, "q")->valuedouble <= 0.05, "tempo p %g q %g",
                  item(tempo, "p")->valuedouble, item(tempo, "q")->valuedouble);
        }
    } else CHECK(0, "no line for the planted feature 0");
    if (ctrl) {
        printf("control feature 1: %s\n", item(ctrl, "label")->valuestring);
        CHECK(!strstr(item(ctrl, "label")->valuestring, "tempo"), "the control is labelled '%s'",
              item(ctrl, "label")->valuestring);
        for (const cJSON *e = item(ctrl, "evidence")->child; e; e = e->next)
            CHECK(strcmp(item(e, "descriptor")->valuestring, "tempo_bpm"), "the control has tempo evidence");
    } else CHECK(0, "no line for the control feature 1");
    free_lines(l, n);
}

/* a kept feature with 2 non-firing clips: not dropped, an explicit no_signal line */
static void test_too_few(void) {
    if (run("analyze --sae sae --acts s.h5 -o features2.h5 --split all --max-rate 0.95") != 0) setup_failed("musae analyze");
    CHECK(run("label --labeler dsp --features features2.h5 --descriptors desc.h5 -o labels2.jsonl") == 0, "label:\n%s",
          slurp("err.txt"));
    int n;
    cJSON **l = read_lines("labels2.jsonl", &n);
    const cJSON *common = line_of(l, n, 2);
    CHECK(n == 3 && common, "%d lines; want 3 with one for latent 2", n);
    if (common) {
        CHECK(!strcmp(item(common, "status")->valuestring, "no_signal") && item(common, "score")->valuedouble == 0 &&
                  cJSON_GetArraySize(item(common, "evidence")) == 0,
              "latent 2: status %s score %g", item(common, "status")->valuestring, item(common, "score")->valuedouble);
        CHECK(!strcmp(item(common, "label")->valuestring, "no descriptor differs (too few clips to compare: 20 top, 2 random)"),
              "latent 2: label '%s'", item(common, "label")->valuestring);
    }
    free_lines(l, n);
}

/* another labeler's lines survive, the dsp lines are replaced (not doubled) */
static void test_merge(void) {
    CHECK(sh("printf '%%s\\n' '{\"feature\": 3, \"labeler\": \"llm\", \"label\": \"clicks\", \"score\": 0.5}' > "
             "merged.jsonl") == 0, "setup");
    for (int pass = 0; pass < 2; pass++)
        CHECK(run("label --labeler dsp --features features.h5 --descriptors desc.h5 -o merged.jsonl") == 0,
              "label into an existing file (pass %d):\n%s", pass, slurp("err.txt"));
    int n;
    cJSON **l = read_lines("merged.jsonl", &n);
    int llm = 0, dsp = 0;
    for (int i = 0; i < n; i++) {
        llm += !strcmp(item(l[i], "labeler")->valuestring, "llm");
        dsp += !strcmp(item(l[i], "labeler")->valuestring, "dsp");
    }
    CHECK(llm == 1 && dsp == 2 && n == 3, "after two runs: %d llm, %d dsp lines of %d", llm, dsp, n);
    free_lines(l, n);
}

static void test_refusals(void) {
    CHECK(run("label --help") == 0, "--help");
    char *o = slurp("out.txt");
    CHECK_STR_CONTAINS(o, "usage: musae label");
    free(o);
    CHECK(run("label --features features.h5 --descriptors desc.h5 -o x.jsonl") == 1, "no --labeler: exit code");
    err_has("--labeler dsp|llm|clap is required; see musae label --help");
    CHECK(run("label --labeler llm --features features.h5 -o x.jsonl") == 1, "llm without its options: exit code");
    err_has("--endpoint is required");
    CHECK(run("label --labeler bogus --features features.h5 -o x.jsonl") == 1, "an unknown labeler: exit code");
    err_has("--labeler: expected dsp, llm or clap, got 'bogus'");
    CHECK(run("label --labeler clap --features features.h5 -o x.jsonl") == 1, "clap without its options: exit code");
    err_has("--clap");
    CHECK(run("label --labeler gpt --features features.h5 --descriptors desc.h5 -o x.jsonl") == 1, "bad labeler: exit code");
    err_has("--labeler: expected dsp, llm or clap, got 'gpt'");
    CHECK(run("label --labeler dsp --features features.h5 --descriptors desc.h5") == 1, "no -o: exit code");
    err_has("-o LABELS.jsonl is required");
    CHECK(run("label --labeler dsp --features features.h5 --descriptors desc.h5 -o x.jsonl --bogus") == 1, "unknown option");
    err_has("unknown option '--bogus'; see musae label --help");
    CHECK(run("label --labeler dsp --features features.h5 --descriptors desc.h5 -o x.jsonl --q 2") == 1, "--q 2");
    err_has("--q");
    CHECK(run("label --labeler dsp --features nothere.h5 --descriptors desc.h5 -o x.jsonl") == 1, "missing features");
    err_has("nothere.h5");
    /* descriptors of other clips (a store of one 4 s clip of the same audio): both files named */
    musae_store_writer *w = fx_store_create(at("one.h5"), "test/model", D, LAYER);
    float rows[D] = {0};
    const float *a[1] = {rows};
    musae_store_add_clip(w, "clicks.wav#t=0,4", 1, a);
    musae_store_close_writer(w, 1);
    if (run("describe --acts one.h5 -o one_desc.h5") != 0) setup_failed("musae describe --acts one.h5");
    CHECK(run("label --labeler dsp --features features.h5 --descriptors one_desc.h5 -o x.jsonl") == 1, "mismatch: exit code");
    err_has("features.h5 and one_desc.h5 do not describe the same clips: clip 'clicks.wav#t=0,8' of features.h5 is not in "
            "one_desc.h5");
    CHECK(!dir_has("x.jsonl"), "a refused run left x.jsonl");
    /* an existing output that is not LABELS.jsonl is not overwritten */
    CHECK(sh("echo 'not json' > bad.jsonl") == 0, "setup");
    CHECK(run("label --labeler dsp --features features.h5 --descriptors desc.h5 -o bad.jsonl") == 1, "bad existing file");
    err_has("bad.jsonl: line 1: not a JSON object (not replacing it)");
    o = slurp("bad.jsonl");
    CHECK(!strcmp(o, "not json\n"), "bad.jsonl was changed: '%s'", o);
    free(o);
}

int main(void) {
    scratch_open("label");
    make_audio();
    make_store();
    make_sae();
    test_planted();
    test_too_few();
    test_merge();
    test_refusals();
    scratch_close();
    TEST_END();
}
