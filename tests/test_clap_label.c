/* The CLAP labeler and CLAP scores (eval/clap_label.h, eval/clap_score.h), driven through their entry functions
 * clap_label_main / clap_score_main (host/cli/clap_main.h: the verbs `label --labeler clap` and `score --clap`
 * dispatch to them) on a store whose 12 clips are cut from 6
 * WAV sources (16 kHz, the tiny CLAP's rate), an SAE whose latent i < 4 fires exactly in the clips c with c % 4 == i,
 * musae analyze, the tiny random-weight CLAP (tests/fixtures/tiny-clap) and a custom vocabulary file.
 * Independent recomputation: each clip's samples are also written to their own WAV, `musae clap` embeds those and
 * the prompts, and plain loops here recompute every tag's sim_top / sim_random / contrast, the ranking, the label,
 * and the scores (alignment, contrast, AUROC over decile vs random clips) from those embeddings. The cache: a rerun
 * embeds nothing and writes the same file; a source whose mtime changed is embedded again; another model's or a
 * broken cache is replaced; a missing source stops the run. Built-in vocabulary sizes
 * (87 / 40 / 56). Refusals, each exit 1 with its message: missing CLAP folder, a store not the analysed one, an empty
 * vocabulary, labels of another SAE. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cli.h"
#include "fixture_io.h"
#include "eval/clap_vocab.h"
#include "eval/features_io.h"
#include "host/cli/clap_main.h"
#include "host/core/log.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"

enum { D = 8, M = 8, K = 2, LAYER = 3, FRAMES = 100, RATE = 16000, FILES = 6, CLIPS = 12, SPAN = 2 * RATE };
static const char *k_tags[] = {"rock", "piano", "birdsong", "deep bass"}; /* tags.txt, deduplicated, in order */
enum { T = 4 };

/* Sample i of source file s: a tone or a chirp, different per file and half. */
static float sample(int s, int64_t i) {
    const double t = (double)i / RATE, f0 = 150.0 * (s + 1);
    const double hz = s % 2 ? f0 + 400.0 * t : f0 * (1 + (i >= SPAN));
    return (float)(0.4 * sin(6.283185307179586 * hz * t) + 0.1 * sin(6.283185307179586 * 3.1 * hz * t));
}

static void write_wav(const char *path, int s, int64_t i0, int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = sample(s, i0 + i);
    fx_write_wav(path, x, n, RATE, 1, MUSAE_AUDIO_PCM16);
    free(x);
}

static void make_store(const char *path, const char *prefix) {
    musae_store_writer *w = fx_store_create(path, "test/model", D, LAYER);
    float x[FRAMES * D];
    for (int c = 0; c < CLIPS; c++) {
        for (int r = 0; r < FRAMES; r++)
            for (int j = 0; j < D; j++) x[r * D + j] = j == c % 4 ? 2.0f + 0.1f * (float)((r * 7 + c) % 10) : 0.0f;
        char name[128];
        snprintf(name, sizeof name, "%saudio/s%d.wav#t=%d,%d", prefix, c / 2, 2 * (c % 2), 2 * (c % 2) + 2);
        const float *acts[1] = {x};
        musae_store_add_clip(w, name, FRAMES, acts);
    }
    musae_store_close_writer(w, 1);
}

