/* EnCodec 32 kHz CPU benchmark (issue 5): musae's encode and decode real-time factor against PyTorch
 * transformers on the same machine in the same run, and the peak memory of `musae encode` / `musae decode`
 * on a long file.
 *
 * The model is the real-size facebook/encodec_32khz config with the hash-defined weights of
 * tools/reference/README.md (built here with model/encodec_hash.c; the peer, bench/encodec_peer.py, builds
 * the same weights in HF's EncodecModel), so no download is needed and both sides compute the same codes,
 * which the bench checks. Times are the best of --repeats after a warm-up, for both sides; musae runs
 * before and after the peer and keeps its best, so load from other processes biases neither side. musae
 * runs with the passive OpenMP wait policy the musae binary sets for itself (host/core/omp_env.h); the peer
 * runs once per policy (OMP_WAIT_POLICY=active, then passive) and each figure keeps the better one.
 *
 *   encodec_bench [--model DIR] [--seconds 30] [--repeats 3] [--threads N] [--long-minutes 10] [--no-peer]
 *                 [--python PY] [--batch B]
 * --batch B (B > 1) also encodes B different clips of --seconds one at a time and as one batch
 * (encodec_encode_batch: their LSTM recurrences share each pass over the weights; codes checked equal to
 * the one-at-a-time ones), wall and CPU seconds (every thread), and the peer likewise (B encode calls, then
 * one on a [B, 1, samples] batch).
 * Prints a table and one JSON line. Long files: a --long-minutes 44.1 kHz stereo 16-bit WAV is encoded and
 * its codes decoded by the musae binary in child processes; their peak RSS (getrusage) is reported next to
 * a 1-minute file's, to show memory does not grow with the length. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/omp_env.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "host/io/json.h"
#include "kernels/ops.h"
#include "model/encodec.h"
#include "model/encodec_hash.h"

#ifndef MUSAE_SOURCE_DIR
#define MUSAE_SOURCE_DIR "."
#endif
#ifndef MUSAE_BIN
#define MUSAE_BIN "musae"
#endif

/* Deterministic test music: three detuned tones with vibrato, and noise bursts every 0.7 s. */
static void synth(float *x, int64_t n, int64_t offset, int rate, int channel) {
    for (int64_t i = 0; i < n; i++) {
        double t = (double)(i + offset) / rate;
        double v = 0.25 * sin(2 * M_PI * 220.0 * t + 0.3 * sin(2 * M_PI * 5.0 * t)) +
                   0.15 * sin(2 * M_PI * (330.0 + 2.0 * channel) * t) + 0.1 * sin(2 * M_PI * 495.0 * t);
        double ph = fmod(t, 0.7);
        if (ph < 0.08) v += 0.2 * (1.0 - ph / 0.08) * (musae_u32_to_unit(musae_philox(7, (uint64_t)channel, (uint64_t)(i + offset)).v[0]) - 0.5);
        x[i] = (float)v;
    }
}

/* Runs the peer (cmd, a shell line) and returns the JSON object of the first line of its output that starts
 * with '{' (its result); fails naming the command when it exits nonzero or prints none. */
static cJSON *peer_json(const char *cmd) {
    FILE *p = popen(cmd, "r");
    char line[4096] = "";
    while (p && fgets(line, sizeof line, p) && line[0] != '{') {
    }
    if (!p || pclose(p) != 0 || line[0] != '{') musae_fail("peer failed: %s", cmd);
    cJSON *j = cJSON_Parse(line);
    if (!j) musae_fail("peer printed no JSON: %s", cmd);
    return j;
}

typedef struct {
    double encode_s, decode_s;
} timing;

