/* Capture throughput on the CPU (issue capture): frames/s end to end from audio files, and the time of each
 * stage (read + resample, EnCodec, LM, store write), on a musicgen-small-sized model with random weights.
 *
 * Without --model it builds that model under --work: the decoder exactly musicgen-small's (hidden 1024, 24
 * layers, 16 heads, ffn 4096, 4 x 2048 codes; weights uniform with the std of HF's N(0, 0.02) init, stored
 * bf16 to halve the file, computed in fp32), the real-size facebook/encodec_32khz codec with the hash-defined
 * weights (model/encodec_hash.h), no T5 weights (capture is unconditional). The audio is --clips pieces of
 * --clip-seconds + 0.5 s at 44.1 kHz stereo (so resampling and downmixing are timed, and each file leaves a
 * tail the capture drops), layers 2,6,12,18,22 as in the paper.
 *
 *   capture_bench [--work DIR] [--model DIR] [--clips 4] [--clip-seconds 10] [--layers 2,6,12,18,22]
 *                 [--batch 1] [--dtype f16|f32]
 * Prints the capture's own summary and one JSON line. On a shared machine wall times mean little: cpu_s (the
 * process, every thread, over the capture loop as loop_s is: what the peer's process_time measures) and, with
 * OMP_NUM_THREADS=1, thread_cpu_s (each stage's thread) give the cost of each stage; cpu_total_s adds the
 * model loading (the peer reports its load_s apart). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/capture.h"
#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "host/io/config.h"
#include "host/io/json.h"
#include "host/io/path.h"
#include "host/io/safetensors.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "model/encodec.h"
#include "model/encodec_hash.h"

#ifndef MUSAE_SOURCE_DIR
#define MUSAE_SOURCE_DIR "."
#endif

static char *read_text(const char *path) {
    char err[4200];
    char *s = musae_read_file(path, NULL, err, sizeof err);
    if (!s) musae_fail("%s", err);
    return s;
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(s, f) < 0 || fclose(f)) musae_fail("%s: cannot write", path);
}

/* Uniform on [-a, a] with a = 0.02·√3 (std 0.02), as bf16; a pure function of (tensor index, element). */
static uint16_t *random_bf16(int64_t n, uint64_t stream, float fill) {
    uint16_t *p = musae_xmalloc((size_t)n * sizeof(uint16_t));
    const float a = 0.02f * sqrtf(3.0f);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float v = isnan(fill) ? (2.0f * musae_u32_to_unit(musae_philox(11, stream, (uint64_t)i).v[0]) - 1.0f) * a
                                    : fill;
        p[i] = musae_f32_to_bf16(v);
    }
    return p;
}

static void build_model(const char *dir) {
    char path[1200], err[512];
    mkdir(dir, 0755);
    /* config: the tiny fixture's composite config with musicgen-small's decoder and encodec_32khz's codec */
    snprintf(path, sizeof path, "%s/tests/fixtures/tiny-musicgen/config.json", MUSAE_SOURCE_DIR);
    char *txt = read_text(path);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    snprintf(path, sizeof path, "%s/tests/fixtures/encodec32k-hash/config.json", MUSAE_SOURCE_DIR);
    txt = read_text(path);
    cJSON *codec = cJSON_Parse(txt);
    free(txt);
    MUSAE_ASSERT(root && codec, "fixture configs");
    cJSON_ReplaceItemInObject(root, "audio_encoder", codec);
    cJSON *dec = cJSON_GetObjectItem(root, "decoder");
    const struct {
        const char *k;
        int v;
    } small[] = {{"hidden_size", 1024}, {"num_hidden_layers", 24}, {"num_attention_heads", 16}, {"ffn_dim", 4096}};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        cJSON_ReplaceItemInObject(dec, small[i].k, cJSON_CreateNumber(small[i].v));
    char *out = cJSON_Print(root);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, out);
    free(out);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "cp %s/tests/fixtures/tiny-musicgen/generation_config.json %s/", MUSAE_SOURCE_DIR, dir);
    if (system(path)) musae_fail("%s failed", path);

    musae_model_config cfg;
    if (musae_config_load(&cfg, dir, err, sizeof err)) musae_fail("%s", err);
    /* shard 1: the decoder */
    const int64_t H = 1024, F = 4096, V = 2048, K = 4, L = 24;
    musae_st_writer *w = musae_st_writer_new();
    void *keep[1024];
    int nk = 0;
    uint64_t stream = 0;
    char name[256];