static void make_fixture(void) {
    mkdir(at("audio"), 0755);
    mkdir(at("clips"), 0755);
    for (int s = 0; s < FILES; s++) {
        char p[64];
        snprintf(p, sizeof p, "audio/s%d.wav", s);
        write_wav(at(p), s, 0, 2 * SPAN);
    }
    for (int c = 0; c < CLIPS; c++) { /* store clip c = file c/2, half c%2 */
        char p[64];
        snprintf(p, sizeof p, "clips/c%02d.wav", c);
        write_wav(at(p), c / 2, (int64_t)(c % 2) * SPAN, SPAN);
    }
    make_store(at("s.h5"), "");
    make_store(at("other.h5"), "x"); /* the same rows, other names: not the analysed store */
    /* latent i < 4 reads dimension i with bias -1: it fires exactly where x_i = 2..2.9; latents 4..7 never fire */
    float W_enc[M * D] = {0}, b_enc[M], W_dec[M * D], b_dec[D] = {0};
    for (int i = 0; i < M; i++) {
        b_enc[i] = -1;
        if (i < 4) W_enc[i * D + i] = 1;
        for (int j = 0; j < D; j++) W_dec[i * D + j] = (float)((i * 5 + j * 3) % 7) - 3.0f;
    }
    fx_write_sae(at("sae"), M, D, K, LAYER, W_enc, b_enc, W_dec, b_dec, "\"selection\": \"topk\"");
    CHECK(sh("printf '# a test vocabulary\\nrock\\npiano\\n\\nbirdsong\\n  deep bass  \\nrock\\n' > tags.txt && "
             "printf '# nothing\\n\\n' > empty.txt") == 0,
          "cannot write the vocabularies");
}

/* Runs fn("<verb> <args>") in a child in g_dir (stdout to out.txt, stderr to err.txt, log level info), as the
 * musae binary would after dispatch; its exit status. Arguments are split at spaces. */
static int call(int (*fn)(int, char **), const char *verb, const char *args) {
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) {
        if (chdir(g_dir) || !freopen("out.txt", "w", stdout) || !freopen("err.txt", "w", stderr)) _exit(99);
        musae_log_set_level(MUSAE_LOG_INFO);
        char *buf = strdup(args), *argv[64] = {(char *)verb};
        int argc = 1;
        for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
        argv[argc] = NULL;
        exit(fn(argc, argv));
    }
    int st;
    waitpid(pid, &st, 0);
    return exit_status(st);
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static double num(const cJSON *o, const char *k) { return cJSON_IsNumber(get(o, k)) ? get(o, k)->valuedouble : NAN; }

/* The lines of a JSONL file as an array. */
static cJSON *read_lines(const char *rel) {
    char *txt = slurp(rel);
    cJSON *arr = cJSON_CreateArray();
    for (char *l = strtok(txt, "\n"); l; l = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(l);
        CHECK(j != NULL, "%s: a line is not JSON: %s", rel, l);
        if (j) cJSON_AddItemToArray(arr, j);
    }
    free(txt);
    return arr;
}

static const cJSON *line_of(const cJSON *lines, const char *labeler, int feature) {
    const cJSON *l;
    cJSON_ArrayForEach(l, lines) if (!strcmp(get(l, "labeler")->valuestring, labeler) &&
                                     num(l, "feature") == feature) return l;
    return NULL;
}

/* embeddings from `musae clap`: text rows 0..T-1 are the prompts, T..2T-1 the bare tags */
static float g_audio[CLIPS][64], g_text[2 * T][64];
static int64_t g_D;

static double cosine(const float *a, const float *b) {
    double s = 0;
    for (int64_t k = 0; k < g_D; k++) s += (double)a[k] * b[k];
    return s;
}

static int valid(const int32_t *v, int n, int *out) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0) out[k++] = v[i];
    return k;
}

/* mean cosine of text t to the clips (rows of /clips, mapped to store clips) */
static double mean_sim(const musae_features *f, const float *t, const int *clips, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += cosine(t, g_audio[f->clip_store_index[clips[i]]]);
    return n ? s / n : NAN;
}