static timing time_musae(const encodec *m, const float *x, int64_t n, int repeats, int64_t **codes_out,
                         int64_t *frames) {
    timing best = {INFINITY, INFINITY};
    for (int r = 0; r <= repeats; r++) { /* r = 0 warms up */
        int64_t F;
        double t0 = musae_now();
        int64_t *codes = encodec_encode(m, x, n, &F);
        double t1 = musae_now();
        float *y = encodec_decode_all(m, codes, F);
        double t2 = musae_now();
        free(y);
        if (r > 0) {
            best.encode_s = fmin(best.encode_s, t1 - t0);
            best.decode_s = fmin(best.decode_s, t2 - t1);
        }
        if (r == repeats) {
            *codes_out = codes;
            *frames = F;
        } else {
            free(codes);
        }
    }
    return best;
}

/* Wall and CPU seconds of encoding a batch of clips one at a time and as one batch (best of repeats). */
typedef struct {
    double alone_s, alone_cpu, batch_s, batch_cpu;
} batch_timing;

/* nb clips x[b] of n samples, best of repeats after a warm-up; *same: the batched codes equal the others. */
static batch_timing time_batch(const encodec *m, float *const *x, int nb, int64_t n, int repeats, int *same) {
    batch_timing t = {INFINITY, INFINITY, INFINITY, INFINITY};
    int64_t *ca[16], *cb[16], fa[16], fb[16], ns[16];
    MUSAE_ASSERT(nb <= 16, "--batch %d: at most 16", nb);
    for (int b = 0; b < nb; b++) ns[b] = n;
    *same = 1;
    for (int r = 0; r <= repeats; r++) { /* r = 0 warms up */
        double w0 = musae_now(), c0 = musae_process_cpu();
        for (int b = 0; b < nb; b++) ca[b] = encodec_encode(m, x[b], n, &fa[b]);
        double w1 = musae_now(), c1 = musae_process_cpu();
        encodec_encode_batch(m, nb, (const float *const *)x, ns, cb, fb, NULL);
        double w2 = musae_now(), c2 = musae_process_cpu();
        if (r > 0) {
            t.alone_s = fmin(t.alone_s, w1 - w0), t.alone_cpu = fmin(t.alone_cpu, c1 - c0);
            t.batch_s = fmin(t.batch_s, w2 - w1), t.batch_cpu = fmin(t.batch_cpu, c2 - c1);
        }
        for (int b = 0; b < nb; b++) {
            *same &= fa[b] == fb[b] && !memcmp(ca[b], cb[b], (size_t)(4 * fa[b]) * sizeof(int64_t));
            free(ca[b]), free(cb[b]);
        }
    }
    return t;
}

/* Runs argv as a child; returns its wall time and fills its peak RSS in MiB. Exits on failure. */
static double run_child(char *const argv[], double *rss_mib) {
    double t0 = musae_now();
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        musae_fail("%s %s failed", argv[0], argv[1]);
    *rss_mib = (double)ru.ru_maxrss / 1024.0;
    return musae_now() - t0;
}

typedef struct {
    double minutes, enc_s, enc_rss, dec_s, dec_rss;
} long_run;

static long_run long_file(const char *dir, const char *model, double minutes) {
    long_run L = {.minutes = minutes};
    char wav[600], codes[600], out[600], err[512];
    snprintf(wav, sizeof wav, "%s/long_%gmin.wav", dir, minutes);
    snprintf(codes, sizeof codes, "%s/long_%gmin.safetensors", dir, minutes);
    snprintf(out, sizeof out, "%s/long_%gmin_out.wav", dir, minutes);
    const int rate = 44100;
    const int64_t total = (int64_t)(minutes * 60 * rate), block = rate;
    musae_audio_writer *w = musae_audio_writer_open(wav, rate, 2, MUSAE_AUDIO_PCM16, err, sizeof err);
    if (!w) musae_fail("%s", err);
    float *l = musae_xmalloc((size_t)block * sizeof(float)), *r = musae_xmalloc((size_t)block * sizeof(float));
    float *st = musae_xmalloc((size_t)(2 * block) * sizeof(float));
    for (int64_t off = 0; off < total; off += block) {
        int64_t n = total - off < block ? total - off : block;
        synth(l, n, off, rate, 0);
        synth(r, n, off, rate, 1);
        for (int64_t i = 0; i < n; i++) st[2 * i] = l[i], st[2 * i + 1] = r[i];
        if (musae_audio_write(w, st, n, err, sizeof err)) musae_fail("%s", err);
    }
    if (musae_audio_writer_close(w, NULL, err, sizeof err)) musae_fail("%s", err);
    free(l), free(r), free(st);
    char *enc[] = {MUSAE_BIN, "encode", "--model", (char *)model, wav, "-o", codes, NULL};
    L.enc_s = run_child(enc, &L.enc_rss);
    char *dec[] = {MUSAE_BIN, "decode", "--model", (char *)model, codes, "-o", out, NULL};
    L.dec_s = run_child(dec, &L.dec_rss);
    unlink(wav), unlink(codes), unlink(out);
    return L;
}