#define ADD(nm, fill, rank, ...)                                                                                     \
    do {                                                                                                             \
        const int64_t sh[] = {__VA_ARGS__};                                                                          \
        int64_t n = 1;                                                                                               \
        for (int d_ = 0; d_ < rank; d_++) n *= sh[d_];                                                               \
        keep[nk] = random_bf16(n, stream++, fill);                                                                   \
        musae_st_writer_add(w, nm, MUSAE_BF16, rank, sh, keep[nk]);                                                  \
        nk++;                                                                                                        \
    } while (0)
    for (int64_t k = 0; k < K; k++) {
        snprintf(name, sizeof name, "decoder.model.decoder.embed_tokens.%lld.weight", (long long)k);
        ADD(name, NAN, 2, V + 1, H);
        snprintf(name, sizeof name, "decoder.lm_heads.%lld.weight", (long long)k);
        ADD(name, NAN, 2, V, H);
    }
    static const char *const sq[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                                     "encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj",
                                     "encoder_attn.out_proj"};
    static const char *const ln[] = {"self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"};
    for (int64_t l = 0; l < L; l++) {
        char pre[96];
        snprintf(pre, sizeof pre, "decoder.model.decoder.layers.%lld.", (long long)l);
        for (int i = 0; i < 8; i++) {
            snprintf(name, sizeof name, "%s%s.weight", pre, sq[i]);
            ADD(name, NAN, 2, H, H);
        }
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s%s.weight", pre, ln[i]);
            ADD(name, 1.0f, 1, H);
            snprintf(name, sizeof name, "%s%s.bias", pre, ln[i]);
            ADD(name, 0.0f, 1, H);
        }
        snprintf(name, sizeof name, "%sfc1.weight", pre);
        ADD(name, NAN, 2, F, H);
        snprintf(name, sizeof name, "%sfc2.weight", pre);
        ADD(name, NAN, 2, H, F);
    }
    ADD("decoder.model.decoder.layer_norm.weight", 1.0f, 1, H);
    ADD("decoder.model.decoder.layer_norm.bias", 0.0f, 1, H);