static void check_labels(const musae_features *f, const cJSON *lines) {
    int n_clap = 0, n_checked = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, lines) n_clap += !strcmp(get(l, "labeler")->valuestring, "clap");
    int n_kept = 0;
    for (int m = 0; m < M; m++) n_kept += f->keep[m] != 0;
    CHECK(n_kept == 4 && n_clap == 4, "%d kept features, %d clap lines (want 4 and 4)", n_kept, n_clap);
    for (int m = 0; m < M; m++) {
        if (!f->keep[m]) continue;
        const cJSON *ln = line_of(lines, "clap", m);
        CHECK(ln != NULL, "no clap line for kept feature %d", m);
        if (!ln) continue;
        int top[64], rnd[FEATURES_RANDOM];
        const int nt = valid(f->top_clip + m * f->N, (int)f->N, top), nr = valid(f->random_clip + m * FEATURES_RANDOM,
                                                                                   FEATURES_RANDOM, rnd);
        CHECK(nt == 3 && nr == 9, "feature %d: %d top and %d random clips (want 3 and 9)", m, nt, nr);
        double st[T], sr[T], con[T];
        int order[T];
        for (int t = 0; t < T; t++) {
            st[t] = mean_sim(f, g_text[t], top, nt), sr[t] = mean_sim(f, g_text[t], rnd, nr), con[t] = st[t] - sr[t];
            order[t] = t;
        }
        for (int a = 0; a < T; a++) /* by contrast, descending, ties to the vocabulary order */
            for (int b = a + 1; b < T; b++)
                if (con[order[b]] > con[order[a]] || (con[order[b]] == con[order[a]] && order[b] < order[a])) {
                    const int x = order[a];
                    order[a] = order[b], order[b] = x;
                }
        const int ok = con[order[0]] > 0;
        const cJSON *ev = get(ln, "evidence");
        CHECK(cJSON_GetArraySize(ev) == T, "feature %d: %d evidence items, want %d", m, cJSON_GetArraySize(ev), T);
        CHECK(!strcmp(get(ln, "status")->valuestring, ok ? "ok" : "no_signal"), "feature %d: status %s", m,
              get(ln, "status")->valuestring);
        if (ok) {
            CHECK(cJSON_IsString(get(ln, "label")) && !strcmp(get(ln, "label")->valuestring, k_tags[order[0]]),
                  "feature %d: label is not '%s'", m, k_tags[order[0]]);
            CHECK(fabs(num(ln, "score") - con[order[0]]) < 1e-5, "feature %d: score %.9g, recomputed %.9g", m,
                  num(ln, "score"), con[order[0]]);
        }
        for (int i = 0; i < T && i < cJSON_GetArraySize(ev); i++) {
            const cJSON *e = cJSON_GetArrayItem(ev, i);
            const int t = order[i];
            CHECK(!strcmp(get(e, "tag")->valuestring, k_tags[t]) && !strcmp(get(e, "vocab")->valuestring, "tags.txt"),
                  "feature %d rank %d: tag %s (%s), want %s", m, i, get(e, "tag")->valuestring,
                  get(e, "vocab")->valuestring, k_tags[t]);
            CHECK(fabs(num(e, "sim_top") - st[t]) < 1e-5 && fabs(num(e, "sim_random") - sr[t]) < 1e-5 &&
                      fabs(num(e, "contrast") - con[t]) < 1e-5 && num(e, "n_top") == nt && num(e, "n_random") == nr,
                  "feature %d tag %s: %.9g %.9g %.9g, recomputed %.9g %.9g %.9g", m, k_tags[t], num(e, "sim_top"),
                  num(e, "sim_random"), num(e, "contrast"), st[t], sr[t], con[t]);
            n_checked++;
        }
        const cJSON *src = get(ln, "source");
        CHECK(cJSON_IsString(get(src, "clap")) && !strncmp(get(src, "clap")->valuestring, "tiny-clap:", 10) &&
                  strlen(get(src, "clap")->valuestring) == 26,
              "feature %d: source.clap is not 'tiny-clap:<16 hex>'", m);
    }
    CHECK(n_checked == 4 * T, "%d tag scores checked, want %d", n_checked, 4 * T);
}