int main(int argc, char **argv) {
    musae_omp_env_init(argv); /* as the musae binary: passive OpenMP waits unless the user chose */
    const char *model = NULL, *python = "python3";
    double seconds = 30, long_minutes = 10;
    int repeats = 3, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), peer = 1, batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--no-peer")) {
            peer = 0;
            continue;
        }
        if (!v) musae_fail("%s needs a value", f);
        i++;
        if (!strcmp(f, "--model")) model = v;
        else if (!strcmp(f, "--seconds")) seconds = atof(v);
        else if (!strcmp(f, "--repeats")) repeats = atoi(v);
        else if (!strcmp(f, "--threads")) threads = atoi(v);
        else if (!strcmp(f, "--long-minutes")) long_minutes = atof(v);
        else if (!strcmp(f, "--python")) python = v;
        else if (!strcmp(f, "--batch")) batch = atoi(v);
        else musae_fail("unknown option %s (see the top of bench/encodec_bench.c)", f);
    }
    musae_log_set_level(MUSAE_LOG_WARN);
    char dir[512], path[700], err[512];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/encodec_bench_%ld", tmp, (long)getpid());
    if (mkdir(dir, 0755)) musae_fail("%s: %s", dir, strerror(errno));
    char model_dir[600];
    if (!model) {
        /* the real-size codec with hash weights, as a standalone EnCodec folder */
        snprintf(model_dir, sizeof model_dir, "%s/model", dir);
        mkdir(model_dir, 0755);
        musae_encodec_config cfg;
        snprintf(path, sizeof path, "%s/tests/fixtures/encodec32k-hash", MUSAE_SOURCE_DIR);
        if (musae_encodec_config_load(&cfg, path, err, sizeof err)) musae_fail("%s", err);
        snprintf(path, sizeof path, "cp %s/tests/fixtures/encodec32k-hash/config.json %s/", MUSAE_SOURCE_DIR, model_dir);
        if (system(path)) musae_fail("%s failed", path);
        snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
        if (encodec_hash_write(&cfg, path, 0, err, sizeof err)) musae_fail("%s", err);
        model = model_dir;
    }
    char thr[16];
    snprintf(thr, sizeof thr, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", thr, 0); /* read when OpenBLAS starts: before the first GEMM */
    setenv("OMP_NUM_THREADS", thr, 0);

    /* the long files first: a child's peak RSS starts from the bench's own size at fork, so fork while the
     * bench is still small (no model, no audio in memory) */
    long_run L1 = {0}, L = {0};
    if (long_minutes > 0) {
        L1 = long_file(dir, model, 1);
        L = long_file(dir, model, long_minutes);
    }

    const int64_t n = (int64_t)(seconds * 32000);
    float *x = musae_xmalloc((size_t)n * sizeof(float));
    synth(x, n, 0, 32000, 0);
    encodec m;
    double t0 = musae_now();
    encodec_load(&m, model, musae_ops_cpu());
    double load_s = musae_now() - t0;

    int64_t *codes, F;
    timing mu = time_musae(&m, x, n, repeats, &codes, &F);
    timing to = {NAN, NAN}, to_pol[2] = {{NAN, NAN}, {NAN, NAN}}; /* best of both policies; active, passive */
    int64_t codes_equal = -1;
    char torch_ver[32] = "-";
    if (peer) {
        char audio[600], pcodes[600], cmd[2400];
        snprintf(audio, sizeof audio, "%s/audio.f32", dir);
        snprintf(pcodes, sizeof pcodes, "%s/codes.i64", dir);
        FILE *f = fopen(audio, "wb");
        if (!f || fwrite(x, sizeof(float), (size_t)n, f) != (size_t)n) musae_fail("%s: write failed", audio);
        fclose(f);
        /* PyTorch under both OpenMP wait policies (its libgomp spins by default, which wins on an idle machine
         * and loses on a busy one); each figure keeps its better policy */
        for (int pol = 0; pol < 2; pol++) {
            snprintf(cmd, sizeof cmd,
                     "OMP_WAIT_POLICY=%s %s %s/bench/encodec_peer.py --audio %s --repeats %d --threads %d --codes-out %s",
                     pol ? "passive" : "active", python, MUSAE_SOURCE_DIR, audio, repeats, threads, pcodes);
            cJSON *j = peer_json(cmd);
            const double e = cJSON_GetObjectItem(j, "encode_s")->valuedouble, d = cJSON_GetObjectItem(j, "decode_s")->valuedouble;
            to_pol[pol] = (timing){e, d};
            to.encode_s = pol ? fmin(to.encode_s, e) : e;
            to.decode_s = pol ? fmin(to.decode_s, d) : d;
            snprintf(torch_ver, sizeof torch_ver, "%s", cJSON_GetObjectItem(j, "torch")->valuestring);
            cJSON_Delete(j);
        }
        int64_t *pc = musae_xmalloc((size_t)(4 * F) * sizeof(int64_t));
        f = fopen(pcodes, "rb");
        size_t got = f ? fread(pc, sizeof(int64_t), (size_t)(4 * F), f) : 0;
        if (f) fclose(f);
        codes_equal = 0;
        for (size_t i = 0; i < got; i++) codes_equal += pc[i] == codes[i];
        if ((int64_t)got != 4 * F) codes_equal = -(int64_t)got; /* frame counts differ */
        free(pc);
        unlink(audio), unlink(pcodes);
        /* musae again after the peer: whichever round had the quieter machine counts */
        int64_t *c2, F2;
        timing mu2 = time_musae(&m, x, n, repeats, &c2, &F2);
        mu.encode_s = fmin(mu.encode_s, mu2.encode_s);
        mu.decode_s = fmin(mu.decode_s, mu2.decode_s);
        free(c2);
    }
    /* a batch of different clips: musae one at a time and batched, the peer likewise (both policies) */
    batch_timing bt = {NAN, NAN, NAN, NAN}, bp = {NAN, NAN, NAN, NAN};
    int batch_same = -1;
    if (batch > 1) {
        float *xb[16];
        MUSAE_ASSERT(batch <= 16, "--batch %d: at most 16", batch);
        for (int b = 0; b < batch; b++) {
            xb[b] = musae_xmalloc((size_t)n * sizeof(float));
            synth(xb[b], n, (int64_t)b * 7 * 32000, 32000, b); /* another stretch and channel each */
        }
        bt = time_batch(&m, xb, batch, n, repeats, &batch_same);
        if (peer) {
            char audio[600], cmd[2400];
            snprintf(audio, sizeof audio, "%s/batch.f32", dir);
            FILE *f = fopen(audio, "wb");
            for (int b = 0; f && b < batch; b++)
                if (fwrite(xb[b], sizeof(float), (size_t)n, f) != (size_t)n) musae_fail("%s: write failed", audio);
            if (!f || fclose(f)) musae_fail("%s: write failed", audio);
            for (int pol = 0; pol < 2; pol++) {
                snprintf(cmd, sizeof cmd,
                         "OMP_WAIT_POLICY=%s %s %s/bench/encodec_peer.py --audio %s --repeats %d --threads %d --batch %d",
                         pol ? "passive" : "active", python, MUSAE_SOURCE_DIR, audio, repeats, threads, batch);
                cJSON *j = peer_json(cmd);
                const batch_timing q = {cJSON_GetObjectItem(j, "alone_encode_s")->valuedouble,
                                        cJSON_GetObjectItem(j, "alone_encode_cpu_s")->valuedouble,
                                        cJSON_GetObjectItem(j, "batch_encode_s")->valuedouble,
                                        cJSON_GetObjectItem(j, "batch_encode_cpu_s")->valuedouble};
                cJSON_Delete(j);
                bp = pol ? (batch_timing){fmin(bp.alone_s, q.alone_s), fmin(bp.alone_cpu, q.alone_cpu),
                                          fmin(bp.batch_s, q.batch_s), fmin(bp.batch_cpu, q.batch_cpu)}
                         : q;
            }
            unlink(audio);
            /* musae again after the peer, as above */
            int same2;
            batch_timing b2 = time_batch(&m, xb, batch, n, repeats, &same2);
            bt = (batch_timing){fmin(bt.alone_s, b2.alone_s), fmin(bt.alone_cpu, b2.alone_cpu),
                                fmin(bt.batch_s, b2.batch_s), fmin(bt.batch_cpu, b2.batch_cpu)};
            batch_same &= same2;
        }
        for (int b = 0; b < batch; b++) free(xb[b]);
    }
    encodec_free(&m);
    free(x);

    printf("EnCodec 32 kHz (facebook/encodec_32khz config, hash weights), %.0f s of audio, %d threads, best of %d\n",
           seconds, threads, repeats);
    printf("  %-36s %10s %10s %10s %10s\n", "", "encode s", "enc RTF", "decode s", "dec RTF");
    printf("  %-36s %10.3f %9.1fx %10.3f %9.1fx\n", "musae (C, OpenBLAS)", mu.encode_s, seconds / mu.encode_s,
           mu.decode_s, seconds / mu.decode_s);
    if (peer) {
        char name[64];
        snprintf(name, sizeof name, "PyTorch %s (transformers)", torch_ver);
        printf("  %-36s %10.3f %9.1fx %10.3f %9.1fx\n", name, to.encode_s, seconds / to.encode_s, to.decode_s,
               seconds / to.decode_s);
        printf("  %-36s encode %.3f / %.3f s, decode %.3f / %.3f s\n", "  PyTorch OMP_WAIT_POLICY active / passive",
               to_pol[0].encode_s, to_pol[1].encode_s, to_pol[0].decode_s, to_pol[1].decode_s);
        printf("  musae / PyTorch speed: encode %.2fx, decode %.2fx; codes equal %lld of %lld\n",
               to.encode_s / mu.encode_s, to.decode_s / mu.decode_s, (long long)codes_equal, (long long)(4 * F));
    }
    if (batch > 1) {
        printf("  encode of %d different clips of %.0f s, wall s / CPU s (every thread), best of %d:\n", batch, seconds,
               repeats);
        printf("    musae   one at a time %.3f / %.2f, batched %.3f / %.2f (%.2fx less CPU); codes %s\n", bt.alone_s,
               bt.alone_cpu, bt.batch_s, bt.batch_cpu, bt.alone_cpu / bt.batch_cpu,
               batch_same ? "equal to one at a time" : "DIFFER from one at a time");
        if (peer) {
            printf("    PyTorch one at a time %.3f / %.2f, batched %.3f / %.2f (each the better policy)\n", bp.alone_s,
                   bp.alone_cpu, bp.batch_s, bp.batch_cpu);
            const double pw = fmin(bp.alone_s, bp.batch_s), pc = fmin(bp.alone_cpu, bp.batch_cpu);
            printf("    musae batched / PyTorch's better: %.2fx wall, %.2fx CPU\n", pw / bt.batch_s, pc / bt.batch_cpu);
        }
    }
    if (long_minutes > 0) {
        printf("  musae CLI, 44.1 kHz stereo 16-bit WAV (resampled):\n");
        const long_run *ls[2] = {&L1, &L};
        for (int i = 0; i < 2; i++)
            printf("    %5.1f min: encode %.1f s (%.1fx RT), peak RSS %.0f MiB; decode %.1f s (%.1fx RT), peak RSS %.0f MiB\n",
                   ls[i]->minutes, ls[i]->enc_s, ls[i]->minutes * 60 / ls[i]->enc_s, ls[i]->enc_rss, ls[i]->dec_s,
                   ls[i]->minutes * 60 / ls[i]->dec_s, ls[i]->dec_rss);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seconds", seconds);
    cJSON_AddNumberToObject(j, "threads", threads);
    musae_json_add_rounded(j, "load_s", load_s, 2);
    musae_json_add_rounded(j, "musae_encode_s", mu.encode_s, 4);
    musae_json_add_rounded(j, "musae_decode_s", mu.decode_s, 4);
    musae_json_add_rounded(j, "musae_encode_rtf", seconds / mu.encode_s, 2);
    musae_json_add_rounded(j, "musae_decode_rtf", seconds / mu.decode_s, 2);
    musae_json_add_rounded(j, "torch_encode_s", to.encode_s, 4);
    musae_json_add_rounded(j, "torch_decode_s", to.decode_s, 4);
    musae_json_add_rounded(j, "torch_encode_s_active", to_pol[0].encode_s, 4);
    musae_json_add_rounded(j, "torch_encode_s_passive", to_pol[1].encode_s, 4);
    musae_json_add_rounded(j, "torch_decode_s_active", to_pol[0].decode_s, 4);
    musae_json_add_rounded(j, "torch_decode_s_passive", to_pol[1].decode_s, 4);
    musae_json_add_rounded(j, "encode_speedup", to.encode_s / mu.encode_s, 3);
    musae_json_add_rounded(j, "decode_speedup", to.decode_s / mu.decode_s, 3);
    cJSON_AddNumberToObject(j, "codes_equal", (double)codes_equal);
    cJSON_AddNumberToObject(j, "codes_total", (double)(4 * F));
    cJSON_AddNumberToObject(j, "long_minutes", long_minutes);
    musae_json_add_rounded(j, "long_encode_rss_mib", L.enc_rss, 0);
    musae_json_add_rounded(j, "long_decode_rss_mib", L.dec_rss, 0);
    musae_json_add_rounded(j, "short_encode_rss_mib", L1.enc_rss, 0);
    musae_json_add_rounded(j, "short_decode_rss_mib", L1.dec_rss, 0);
    if (batch > 1) {
        cJSON_AddNumberToObject(j, "batch", batch);
        cJSON_AddBoolToObject(j, "batch_codes_equal", batch_same == 1);
        const struct {
            const char *key;
            double v;
        } bf[] = {{"musae_alone_encode_s", bt.alone_s}, {"musae_alone_encode_cpu_s", bt.alone_cpu},
                  {"musae_batch_encode_s", bt.batch_s}, {"musae_batch_encode_cpu_s", bt.batch_cpu},
                  {"torch_alone_encode_s", bp.alone_s}, {"torch_alone_encode_cpu_s", bp.alone_cpu},
                  {"torch_batch_encode_s", bp.batch_s}, {"torch_batch_encode_cpu_s", bp.batch_cpu}};
        for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++) musae_json_add_rounded(j, bf[i].key, bf[i].v, 4);
    }
    musae_json_print_line(stdout, j);
    free(codes);
    if (!getenv("MUSAE_BENCH_KEEP")) {
        snprintf(path, sizeof path, "rm -rf %s", dir);
        if (system(path)) LOG_WARN("could not remove %s", dir);
    }
    return 0;
}
