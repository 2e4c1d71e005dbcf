/* Model loading benchmark (issue cpu-speed): how fast musae turns a MusicGen checkpoint folder into the
 * CPU table's weights — the decoder (mg_load_from, fp32), the T5 text encoder and EnCodec, as
 * `musae generate` loads them — against HF transformers' MusicgenForConditionalGeneration.from_pretrained
 * on the same folder in the same run (bench/load_peer.py).
 *
 *   load_bench --model DIR [--reps 3] [--no-peer] [--no-cold] [--python PY]
 *
 * Page cache: one warm-up load, then the best of --reps, musae before and after the peer (the quieter
 * round counts). Cold cache: the checkpoint's pages are evicted first — /proc/sys/vm/drop_caches when
 * this process may write it, else posix_fadvise(POSIX_FADV_DONTNEED) on each safetensors file (which
 * evicts that file's clean, unmapped pages without privileges); the method is printed. GB/s = bytes of
 * the tensors loaded / seconds (1 GB = 1e9 B). Prints a table and one JSON line.
 * bench/lm_make_model.py makes a random checkpoint (musicgen-small's decoder by default; --size medium). */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/omp_env.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "model/encodec.h"
#include "model/musicgen.h"
#include "model/t5.h"

typedef struct {
    double s, bytes;
} load_run;

/* Bytes of the tensors whose name starts with prefix. */
static double tensor_bytes(const musae_st *st, const char *prefix) {
    double b = 0;
    for (int i = 0; i < st->n_tensors; i++)
        if (!strncmp(st->tensors[i].name, prefix, strlen(prefix))) b += (double)st->tensors[i].nbytes;
    return b;
}

/* One load as `musae generate` does it: config, open, decoder, text encoder, codec; then everything freed. */
static load_run load_once(const char *dir) {
    char err[1024];
    const musae_ops *ops = musae_ops_cpu();
    const double t0 = musae_now();
    musae_model_config cfg;
    if (musae_config_load(&cfg, dir, err, sizeof err)) musae_fail("%s", err);
    musae_st st;
    if (musae_st_open(&st, dir, err, sizeof err)) musae_fail("%s", err);
    mg_model m;
    mg_load_from(&m, &st, &cfg, ops, MUSAE_PREC_FP32);
    load_run r = {0, tensor_bytes(&st, "decoder.")};
    musae_t5 t5;
    int have_t5 = cfg.has_text;
    if (have_t5) {
        musae_t5_load(&t5, &st, "text_encoder.", &cfg.text, ops);
        r.bytes += tensor_bytes(&st, "text_encoder.");
    }
    encodec codec;
    int have_codec = cfg.has_audio && musae_st_find(&st, "audio_encoder.quantizer.layers.0.codebook.embed");
    if (have_codec) {
        musae_encodec_config ec;
        if (musae_encodec_config_load(&ec, dir, err, sizeof err)) musae_fail("%s", err);
        encodec_load_st(&codec, &ec, &st, "audio_encoder.", ops);
        r.bytes += tensor_bytes(&st, "audio_encoder.");
    }
    musae_st_close(&st);
    r.s = musae_now() - t0;
    mg_free(&m);
    if (have_t5) musae_t5_free(&t5);
    if (have_codec) encodec_free(&codec);
    return r;
}

/* Fraction of the checkpoint's pages in the page cache (mincore), to show an eviction worked. */
static double cached_fraction(const char *dir) {
    musae_st st;
    char err[1024];
    if (musae_st_open(&st, dir, err, sizeof err)) musae_fail("%s", err);
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    double in = 0, all = 0;
    for (int i = 0; i < st.n_files; i++) {
        const size_t n = (st.files[i].size + pg - 1) / pg;
        unsigned char *v = musae_xmalloc(n ? n : 1);
        if (n && mincore(st.files[i].map, st.files[i].size, v) == 0)
            for (size_t j = 0; j < n; j++) in += v[j] & 1;
        all += (double)n;
        free(v);
    }
    musae_st_close(&st);
    return all > 0 ? in / all : 0;
}

/* Evicts the checkpoint from the page cache; returns how, or NULL when neither way worked. posix_fadvise
 * first: it evicts only this checkpoint, where drop_caches would empty the cache of everyone on the machine. */
static const char *evict(const char *dir) {
    musae_st st;
    char err[1024];
    if (musae_st_open(&st, dir, err, sizeof err)) musae_fail("%s", err);
    int ok = 1;
    for (int i = 0; i < st.n_files; i++) {
        int fd = open(st.files[i].path, O_RDONLY);
        if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) ok = 0;
        if (fd >= 0) close(fd);
    }
    musae_st_close(&st);
    if (ok && cached_fraction(dir) < 0.01) return "fadvise_dontneed";
    sync();
    FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
    if (f) {
        const int wrote = fputs("3\n", f) >= 0;
        if (fclose(f) == 0 && wrote) return "drop_caches";
    }
    return NULL;
}

static double best_of(const char *dir, int reps, double *bytes) {
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        load_run x = load_once(dir);
        best = fmin(best, x.s);
        *bytes = x.bytes;
    }
    return best;
}

