/* musae clap — CLAP audio and text embeddings (and their logits) from an HF ClapModel folder, into one
 * safetensors file (docs/CLAP.md). Audio is read through host/io/audio (any format libsndfile reads, downmixed,
 * libsoxr HQ to the model's rate); only the first max_length_s (+ a resampler margin) of a file is decoded. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/capture.h"
#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "model/clap.h"

#include <cjson/cJSON.h>

const char verb_clap_summary[] = "CLAP audio and text embeddings + logits (HF ClapModel folder) -> safetensors";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae clap --model DIR [--audio PATH [PATH ...]] [--text T ...] -o EMB.safetensors\n"
            "                  [--batch N] [--device D]\n\n"
            "Embeds audio clips and texts with a CLAP model exactly as HF transformers' ClapModel does\n"
            "(laion/larger_clap_music, larger_clap_general, larger_clap_music_and_speech, clap-htsat-unfused)\n"
            "and writes f32 tensors audio_embeds [N, D], text_embeds [M, D]\n"
            "(unit length) and logits_per_text [M, N] (when both are given), in the order given.\n\n"
            "  --model DIR      the HF folder: config.json, model.safetensors (or pytorch_model.bin, read without\n"
            "                   running its pickle), preprocessor_config.json, vocab.json, merges.txt\n"
            "  --audio PATH     an audio file (WAV, FLAC, OGG, MP3, ...: channels averaged, resampled with\n"
            "                   libsoxr HQ) or a folder (its audio files, recursively, sorted by path); more\n"
            "                   paths may follow one --audio, and --audio may repeat. A clip longer than the\n"
            "                   model's 10 s gives its FIRST 10 s (HF crops at random); a shorter one is\n"
            "                   repeated and zero-padded to 10 s as HF does\n"
            "  --text T         a text (repeatable); at most 77 tokens are used, as in CLAP's training\n"
            "  -o FILE          output .safetensors\n"
            "  --batch N        clips per forward pass (default 8; memory grows with it)\n"
            CLI_DEVICE_ONLY_USAGE);
}

typedef struct {
    char **v;
    int64_t n, cap;
} str_list;

static void push(str_list *l, char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = musae_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

/* An audio argument as it was typed: its position in the original argv (getopt permutes operands to the end,
 * so the order given is recovered from where each string sat). */
typedef struct {
    const char *path;
    int pos;
} audio_arg;

static int by_pos(const void *a, const void *b) { return ((const audio_arg *)a)->pos - ((const audio_arg *)b)->pos; }

/* Index of the original argv element that holds the string s (an element, or inside "--audio=X"). */
static int orig_pos(char *const *orig, int argc, const char *s) {
    for (int i = 0; i < argc; i++)
        if (s >= orig[i] && s <= orig[i] + strlen(orig[i])) return i;
    return argc;
}

static float *read_clip(const char *path, const musae_clap_fe *fe, int64_t *n) {
    char err[1024];
    /* the first max_length_s, plus half a second so the resampler's tail does not touch the kept samples */
    const double secs = (double)fe->max_samples / fe->sampling_rate + 0.5;
    float *x = musae_audio_load(path, fe->sampling_rate, 0.0, secs, n, err, sizeof err);
    if (!x) musae_fail("%s", err);
    if (*n == 0) musae_fail("%s: no samples", path);
    return x;
}