#undef ADD
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    if (musae_st_writer_save(w, path, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);
    /* shard 2: the codec, hash weights under audio_encoder. */
    encodec_param ps[512];
    const int np = encodec_params(&cfg.audio, ps, 512);
    w = musae_st_writer_new();
    cJSON *map = cJSON_CreateObject();
    for (int i = 0; i < np; i++) {
        int64_t n = 1;
        for (int d = 0; d < ps[i].rank; d++) n *= ps[i].shape[d];
        float *v = musae_xmalloc((size_t)n * sizeof(float));
        encodec_hash_fill(ps[i].name, ps[i].rank, ps[i].shape, v);
        keep[nk++] = v;
        snprintf(name, sizeof name, "audio_encoder.%s", ps[i].name);
        musae_st_writer_add(w, name, MUSAE_F32, ps[i].rank, ps[i].shape, v);
        cJSON_AddStringToObject(map, name, "model-00002-of-00002.safetensors");
    }
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    if (musae_st_writer_save(w, path, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);
    /* the index */
    musae_st st1;
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    if (musae_st_open(&st1, path, err, sizeof err)) musae_fail("%s", err);
    for (int i = 0; i < st1.n_tensors; i++)
        cJSON_AddStringToObject(map, st1.tensors[i].name, "model-00001-of-00002.safetensors");
    musae_st_close(&st1);
    cJSON *idx = cJSON_CreateObject();
    cJSON_AddItemToObject(idx, "metadata", cJSON_CreateObject());
    cJSON_AddItemToObject(idx, "weight_map", map);
    out = cJSON_Print(idx);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_text(path, out);
    free(out);
    cJSON_Delete(idx);
    for (int i = 0; i < nk; i++) free(keep[i]);
}

/* Test music: detuned tones with vibrato and noise bursts, a different mix per file. */
static void write_audio(const char *path, double seconds, int seed) {
    const int rate = 44100;
    const int64_t n = (int64_t)(seconds * rate);
    float *x = musae_xmalloc((size_t)(2 * n) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) {
            const double t = (double)i / rate, ph = fmod(t, 0.45 + 0.1 * seed);
            double v = 0.25 * sin(2 * M_PI * (196.0 + 20 * seed) * t + 0.3 * sin(2 * M_PI * 5.0 * t)) +
                       0.15 * sin(2 * M_PI * (330.0 + 2.0 * c) * t) + 0.1 * sin(2 * M_PI * 495.0 * t);
            if (ph < 0.06)
                v += 0.3 * (1 - ph / 0.06) * (musae_u32_to_unit(musae_philox(5, (uint64_t)(seed * 2 + c), (uint64_t)i).v[0]) - 0.5);
            x[2 * i + c] = (float)v;
        }
    char err[512];
    musae_audio_writer *w = musae_audio_writer_open(path, rate, 2, MUSAE_AUDIO_PCM16, err, sizeof err);
    if (!w || musae_audio_write(w, x, n, err, sizeof err) || musae_audio_writer_close(w, NULL, err, sizeof err))
        musae_fail("%s", err);
    free(x);
}

int main(int argc, char **argv) {
    const char *work = "/tmp/musae_capture_bench", *model = NULL, *layers = "2,6,12,18,22";
    int clips = 4, batch = 1;
    double clip_s = 10;
    musae_dtype dtype = MUSAE_F16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--work")) work = argv[i + 1];
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--clips")) clips = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clip-seconds")) clip_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) layers = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dtype")) dtype = !strcmp(argv[i + 1], "f32") ? MUSAE_F32 : MUSAE_F16;
        else musae_fail("unknown option %s", argv[i]);
    }
    char path[1200], model_dir[1100], audio[1100], acts[1100];
    mkdir(work, 0755);
    if (!model) {
        snprintf(model_dir, sizeof model_dir, "%s/musicgen-small-random", work);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", model_dir);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            double t0 = musae_now();
            build_model(model_dir);
            LOG_INFO("built %s in %.1f s", model_dir, musae_now() - t0);
        }
        model = model_dir;
    }
    snprintf(audio, sizeof audio, "%s/audio_%d_%g", work, clips, clip_s);
    mkdir(audio, 0755);
    for (int i = 0; i < clips; i++) {
        snprintf(path, sizeof path, "%s/piece%03d.wav", audio, i);
        struct stat sb;
        if (stat(path, &sb) != 0) write_audio(path, clip_s + 0.5, i);
    }
    snprintf(acts, sizeof acts, "%s/acts.h5", work);
    unlink(acts);

    capture_opts o;
    capture_opts_defaults(&o);
    o.model_dir = model;
    o.audio = audio;
    o.out = acts;
    o.clip_seconds = clip_s;
    o.batch = batch;
    o.dtype = dtype;
    const char *p = layers;
    while (*p && o.n_layers < MUSAE_STORE_MAX_LAYERS) {
        o.layers[o.n_layers++] = atoi(p);
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    struct rusage ru0, ru;
    getrusage(RUSAGE_SELF, &ru0);
    const double t0 = musae_now();
    capture_report r;
    capture_run(&o, &r);
    const double total = musae_now() - t0;
    getrusage(RUSAGE_SELF, &ru);
    /* CPU seconds of the whole capture_run (all threads), model loading included */
    const double cpu_total = (double)(ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + 1e-6 * (ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                       (double)(ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + 1e-6 * (ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    const char *threads = getenv("OMP_NUM_THREADS");
    const double w = r.seconds;
    const double bytes = (double)r.frames_written * 1024 * o.n_layers * (dtype == MUSAE_F16 ? 2 : 4);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "bench", "capture_cpu");
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddStringToObject(j, "threads", threads ? threads : "default");
    cJSON_AddNumberToObject(j, "clips", (double)r.clips_written);
    cJSON_AddNumberToObject(j, "frames", (double)r.frames_written);
    cJSON_AddStringToObject(j, "layers", layers);
    cJSON_AddNumberToObject(j, "batch", batch);
    const struct {
        const char *key;
        double v;
        int decimals;
    } nums[] = {{"loop_s", w, 3}, {"total_s", total, 3}, {"clips_per_s", r.clips_written / w, 4},
                {"frames_per_s", r.frames_written / w, 2}, {"audio_x_realtime", r.frames_written / 50.0 / w, 3},
                {"read_s", r.t_read, 3}, {"encodec_s", r.t_encode, 3}, {"lm_s", r.t_lm, 3}, {"write_s", r.t_write, 3},
                {"read_share", r.t_read / w, 4}, {"encodec_share", r.t_encode / w, 4}, {"lm_share", r.t_lm / w, 4},
                {"write_share", r.t_write / w, 4}, {"write_mb_per_s", r.t_write > 0 ? bytes / r.t_write / 1e6 : 0.0, 1},
                {"cpu_s", r.cpu_loop, 2}, {"frames_per_cpu_s", r.frames_written / r.cpu_loop, 2},
                {"cpu_total_s", cpu_total, 2}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) musae_json_add_rounded(j, nums[i].key, nums[i].v, nums[i].decimals);
    /* the level and the arithmetic of the decoder's products (kernels/cpu/isa.h: amx-bf16x3 or fma-fp32) */
    cJSON_AddStringToObject(j, "isa", musae_isa_name(musae_isa_get()));
    cJSON_AddStringToObject(j, "cpu_arith", cpu_gemm_arith());
    cJSON *tc = cJSON_AddObjectToObject(j, "thread_cpu_s");
    musae_json_add_rounded(tc, "read", r.cpu_read, 2);
    musae_json_add_rounded(tc, "encodec", r.cpu_encode, 2);
    musae_json_add_rounded(tc, "lm", r.cpu_lm, 2);
    musae_json_add_rounded(tc, "write", r.cpu_write, 2);
    musae_json_add_rounded(j, "peak_rss_mib", (double)ru.ru_maxrss / 1024.0, 0);
    musae_json_print_line(stdout, j);
    return 0;
}