/* scores of a line whose text embedding is g_text[ti] */
static void check_scores(const musae_features *f, const cJSON *ln, int ti, const char *who) {
    const int m = (int)num(ln, "feature");
    const cJSON *sc = get(ln, "scores");
    CHECK(cJSON_IsObject(sc), "%s line of feature %d has no scores", who, m);
    if (!cJSON_IsObject(sc)) return;
    int top[64], q[50], rnd[FEATURES_RANDOM];
    const int nt = valid(f->top_clip + m * f->N, (int)f->N, top);
    const int nq = valid(f->quantile_clip + m * 50, 50, q),
              nr = valid(f->random_clip + m * FEATURES_RANDOM, FEATURES_RANDOM, rnd);
    const double align = mean_sim(f, g_text[ti], top, nt), contrast = align - mean_sim(f, g_text[ti], rnd, nr);
    double wins = 0;
    for (int i = 0; i < nq; i++)
        for (int k = 0; k < nr; k++) {
            const double p = cosine(g_text[ti], g_audio[f->clip_store_index[q[i]]]);
            const double n = cosine(g_text[ti], g_audio[f->clip_store_index[rnd[k]]]);
            wins += p > n ? 1 : p == n ? 0.5 : 0;
        }
    const double auroc = wins / (nq * nr);
    CHECK(nq > 0 && nr > 0, "feature %d: %d decile and %d random clips", m, nq, nr);
    CHECK(fabs(num(sc, "clap_alignment") - align) < 1e-5 && fabs(num(sc, "clap_contrast") - contrast) < 1e-5,
          "%s feature %d: alignment %.9g contrast %.9g, recomputed %.9g %.9g", who, m, num(sc, "clap_alignment"),
          num(sc, "clap_contrast"), align, contrast);
    CHECK(fabs(num(sc, "clap_detection_auroc") - auroc) < 1e-12, "%s feature %d: AUROC %.9g, recomputed %.9g", who, m,
          num(sc, "clap_detection_auroc"), auroc);
    CHECK(num(sc, "clap_n_exemplars") == nt && num(sc, "clap_n_positive") == nq && num(sc, "clap_n_negative") == nr,
          "%s feature %d: clip counts", who, m);
    CHECK(cJSON_IsString(get(get(sc, "scorer"), "clap")), "%s feature %d: no scorer.clap", who, m);
}

static void check_builtin(void) {
    static const size_t want[CLAP_VOCAB_MTG_LISTS] = {87, 40, 56};
    static const char *names[CLAP_VOCAB_MTG_LISTS] = {"mtg-jamendo-genre", "mtg-jamendo-instrument",
                                                      "mtg-jamendo-moodtheme"};
    for (int l = 0; l < CLAP_VOCAB_MTG_LISTS; l++)
        CHECK(clap_vocab_mtg_jamendo[l].n == want[l] && !strcmp(clap_vocab_mtg_jamendo[l].name, names[l]),
              "built-in list %d: %s with %zu tags, want %s with %zu", l, clap_vocab_mtg_jamendo[l].name,
              clap_vocab_mtg_jamendo[l].n, names[l], want[l]);
    clap_vocab v;
    char err[512];
    CHECK(clap_vocab_load("mtg-jamendo", &v, err, sizeof err) == 0 && v.n == 183, "mtg-jamendo: %lld tags, want 183",
          (long long)v.n);
    int found = 0;
    for (int64_t i = 0; i < v.n; i++)
        found += (!strcmp(v.tag[i], "rock") && !strcmp(v.vocab[i], "mtg-jamendo-genre")) +
                 (!strcmp(v.tag[i], "piano") && !strcmp(v.vocab[i], "mtg-jamendo-instrument")) +
                 (!strcmp(v.tag[i], "happy") && !strcmp(v.vocab[i], "mtg-jamendo-moodtheme"));
    CHECK(found == 3, "rock / piano / happy not in their lists");
    clap_vocab_free(&v);
    CHECK(clap_vocab_load("mtg-jamendo-instrument", &v, err, sizeof err) == 0 && v.n == 40, "instrument list: %lld",
          (long long)v.n);
    clap_vocab_free(&v);
}