static cJSON *run_peer(const char *python, const char *dir, int reps, int cold) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "%s %s/bench/load_peer.py --model %s --reps %d%s", python, MUSAE_SOURCE_DIR, dir, reps,
             cold ? " --cold" : "");
    FILE *p = popen(cmd, "r");
    char line[4096] = "";
    while (p && fgets(line, sizeof line, p) && line[0] != '{') {
    }
    if (!p || pclose(p) != 0 || line[0] != '{') musae_fail("peer failed: %s", cmd);
    return cJSON_Parse(line);
}

int main(int argc, char **argv) {
    musae_omp_env_init(argv); /* as the musae binary: passive OpenMP waits unless the user chose */
    const char *dir = NULL, *python = "python3";
    int reps = 3, peer = 1, cold = 1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--no-peer")) peer = 0;
        else if (!strcmp(f, "--no-cold")) cold = 0;
        else if (!v) musae_fail("%s needs a value (see the top of bench/load_bench.c)", f);
        else if (!strcmp(f, "--model")) dir = v, i++;
        else if (!strcmp(f, "--reps")) reps = atoi(v), i++;
        else if (!strcmp(f, "--python")) python = v, i++;
        else musae_fail("unknown option %s (see the top of bench/load_bench.c)", f);
    }
    if (!dir) musae_fail("usage: load_bench --model DIR [--reps 3] [--no-peer] [--no-cold] [--python PY]");
    musae_log_set_level(MUSAE_LOG_WARN);

    double bytes = 0;
    load_once(dir); /* warm-up: the page cache, the allocator, the first OpenMP team */
    double mu_hot = best_of(dir, reps, &bytes);
    double hf_hot = NAN, hf_cold = NAN, mu_cold = NAN, cached = NAN;
    char torch_ver[32] = "-", tf_ver[32] = "-";
    if (peer) {
        cJSON *j = run_peer(python, dir, reps, 0);
        hf_hot = cJSON_GetObjectItem(j, "load_s")->valuedouble;
        snprintf(torch_ver, sizeof torch_ver, "%s", cJSON_GetObjectItem(j, "torch")->valuestring);
        snprintf(tf_ver, sizeof tf_ver, "%s", cJSON_GetObjectItem(j, "transformers")->valuestring);
        cJSON_Delete(j);
        mu_hot = fmin(mu_hot, best_of(dir, reps, &bytes));
    }
    const char *how = "-";
    if (cold) {
        const char *h = evict(dir);
        how = h ? h : "not permitted";
        if (h) {
            cached = cached_fraction(dir);
            mu_cold = load_once(dir).s;
            if (peer) {
                evict(dir);
                cJSON *j = run_peer(python, dir, 1, 1);
                hf_cold = cJSON_GetObjectItem(j, "load_s")->valuedouble;
                cJSON_Delete(j);
            }
        }
    }
    const int threads = omp_get_max_threads();
    printf("MusicGen checkpoint load, %s: %.2f GB of tensors (decoder, text encoder, EnCodec), %d threads, best of %d\n",
           dir, bytes / 1e9, threads, reps);
    printf("  %-34s %10s %10s %10s %10s\n", "", "cache s", "GB/s", "cold s", "GB/s");
    printf("  %-34s %10.3f %10.2f %10.3f %10.2f\n", "musae (mg_load + t5 + encodec)", mu_hot, bytes / mu_hot / 1e9,
           mu_cold, bytes / mu_cold / 1e9);
    if (peer) {
        char name[80];
        snprintf(name, sizeof name, "HF from_pretrained (torch %s)", torch_ver);
        printf("  %-34s %10.3f %10.2f %10.3f %10.2f\n", name, hf_hot, bytes / hf_hot / 1e9, hf_cold,
               bytes / hf_cold / 1e9);
        printf("  musae / HF speed: page cache %.2fx, cold %.2fx\n", hf_hot / mu_hot, hf_cold / mu_cold);
    }
    printf("  cold cache by %s (checkpoint pages cached before the cold musae load: %.1f %%)\n", how, 100 * cached);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", dir);
    cJSON_AddNumberToObject(j, "bytes", bytes);
    cJSON_AddNumberToObject(j, "threads", threads);
    cJSON_AddNumberToObject(j, "reps", reps);
    const struct {
        const char *k;
        double v;
    } nums[] = {{"musae_load_s", mu_hot}, {"musae_gbps", bytes / mu_hot / 1e9}, {"hf_load_s", hf_hot},
                {"hf_gbps", bytes / hf_hot / 1e9}, {"speedup", hf_hot / mu_hot}, {"musae_cold_s", mu_cold},
                {"hf_cold_s", hf_cold}, {"cold_speedup", hf_cold / mu_cold}, {"cached_before_cold", cached}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) /* a run that was not made is null, not NaN */
        if (isfinite(nums[i].v)) cJSON_AddNumberToObject(j, nums[i].k, nums[i].v);
        else cJSON_AddNullToObject(j, nums[i].k);
    cJSON_AddStringToObject(j, "cold_method", how);
    cJSON_AddStringToObject(j, "torch", torch_ver);
    cJSON_AddStringToObject(j, "transformers", tf_ver);
    char *line = cJSON_PrintUnformatted(j);
    printf("%s\n", line);
    free(line);
    cJSON_Delete(j);
    return 0;
}
