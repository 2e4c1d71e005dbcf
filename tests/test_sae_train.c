/* The trainer end to end through the musae binary: a run killed by SIGKILL (and one stopped by SIGTERM and
 * resumed with one OpenMP thread) and resumed ends bit-identical to an uninterrupted run; a grid equals
 * separate runs with the same seed; bad input gets clear errors. */
#include <signal.h>
#include <unistd.h>

#include <math.h>

#include <cjson/cJSON.h>

#include "host/core/check.h"
#include "test.h"

#include "cli.h"

#define TRAIN "train --acts s.h5 --batch 256 --warmup 10 --dead-tokens 3000 --k-aux 8 " \
              "--shuffle-rows 2048 --init-rows 2048 --eval-tokens 2048 --seed 3"
#define RESUMABLE TRAIN " --tokens 160000 --layer 0 --k 8 --expansion 4 --save-every 7"

/* Starts a training run in the background, waits for its first saved state, then sends sig. */
static int run_and_signal(const char *args, int sig) {
    const pid_t pid = start_and_wait_for(bin(), args, "B/state/run.json", 10);
    kill(pid, sig);
    return wait_exit(pid);
}

static void test_resume(void) {
    CHECK(run(RESUMABLE " -o A") == 0, "uninterrupted run");
    char *metrics = slurp("A/metrics.jsonl");
    CHECK(strstr(metrics, "\"auxk\":0,") != NULL && strstr(metrics, "\"dead_frac\":0,") != NULL, "metrics lines");
    /* AuxK must be active for the resume to cover the dead counters */
    int aux_active = 0;
    for (const char *p = metrics; (p = strstr(p, "\"auxk\":")); p++) aux_active |= atof(p + 7) > 0;
    CHECK(aux_active, "AuxK was active in the run (dead latents existed)");
    free(metrics);
    CHECK(!dir_has("A/state"), "state/ is removed after a finished run");

    int st = run_and_signal(RESUMABLE " -o B", SIGKILL);
    CHECK(st == 128 + SIGKILL, "the run was killed mid-run (status %d)", st);
    CHECK(dir_has("B/state/run.json") && !dir_has("B/sae.safetensors"), "a killed run leaves its state, no checkpoint");
    CHECK(run(RESUMABLE " -o B") == 1, "restarting without --resume is refused");
    err_has("B holds an unfinished run (state/run.json); pass --resume to continue it");
    CHECK(run(RESUMABLE " -o B --resume") == 0, "resume");
    CHECK(same_bytes("A/sae.safetensors", "B/sae.safetensors"), "killed + resumed weights are bit-identical");
    char *ma = slurp("A/metrics.jsonl"), *mb = slurp("B/metrics.jsonl");
    drop_rates(ma);
    drop_rates(mb);
    CHECK(strlen(ma) > 0 && !strcmp(ma, mb), "the resumed metrics.jsonl logs the same steps and values");
    free(ma), free(mb);

    sh("rm -rf B");
    st = run_and_signal(RESUMABLE " -o B", SIGTERM);
    CHECK(st == 130, "SIGTERM saves the state and exits 130 (got %d)", st);
    CHECK(run(RESUMABLE " --batch 128 -o B --resume") == 1,
          "resuming with other flags is refused");
    err_has("B: the run being resumed had --batch = 256, this run has 128");
    /* resumed with another thread count: the kernels cut their work by shape (docs/SAE.md) */
    CHECK(sh("OMP_NUM_THREADS=1 %s " RESUMABLE " -o B --resume >out.txt 2>err.txt", bin()) == 0,
          "resume after SIGTERM, with one OpenMP thread");
    CHECK(same_bytes("A/sae.safetensors", "B/sae.safetensors"), "stopped + resumed weights are bit-identical");
}

/* A resume refuses every change that breaks bit-identical continuation, naming the flag, and a store that is not
 * the one the run began on even when it has the same size; unchanged, the same resume ends equal to run A. */