int verb_clap(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    char **orig = musae_xmalloc((size_t)argc * sizeof *orig);
    memcpy(orig, argv, (size_t)argc * sizeof *orig);
    const char *model = NULL, *out = NULL;
    int batch = 8, first_audio_pos = -1;
    audio_arg *audio_args = musae_xmalloc((size_t)argc * sizeof *audio_args);
    int n_audio_args = 0;
    str_list texts = {0};
    cli_device_flags dflags = {0};
    enum { OPT_MODEL = CLI_OPT_FIRST, OPT_AUDIO, OPT_TEXT, OPT_BATCH };
    static const struct option opts[] = {
        {"model", required_argument, NULL, OPT_MODEL}, {"output", required_argument, NULL, 'o'},
        {"audio", required_argument, NULL, OPT_AUDIO}, {"text", required_argument, NULL, OPT_TEXT},
        {"batch", required_argument, NULL, OPT_BATCH}, CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_MODEL: model = optarg; break;
        case 'o': out = optarg; break;
        case OPT_AUDIO: {
            const int pos = orig_pos(orig, argc, optarg);
            audio_args[n_audio_args++] = (audio_arg){optarg, pos};
            if (first_audio_pos < 0 || pos < first_audio_pos) first_audio_pos = pos;
            break;
        }
        case OPT_TEXT: push(&texts, optarg); break;
        case OPT_BATCH: batch = (int)cli_int("--batch", optarg, 1, 4096); break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    for (int i = optind; i < argc; i++) {
        const int pos = orig_pos(orig, argc, argv[i]);
        if (first_audio_pos < 0 || pos < first_audio_pos)
            cli_usage_fail(argv[0], "'%s' is not an option's value (audio paths follow --audio)", argv[i]);
        audio_args[n_audio_args++] = (audio_arg){argv[i], pos};
    }
    if (!model || !out) cli_usage_fail(argv[0], "--model and -o are required");
    if (!n_audio_args && !texts.n) cli_usage_fail(argv[0], "nothing to embed: give --audio PATH and/or --text T");
    qsort(audio_args, (size_t)n_audio_args, sizeof *audio_args, by_pos);

    /* audio paths: files as given, folders expanded to their sorted audio files */
    str_list paths = {0};
    char err[1024];
    for (int i = 0; i < n_audio_args; i++) {
        struct stat sb;
        if (stat(audio_args[i].path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            capture_dataset ds;
            if (capture_dataset_load(audio_args[i].path, &ds, err, sizeof err)) musae_fail("%s", err);
            for (int64_t k = 0; k < ds.n_files; k++) push(&paths, musae_xstrdup(ds.files[k].path));
            capture_dataset_free(&ds);
        } else {
            push(&paths, musae_xstrdup(audio_args[i].path));
        }
    }

    musae_clap m;
    const cli_device dev = cli_device_resolve(&dflags, 0);
    if (musae_clap_open(&m, model, dev.ops, err, sizeof err)) musae_fail("%s", err);
    const int64_t D = m.cfg.proj_dim, N = paths.n, M = texts.n, L = MUSAE_CLAP_TEXT_LEN;
    LOG_INFO("%s: CLAP text %lldx%lld, HTSAT %d stages to %lld, projection %lld; %lld clip(s), %lld text(s) on %s",
             model, (long long)m.cfg.text.layers, (long long)m.cfg.text.hidden, m.cfg.audio.n_stages,
             (long long)m.cfg.audio.hidden, (long long)D, (long long)N, (long long)M, dev.ops->name);

    /* texts first: cheap, and a bad one stops the run before the audio work */
    float *t_emb = musae_xmalloc((size_t)(M * D + 1) * sizeof *t_emb);
    if (M) {
        int64_t *ids = musae_xmalloc((size_t)(M * L) * sizeof *ids), *mask = musae_xmalloc((size_t)(M * L) * sizeof *mask);
        for (int64_t i = 0; i < M; i++) {
            char what[64];
            snprintf(what, sizeof what, "--text %lld", (long long)i + 1);
            int64_t n_real;
            if (musae_clap_tokenize(m.tok, texts.v[i], strlen(texts.v[i]), what, ids + i * L, mask + i * L, &n_real,
                                    err, sizeof err))
                musae_fail("%s", err);
            if (n_real > L)
                LOG_WARN("%s: %lld tokens, truncated to CLAP's %lld (as HF's processor does)", what, (long long)n_real,
                         (long long)L);
        }
        const double t0 = musae_now();
        musae_clap_text_embed(&m, ids, mask, M, t_emb, NULL);
        LOG_INFO("embedded %lld text(s) in %.3f s", (long long)M, musae_now() - t0);
        free(ids), free(mask);
    }

    float *a_emb = musae_xmalloc((size_t)(N * D + 1) * sizeof *a_emb);
    if (N) {
        const int64_t F = m.fe.frames * m.fe.n_mels;
        float *feats = musae_xmalloc((size_t)(batch * F) * sizeof *feats);
        musae_progress p;
        musae_progress_init(&p, "clap", "clips", N);
        const double t0 = musae_now();
        for (int64_t b0 = 0; b0 < N; b0 += batch) {
            const int64_t nb = N - b0 < batch ? N - b0 : batch;
            for (int64_t i = 0; i < nb; i++) {
                int64_t n;
                float *x = read_clip(paths.v[b0 + i], &m.fe, &n);
                if (n > m.fe.max_samples)
                    LOG_DEBUG("%s: longer than %.2f s: its first %.2f s are embedded", paths.v[b0 + i],
                              (double)m.fe.max_samples / m.fe.sampling_rate, (double)m.fe.max_samples / m.fe.sampling_rate);
                musae_clap_fe_features(&m.fe, x, n, feats + i * F);
                free(x);
            }
            musae_clap_audio_embed(&m, feats, nb, a_emb + b0 * D, NULL);
            musae_progress_add(&p, nb, NULL);
        }
        musae_progress_finish(&p, NULL);
        LOG_INFO("embedded %lld clip(s) in %.3f s (reading, front end, encoder)", (long long)N, musae_now() - t0);
        free(feats);
    }

    musae_st_writer *w = musae_st_writer_new();
    if (N) {
        const int64_t shape[2] = {N, D};
        musae_st_writer_add(w, "audio_embeds", MUSAE_F32, 2, shape, a_emb);
    }
    if (M) {
        const int64_t shape[2] = {M, D};
        musae_st_writer_add(w, "text_embeds", MUSAE_F32, 2, shape, t_emb);
    }
    if (N && M) {
        float *logits = musae_xmalloc((size_t)(M * N) * sizeof *logits);
        musae_clap_logits(&m, t_emb, M, a_emb, N, logits);
        const int64_t shape[2] = {M, N};
        musae_st_writer_add(w, "logits_per_text", MUSAE_F32, 2, shape, logits);
        free(logits);
    }
    /* what each row is: the paths and texts as JSON lists, and the model */
    cJSON *ja = cJSON_CreateArray(), *jt = cJSON_CreateArray();
    for (int64_t i = 0; i < N; i++) cJSON_AddItemToArray(ja, cJSON_CreateString(paths.v[i]));
    for (int64_t i = 0; i < M; i++) cJSON_AddItemToArray(jt, cJSON_CreateString(texts.v[i]));
    char *sa = cJSON_PrintUnformatted(ja), *stx = cJSON_PrintUnformatted(jt), val[64];
    musae_st_writer_meta(w, "audio", sa);
    musae_st_writer_meta(w, "texts", stx);
    musae_st_writer_meta(w, "model", model);
    snprintf(val, sizeof val, "%.9g", m.logit_scale_t);
    musae_st_writer_meta(w, "logit_scale_t", val);
    musae_st_writer_meta(w, "musae_version", MUSAE_VERSION);
    if (musae_st_writer_save(w, out, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);
    LOG_INFO("wrote %s: %lld audio and %lld text embeddings of %lld", out, (long long)N, (long long)M, (long long)D);
    free(sa), free(stx);
    cJSON_Delete(ja), cJSON_Delete(jt);
    for (int64_t i = 0; i < paths.n; i++) free(paths.v[i]);
    free(paths.v), free(texts.v), free(audio_args), free(orig), free(a_emb), free(t_emb);
    musae_clap_close(&m);
    return 0;
}