static void load_embeddings(void) {
    char cmd[4096] = "clap --model " MUSAE_FIXTURES "/tiny-clap -o emb.safetensors --audio";
    for (int c = 0; c < CLIPS; c++) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " clips/c%02d.wav", c);
    for (int t = 0; t < T; t++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " --text 'This is a sound of %s.'", k_tags[t]);
    for (int t = 0; t < T; t++) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " --text '%s'", k_tags[t]);
    if (run("%s", cmd)) setup_failed("musae clap on the clip files");
    musae_st st;
    char err[512];
    if (musae_st_open(&st, at("emb.safetensors"), err, sizeof err)) setup_failed(err);
    int ra, rt;
    int64_t sa[8], s_t[8];
    float *a = musae_st_load_any(&st, "audio_embeds", MUSAE_F32, &ra, sa);
    float *t = musae_st_load_any(&st, "text_embeds", MUSAE_F32, &rt, s_t);
    CHECK(a && t && sa[0] == CLIPS && s_t[0] == 2 * T && sa[1] <= 64, "emb.safetensors: unexpected shapes");
    g_D = sa[1];
    for (int c = 0; c < CLIPS; c++) memcpy(g_audio[c], a + c * g_D, sizeof(float) * (size_t)g_D);
    for (int i = 0; i < 2 * T; i++) memcpy(g_text[i], t + i * g_D, sizeof(float) * (size_t)g_D);
    free(a), free(t);
    musae_st_close(&st);
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    scratch_open("test_clap_label");
    check_builtin();
    make_fixture();
    if (run("analyze --sae sae --acts s.h5 --split all --top 5 --max-rate 0.5 -o f.h5")) setup_failed("musae analyze");
    musae_features f;
    char err[600];
    if (features_read(at("f.h5"), &f, err, sizeof err)) setup_failed(err);
    load_embeddings();
    const char *tiny = MUSAE_FIXTURES "/tiny-clap";
    char args[2048];

    /* label, then the same again: the second run embeds nothing and writes the same file */
    snprintf(args, sizeof args, "--labeler clap --clap %s --features f.h5 --vocab tags.txt --tags 4 -o labels.jsonl",
             tiny);
    CHECK(call(clap_label_main, "label", args) == 0, "label --labeler clap failed");
    err_has("clap: 12 clip(s): 0 from the cache, 12 embedded");
    cJSON *lines = read_lines("labels.jsonl");
    check_labels(&f, lines);
    CHECK(sh("cp labels.jsonl labels1.jsonl") == 0, "cp");
    CHECK(call(clap_label_main, "label", args) == 0, "label rerun failed");
    err_has("clap: 12 clip(s): 12 from the cache, 0 embedded");
    CHECK(sh("cmp -s labels.jsonl labels1.jsonl") == 0, "the rerun from the cache wrote another file");
    /* a source touched since: its two clips are embedded again, the others come from the cache */
    CHECK(sh("touch -d '2001-02-03 04:05:06' audio/s2.wav") == 0, "touch");
    CHECK(call(clap_label_main, "label", args) == 0, "label after touch failed");
    err_has("clap: 12 clip(s): 10 from the cache, 2 embedded");
    /* (a batch of 2 instead of 8 may move the last bits of an embedding: the file is checked, not compared) */
    cJSON_Delete(lines);
    lines = read_lines("labels.jsonl");
    check_labels(&f, lines);

    /* scores for any labeler: the clap lines plus a hand-made dsp line and a no_signal line */
    char sae[4200];
    snprintf(sae, sizeof sae, "%s:%.16s", f.sae, f.sae_sha256);
    int first_kept = -1;
    for (int m = 0; m < M && first_kept < 0; m++)
        if (f.keep[m]) first_kept = m;
    cJSON *dsp = cJSON_CreateObject();
    cJSON_AddNumberToObject(dsp, "feature", first_kept);
    cJSON_AddStringToObject(dsp, "labeler", "dsp");
    cJSON_AddStringToObject(dsp, "label", "deep bass");
    cJSON_AddStringToObject(dsp, "status", "ok");
    cJSON_AddObjectToObject(cJSON_AddObjectToObject(dsp, "scores"), "scorer");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(dsp, "source"), "sae", sae);
    cJSON *quiet = cJSON_Parse("{\"feature\": 5, \"labeler\": \"dsp\", \"label\": null, \"status\": \"no_signal\"}");
    char *s1 = cJSON_PrintUnformatted(dsp), *s2 = cJSON_PrintUnformatted(quiet);
    FILE *fp = fopen(at("labels.jsonl"), "a");
    CHECK(fp && fprintf(fp, "%s\n%s\n", s1, s2) > 0 && fclose(fp) == 0, "cannot append to labels.jsonl");
    free(s1), free(s2);
    snprintf(args, sizeof args, "--clap %s --features f.h5 --labels labels.jsonl -o scored.jsonl", tiny);
    CHECK(call(clap_score_main, "score", args) == 0, "score --clap failed");
    err_has("from the cache, 0 embedded");
    cJSON *scored = read_lines("scored.jsonl");
    CHECK(cJSON_GetArraySize(scored) == 6, "scored.jsonl has %d lines, want 6", cJSON_GetArraySize(scored));
    int n_scored = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, scored) {
        const char *who = get(l, "labeler")->valuestring;
        if (!strcmp(get(l, "status")->valuestring, "ok")) {
            const char *lab = get(l, "label")->valuestring;
            int ti = -1;
            for (int t = 0; t < T; t++)
                if (!strcmp(lab, k_tags[t])) ti = T + t;
            CHECK(ti >= 0, "label '%s' is not a tag", lab);
            if (ti >= 0) check_scores(&f, l, ti, who), n_scored++;
            const cJSON *was = line_of(lines, "clap", (int)num(l, "feature"));
            if (!strcmp(who, "clap") && was)
                CHECK(cJSON_Compare(get(l, "evidence"), get(was, "evidence"), 1), "score changed a line's evidence");
        } else CHECK(get(l, "scores") == NULL, "a %s line got scores", get(l, "status")->valuestring);
    }
    CHECK(n_scored >= 2, "only %d lines scored", n_scored);

    /* --help, and the refusals: exit 1 and one line saying why */
    CHECK(call(clap_label_main, "label", "--help") == 0, "label --help");
    char *o = slurp("out.txt");
    CHECK(strstr(o, "--vocab") && strstr(o, "mtg-jamendo"), "label --help does not list --vocab");
    free(o);
    CHECK(call(clap_score_main, "score", "--help") == 0, "score --help");
    o = slurp("out.txt");
    CHECK(strstr(o, "clap_detection_auroc") != NULL, "score --help does not name its scores");
    free(o);
    CHECK(call(clap_label_main, "label", "--clap nowhere --features f.h5 --vocab tags.txt -o x.jsonl") == 1,
          "a missing CLAP folder was accepted");
    err_has("--clap nowhere: No such file or directory");
    snprintf(args, sizeof args, "--clap %s --features f.h5 --vocab tags.txt --acts other.h5 -o x.jsonl", tiny);
    CHECK(call(clap_label_main, "label", args) == 1, "a store that is not the analysed one was accepted");
    err_has("f.h5: clip 0 'audio/s0.wav#t=0,2' is store clip 0, but other.h5 names that clip differently");
    snprintf(args, sizeof args, "--clap %s --features f.h5 --vocab empty.txt -o x.jsonl", tiny);
    CHECK(call(clap_label_main, "label", args) == 1, "an empty vocabulary was accepted");
    err_has("--vocab empty.txt: no tags");
    snprintf(args, sizeof args, "--clap %s --features f.h5 --vocab nowhere.txt -o x.jsonl", tiny);
    CHECK(call(clap_label_main, "label", args) == 1, "a missing vocabulary was accepted");
    err_has("--vocab nowhere.txt: No such file or directory");
    snprintf(args, sizeof args, "--labeler dsp --clap %s --features f.h5 --vocab tags.txt -o x.jsonl", tiny);
    CHECK(call(clap_label_main, "label", args) == 1, "--labeler dsp was taken by the clap labeler");
    err_has("see musae label --help");
    CHECK(sh("sed 's/\"sae\":\"[^\"]*\"/\"sae\":\"elsewhere:0123456789abcdef\"/' labels.jsonl > alien.jsonl") == 0,
          "sed");
    snprintf(args, sizeof args, "--clap %s --features f.h5 --labels alien.jsonl", tiny);
    CHECK(call(clap_score_main, "score", args) == 1, "labels of another SAE were scored");
    err_has("alien.jsonl: line 1: labels of SAE elsewhere:0123456789abcdef");
    CHECK(call(clap_score_main, "score", "--features f.h5 --labels labels.jsonl") == 1, "score without --clap");
    err_has("see musae score --help");
    CHECK(access(at("x.jsonl"), F_OK) != 0, "a refused run left x.jsonl");

    /* the cache: one file beside FEATURES.h5; another model's cache, or a broken one, is replaced, not used */
    CHECK(sh("test $(ls f.h5.clap-*.safetensors | wc -l) -eq 1 && cp f.h5.clap-*.safetensors c.safetensors && "
             "cp -r %s clap2 && printf ' ' >> clap2/config.json", tiny) == 0,
          "no default cache file beside f.h5, or cannot copy the model");
    CHECK(call(clap_label_main, "label",
               "--labeler clap --clap clap2 --features f.h5 --vocab tags.txt --cache c.safetensors "
               "-o y.jsonl") == 0,
          "label with another model's cache failed");
    err_has("c.safetensors: embeddings of another CLAP model; replaced");
    err_has("clap: 12 clip(s): 0 from the cache, 12 embedded");
    CHECK(sh("head -c 100 f.h5 > c.safetensors") == 0, "cannot break the cache");
    snprintf(args, sizeof args, "--clap %s --features f.h5 --vocab tags.txt --cache c.safetensors -o y.jsonl", tiny);
    CHECK(call(clap_label_main, "label", args) == 0, "label with a broken cache failed");
    err_has("c.safetensors: unreadable cache, replaced");
    err_has("clap: 12 clip(s): 0 from the cache, 12 embedded");
    /* a source that went away stops the run, naming the clip */
    CHECK(sh("mv audio/s5.wav s5.wav") == 0, "mv");
    snprintf(args, sizeof args, "--clap %s --features f.h5 --vocab tags.txt -o y.jsonl", tiny);
    CHECK(call(clap_label_main, "label", args) == 1, "a missing source was not noticed");
    err_has("audio/s5.wav: source of clip 'audio/s5.wav#t=");
    CHECK(sh("mv s5.wav audio/s5.wav") == 0, "mv back");

    /* the built-in vocabulary end to end */
    snprintf(args, sizeof args, "--labeler clap --clap %s --features f.h5 --vocab mtg-jamendo-instrument -o inst.jsonl",
             tiny);
    CHECK(call(clap_label_main, "label", args) == 0, "label with mtg-jamendo-instrument failed");
    cJSON *inst = read_lines("inst.jsonl");
    const cJSON *e0 = cJSON_GetArrayItem(get(cJSON_GetArrayItem(inst, 0), "evidence"), 0);
    CHECK(cJSON_GetArraySize(inst) == 4 && e0 && !strcmp(get(e0, "vocab")->valuestring, "mtg-jamendo-instrument"),
          "inst.jsonl: 4 lines with mtg-jamendo-instrument evidence expected");
    cJSON_Delete(inst);

    cJSON_Delete(lines), cJSON_Delete(scored), cJSON_Delete(dsp), cJSON_Delete(quiet);
    features_free(&f);
    scratch_close();
    TEST_END();
}