static void test_resume_refusals(void) {
    CHECK(run("synth_acts -o s_alt.h5 --d 32 --concepts 48 --k-true 3 --rows 12000 --clip-frames 100 --layers 0,1 "
              "--seed 9") == 0, "another store of the same size");
    const pid_t pid = start_and_wait_for(bin(), RESUMABLE " -o R", "R/state/run.json", 10);
    kill(pid, SIGTERM);
    CHECK(wait_exit(pid) == 130 && dir_has("R/state/run.json"), "a stopped run to resume");
    const char *changes[][2] = {{"--lr 0.001", "had --lr = 0, this run has 0.001"},
                                {"--warmup 20", "had --warmup = 10, this run has 20"},
                                {"--decay 0.2", "had --decay = 0, this run has 0.2"},
                                {"--auxk-alpha 0.5", "had --auxk-alpha = 0.03125, this run has 0.5"},
                                {"--dead-tokens 5000", "had --dead-tokens = 3000, this run has 5000"},
                                {"--k-aux 4", "had --k-aux = 8, this run has 4"},
                                {"--seed 4", "had --data-seed (which defaults to --seed) = 3, this run has 4"},
                                {"--log-every 7", "had --log-every = 50, this run has 7"}};
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        CHECK(run(RESUMABLE " %s -o R --resume", changes[i][0]) == 1, "resume with %s is refused", changes[i][0]);
        err_has(changes[i][1]);
        err_has("continues bit-identically only with the same settings");
    }
    sh("mv s.h5 s_orig.h5 && cp s_alt.h5 s.h5");
    CHECK(run(RESUMABLE " -o R --resume") == 1, "a resume on another store of the same size is refused");
    err_has("R: the run being resumed was trained on another store (s.h5: fingerprint");
    sh("mv s_orig.h5 s.h5");
    CHECK(run(RESUMABLE " -o R --resume") == 0, "the unchanged resume");
    CHECK(same_bytes("A/sae.safetensors", "R/sae.safetensors"), "ends bit-identical to the uninterrupted run");
    char *j = slurp("R/musae.json");
    CHECK(strstr(j, "\"warmup_steps\":\t10") && strstr(j, "\"dead_tokens\":\t3000"), "and records the run's recipe: %s", j);
    free(j);
}

static void test_grid(void) {
    CHECK(run(TRAIN " --tokens 40000 --layer 0,1 --k 4,8 --expansion 2,4 -o G") == 0, "grid of 8 SAEs in one pass");
    const int layers[2] = {0, 1}, ks[2] = {4, 8}, exps[2] = {2, 4};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 2; k++)
            for (int e = 0; e < 2; e++) {
                char a[128], b[128];
                snprintf(a, sizeof a, "G/layer%d_k%d_x%d/sae.safetensors", layers[l], ks[k], exps[e]);
                snprintf(b, sizeof b, "S%d%d%d/sae.safetensors", l, k, e);
                CHECK(run(TRAIN " --tokens 40000 --layer %d --k %d --expansion %d -o S%d%d%d", layers[l], ks[k], exps[e], l, k, e) == 0,
                      "separate run");
                CHECK(same_bytes(a, b), "grid SAE %s equals its separate run", a);
            }
}

static void test_batch_topk(void) {
    CHECK(run(TRAIN " --tokens 40000 --layer 0 --k 8 --expansion 4 --batch-topk -o BT") == 0, "batch-top-k training");
    CHECK(run("evaluate --sae BT --acts s.h5 --layer 0") == 0, "evaluate a batch-top-k SAE");
    char *out = slurp("out.txt"), *j = slurp("BT/musae.json");
    const char *l0 = strstr(out, "\"l0\":");
    CHECK(l0 && fabs(atof(l0 + 5) - 8) < 0.01, "batch-top-k selects k per row on average: %s", out);
    CHECK(strstr(j, "\"batch_topk\"") && strstr(j, "\"threshold\""), "musae.json records the selection and threshold");
    free(out), free(j);
}

