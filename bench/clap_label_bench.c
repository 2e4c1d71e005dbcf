/* The CLAP labeler's throughput (eval/clap_label.h): clips embedded per second, cold (nothing cached) and warm
 * (every clip from the cache), on the tiny CLAP fixture or another CLAP folder.
 *
 *   clap_label_bench [--clips N] [--clap DIR] [--dir WORK]
 *
 * Builds in WORK (default /tmp/clap_label_bench): N/2 WAV sources of 4 s at 32 kHz (MusicGen's rate, so the
 * labeler resamples as it would on a capture's sources) cut into N store clips of 2 s, an SAE whose latent i < 4
 * fires exactly in the clips c ≡ i (mod 4), `musae analyze --top 20`; then runs the labeler (mtg-jamendo, 183 tags)
 * twice and prints both wall times and the embedding line the labeler logged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/cli/clap_main.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"

enum { D = 8, M = 8, FRAMES = 100, RATE = 32000 };

static void write_source(const char *path, int s) {
    char err[256];
    const int64_t n = 4 * RATE;
    float *x = musae_xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const double t = (double)i / RATE, hz = 110.0 * (1 + s % 7) + 50.0 * t;
        x[i] = (float)(0.4 * sin(6.283185307179586 * hz * t));
    }
    musae_audio_writer *w = musae_audio_writer_open(path, RATE, 1, MUSAE_AUDIO_PCM16, err, sizeof err);
    if (!w || musae_audio_write(w, x, n, err, sizeof err) || musae_audio_writer_close(w, NULL, err, sizeof err))
        musae_fail("%s", err);
    free(x);
}

int main(int argc, char **argv) {
    int n = 200;
    const char *clap = MUSAE_SOURCE_DIR "/tests/fixtures/tiny-clap", *dir = "/tmp/clap_label_bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--clips")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clap")) clap = argv[i + 1];
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else musae_fail("usage: clap_label_bench [--clips N] [--clap DIR] [--dir WORK]");
    }
    if (n < 8 || n % 2) musae_fail("--clips: an even number >= 8");
    char cmd[8192], p[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/audio' '%s/sae'", dir, dir, dir);
    if (system(cmd)) musae_fail("cannot make %s", dir);
    for (int s = 0; s < n / 2; s++) {
        snprintf(p, sizeof p, "%s/audio/s%03d.wav", dir, s);
        write_source(p, s);
    }
    musae_store_spec sp = {.model = "bench/model", .d_model = D, .frame_rate = 50, .n_layers = 1, .layers = {3},
                           .dtype = MUSAE_F32, .dtype_source = "f32"};
    snprintf(p, sizeof p, "%s/s.h5", dir);
    musae_store_writer *w = musae_store_create(p, &sp);
    float x[FRAMES * D];
    for (int c = 0; c < n; c++) {
        for (int r = 0; r < FRAMES; r++)
            for (int j = 0; j < D; j++) x[r * D + j] = j == c % 4 ? 2.0f + 0.1f * (float)((r * 7 + c) % 10) : 0.0f;
        char name[128];
        snprintf(name, sizeof name, "audio/s%03d.wav#t=%d,%d", c / 2, 2 * (c % 2), 2 * (c % 2) + 2);
        const float *acts[1] = {x};
        musae_store_add_clip(w, name, FRAMES, acts);
    }
    musae_store_close_writer(w, 1);
    float W_enc[M * D] = {0}, b_enc[M], W_dec[M * D], b_dec[D] = {0};
    for (int i = 0; i < M; i++) {
        b_enc[i] = -1;
        if (i < 4) W_enc[i * D + i] = 1;
        for (int j = 0; j < D; j++) W_dec[i * D + j] = (float)((i * 5 + j * 3) % 7) - 3.0f;
    }
    musae_st_writer *sw = musae_st_writer_new();
    int64_t s_md[2] = {M, D}, s_m[1] = {M}, s_d[1] = {D};
    musae_st_writer_add(sw, "encoder.weight", MUSAE_F32, 2, s_md, W_enc);
    musae_st_writer_add(sw, "encoder.bias", MUSAE_F32, 1, s_m, b_enc);
    musae_st_writer_add(sw, "W_dec", MUSAE_F32, 2, s_md, W_dec);
    musae_st_writer_add(sw, "b_dec", MUSAE_F32, 1, s_d, b_dec);
    char err[512];
    snprintf(p, sizeof p, "%s/sae/sae.safetensors", dir);
    if (musae_st_writer_save(sw, p, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(sw);
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && echo '{\"activation\": \"topk\", \"num_latents\": %d, \"k\": 2, \"d_in\": %d}' > sae/cfg.json && "
        "echo '{\"layer\": 3, \"model\": \"bench/model\", \"selection\": \"topk\"}' > sae/musae.json && "
        "%s analyze --sae sae --acts s.h5 --split all --top 20 --max-rate 0.5 -o f.h5 2>analyze.log",
        dir, M, D, MUSAE_BIN);
    if (system(cmd)) musae_fail("musae analyze failed: see %s/analyze.log", dir);
    if (chdir(dir)) musae_fail("cannot enter %s", dir);
    musae_log_set_level(MUSAE_LOG_INFO);
    const char *pass[2] = {"cold", "warm"};
    for (int k = 0; k < 2; k++) {
        char *args[] = {"label", "--labeler", "clap", "--clap", (char *)clap, "--features", "f.h5", "--vocab",
                        "mtg-jamendo", "-o", "labels.jsonl", NULL};
        const double t0 = musae_now();
        if (clap_label_main(11, args)) musae_fail("the labeler failed");
        printf("%s: %d store clips, label run %.2f s (the 'clap: ... clips/s' line above is the embedding alone)\n",
               pass[k], n, musae_now() - t0);
        fflush(stdout);
    }
    return 0;
}