static void test_bad_input(void) {
    char *err;
#define EXPECT_ERR(needle, ...)                                                                            \
    do {                                                                                                   \
        CHECK(run(__VA_ARGS__) == 1, "should be refused (exit 1): %s", #__VA_ARGS__);                      \
        err = slurp("err.txt");                                                                            \
        CHECK(strstr(err, needle) != NULL, "error '%s' should mention '%s'", err, needle);                 \
        free(err);                                                                                         \
    } while (0)
    EXPECT_ERR("no layer 5", TRAIN " --tokens 1000 --layer 5 --k 8 --expansion 4 -o X");
    EXPECT_ERR("NaN/Inf", "train --acts nan.h5 --layer 0 --k 4 --expansion 2 --tokens 20000 --batch 256 -o X");
    CHECK(run("train --acts nan.h5 --layer 0 --k 4 --expansion 2 --tokens 20000 --batch 256 --init-rows 1024 "
              "--skip-nonfinite -o Y") == 0,
          "--skip-nonfinite trains around NaN rows");
    EXPECT_ERR("d_in 32", "evaluate --sae A --acts small.h5 --layer 0");
    EXPECT_ERR("trained on layer 0", "evaluate --sae A --acts s.h5 --layer 1");
    EXPECT_ERR("trained on activations of 'synthetic'", "evaluate --sae A --acts other.h5 --layer 0");
    CHECK(run("evaluate --sae A --acts other.h5 --layer 0 --force") == 0, "--force evaluates anyway");
    EXPECT_ERR("truncated", "train --acts cut.h5 --layer 0 --k 4 --expansion 2 -o X");
    EXPECT_ERR("d_in", "evaluate --sae nocfg --acts s.h5 --layer 0");
    CHECK(run("info s.h5") == 0, "musae info on a store");
    char *info = slurp("out.txt");
    CHECK(strstr(info, "d_model    32") && strstr(info, "layers     0,1") && strstr(info, "/truth/directions"), "%s", info);
    free(info);
    CHECK(run("info A") == 0, "musae info on a checkpoint");
    info = slurp("out.txt");
    CHECK(strstr(info, "latents    128") && strstr(info, "layer      0"), "%s", info);
    free(info);
    /* evaluate works and reports recovery on a planted store */
    CHECK(run("evaluate --sae A --acts s.h5 --layer 0") == 0, "evaluate");
    char *out = slurp("out.txt");
    CHECK(strstr(out, "\"recovered\":") && strstr(out, "\"fvu\":") && strstr(out, "\"split\":\"val\""), "evaluate JSON: %s", out);
    free(out);
}

/* The object at a path of keys in g_dir/file (a JSON document), or NULL; *root must be freed. */
static const cJSON *json_at(const char *file, cJSON **root, const char *k1, const char *k2) {
    char *t = slurp(file);
    *root = cJSON_Parse(t);
    free(t);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(*root, k1);
    return k2 ? cJSON_GetObjectItemCaseSensitive(o, k2) : o;
}

static double json_at_num(const char *file, const char *k1, const char *k2) {
    cJSON *root;
    const cJSON *v = json_at(file, &root, k1, k2);
    const double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(root);
    return x;
}

/* Every line of g_dir/file parses as JSON and none holds a -1 placeholder; returns the lines. */
static int jsonl_clean(const char *file) {
    char *t = slurp(file);
    int lines = 0, ok = 1;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *j = cJSON_Parse(line);
        ok &= j != NULL && strstr(line, ":-1,") == NULL && strstr(line, ":-1}") == NULL;
        cJSON_Delete(j);
    }
    free(t);
    CHECK(ok && lines > 0, "%s: every line is JSON without -1 placeholders", file);
    return lines;
}

/* Issue 14: the run length and warmup come from the run; repeated data, a warmup as long as the run and a
 * majority of dead latents are warned about (stderr and musae.json "warnings"); no -1 placeholders. */
static void test_defaults(void) {
    /* s.h5: 120 clips of 100 rows, 112 of them in the training split (11200 rows) */
    CHECK(run("train --acts s.h5 --layer 0 --k 8 --expansion 4 --batch 256 --seed 3 -o D") == 0, "default run length");
    err_has("10 passes over the 11200 training rows (default)");
    const double steps = ckpt_number("D", "steps"), warm = json_at_num("D/musae.json", "recipe", "warmup_steps");
    CHECK(ckpt_number("D", "tokens_seen") == 112000 && steps == 438, "10 passes: 112000 tokens, 438 steps (%g)", steps);
    CHECK(warm == 21, "warmup min(1000, 5%% of 438 steps) = 21 (got %g)", warm);
    CHECK(json_at_num("D/musae.json", "data", "epochs") == 10 && json_at_num("D/musae.json", "data", "train_rows") == 11200,
          "musae.json data.epochs 10, train_rows 11200");
    cJSON *root;
    const cJSON *w = json_at("D/musae.json", &root, "warnings", NULL);
    CHECK(cJSON_IsArray(w) && cJSON_GetArraySize(w) == 0, "a default run has no warnings");
    cJSON_Delete(root);
    char *e = slurp("err.txt");
    CHECK(!strstr(e, "warn"), "a default run warns about nothing:\n%s", e);
    free(e);
    jsonl_clean("D/metrics.jsonl");

    /* small.h5 (2000 rows) at the default batch of 4096: 10 passes are a handful of steps */
    CHECK(run("train --acts small.h5 --layer 0 --k 4 --expansion 2 -o F") == 0, "a default run on a tiny store");
    err_has("steps of 4096 tokens: too few to train an SAE");
    CHECK(ckpt_number("F", "steps") < 10, "a handful of steps (%g)", ckpt_number("F", "steps"));
    CHECK(run("train --acts s.h5 --layer 0 --k 8 --expansion 4 --batch 256 --epochs 2.5 --warmup 5 -o E2") == 0, "--epochs");
    CHECK(ckpt_number("E2", "tokens_seen") == 28000 && json_at_num("E2/musae.json", "recipe", "warmup_steps") == 5,
          "--epochs 2.5: 28000 tokens; --warmup 5 kept");
    CHECK(run("train --acts s.h5 --layer 0 --k 8 --expansion 4 --tokens 1000 --epochs 2 -o X") == 1,
          "--tokens and --epochs together are refused");
    err_has("--tokens and --epochs");

    CHECK(run("train --acts s.h5 --layer 0 --k 8 --expansion 4 --batch 256 --tokens 200000 --warmup 1000 -o R") == 0,
          "a long run on a small store");
    err_has("passes 17.9 times over its 11200 training rows");
    err_has("--warmup 1000 is not shorter than the run's 782 steps");
    w = json_at("R/musae.json", &root, "warnings", NULL);
    CHECK(cJSON_GetArraySize(w) == 2 && strstr(cJSON_GetArrayItem(w, 0)->valuestring, "passes 17.9 times"),
          "musae.json keeps both warnings");
    cJSON_Delete(root);

    CHECK(run("train --acts s.h5 --layer 0 --k 8 --expansion 4 --batch 256 --lr 10 -o L") == 0, "--lr 10 finishes");
    err_has("of the latents are dead at the end");
    const double dead = json_at_num("L/musae.json", "dead_latents", "fraction");
    CHECK(dead > 0.5, "--lr 10 kills most latents (%g), recorded in musae.json dead_latents", dead);
    w = json_at("L/musae.json", &root, "warnings", NULL);
    CHECK(cJSON_GetArraySize(w) == 1 && strstr(cJSON_GetArrayItem(w, 0)->valuestring, "dead at the end"),
          "musae.json warnings name the dead latents");
    cJSON_Delete(root);

    /* a store without planted directions: no recovered field anywhere (not -1) */
    CHECK(run("train --acts plain.h5 --layer 0 --k 8 --expansion 4 --batch 256 --tokens 20000 -o N") == 0, "no truth");
    CHECK(jsonl_clean("N/metrics.jsonl") >= 2, "metrics lines and the eval line");
    char *m = slurp("N/metrics.jsonl"), *j = slurp("N/musae.json");
    CHECK(strstr(m, "\"eval\":") && !strstr(m, "recovered") && !strstr(j, "recovered"),
          "no recovered field without planted directions");
    free(m), free(j);
    CHECK(run("evaluate --sae N --acts plain.h5 --layer 0") == 0, "evaluate");
    m = slurp("out.txt");
    cJSON *ev = cJSON_Parse(m);
    CHECK(ev && !strstr(m, "recovered") && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(ev, "fvu")),
          "evaluate prints JSON without recovered: %s", m);
    cJSON_Delete(ev);
    free(m);
}

int main(void) {
    /* ctest runs tests side by side on 2 cores: idle OpenMP threads must yield, not spin */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    scratch_open("test_sae_train");
    if (sh("mkdir -p nocfg && echo '{\"k\": 4}' > nocfg/cfg.json") ||
        run("synth_acts -o s.h5 --d 32 --concepts 48 --k-true 3 --rows 12000 --clip-frames 100 --layers 0,1") ||
        run("synth_acts -o small.h5 --d 16 --concepts 8 --k-true 2 --rows 2000") ||
        run("synth_acts -o nan.h5 --d 32 --concepts 8 --k-true 2 --rows 4000 --nan-rows 3") ||
        run("synth_acts -o other.h5 --d 32 --concepts 8 --k-true 2 --rows 4000 --model other/model") ||
        run("synth_acts -o plain.h5 --d 32 --concepts 48 --k-true 3 --rows 6000 --no-truth") ||
        sh("head -c 200000 s.h5 > cut.h5"))
        setup_failed("cannot make the synthetic stores");
    test_resume();
    test_resume_refusals();
    test_grid();
    test_batch_topk();
    test_bad_input();
    test_defaults();
    scratch_close();
    TEST_END();
}
