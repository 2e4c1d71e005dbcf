/* musae excerpt on a store whose clip names point at real audio (audio/a.wav, a 4 s chirp cut into two 2 s clips,
 * and audio/b.wav, 2 s): for a feature firing in all three clips, each OGG excerpt lasts --seconds, lies inside its
 * clip around the peak and holds the source's samples there (correlation > 0.9 after Vorbis); each JSON trace
 * equals the feature's activation recomputed here with plain loops, frame by frame. A moved source and a
 * source whose length changed are reported by name and skipped; an SAE changed since the analysis and bad options
 * are refused with exit 1 and a message. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cli.h"
#include "fixture_io.h"
#include "eval/features_io.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"

enum { D = 8, M = 24, K = 3, LAYER = 3, FRAMES = 100, RATE = 32000 };
static const char *k_clips[3] = {"audio/a.wav#t=0,2", "audio/a.wav#t=2,4", "audio/b.wav#t=0,2"};

static int small_int(uint64_t seed, uint64_t i, int lo, int hi) {
    return lo + (int)(musae_philox(seed, 0xF1, i).v[0] % (uint32_t)(hi - lo + 1));
}

static float W_enc[M * D], b_enc[M], W_dec[M * D], b_dec[D];

/* A chirp (rising pitch, so each window sounds different) or a plain tone, 16-bit WAV. */
static void write_wav(const char *path, double seconds, int chirp) {
    const int64_t n = (int64_t)(seconds * RATE);
    float *x = malloc(sizeof(float) * (size_t)n);
    double ph = 0;
    for (int64_t i = 0; i < n; i++) {
        const double hz = chirp ? 200.0 + 900.0 * (double)i / RATE : 440.0;
        ph += 6.283185307179586 * hz / RATE;
        x[i] = (float)(0.5 * sin(ph));
    }
    fx_write_wav(path, x, n, RATE, 1, MUSAE_AUDIO_PCM16);
    free(x);
}

static void make_fixture(void) {
    mkdir(at("audio"), 0755);
    write_wav(at("audio/a.wav"), 4, 1);
    write_wav(at("audio/b.wav"), 2, 0);
    musae_store_writer *w = fx_store_create(at("s.h5"), "test/model", D, LAYER);
    float *x = malloc(sizeof(float) * FRAMES * D);
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < FRAMES * D; i++) x[i] = (float)small_int(2, (uint64_t)(c * 100000 + i), -3, 3);
        const float *acts[1] = {x};
        musae_store_add_clip(w, k_clips[c], FRAMES, acts);
    }
    musae_store_close_writer(w, 1);
    free(x);
    for (int i = 0; i < M * D; i++) W_enc[i] = (float)small_int(11, (uint64_t)i, -2, 2);
    for (int i = 0; i < M; i++) b_enc[i] = (float)small_int(11, 10000 + (uint64_t)i, -3, 1);
    for (int j = 0; j < D; j++) b_dec[j] = (float)small_int(11, 20000 + (uint64_t)j, -1, 1);
    for (int i = 0; i < M * D; i++) W_dec[i] = (float)small_int(13, (uint64_t)i, -5, 5) + 0.25f;
    fx_write_sae(at("sae"), M, D, K, LAYER, W_enc, b_enc, W_dec, b_dec, "\"selection\": \"topk\"");
}

/* The latent's activation on each frame of store clip c, with plain loops (top-k, ties to the lower latent). */
static void trace_of(musae_store *s, int c, int latent, double *out) {
    float x[FRAMES * D];
    musae_store_read_rows(s, LAYER, (int64_t)c * FRAMES, FRAMES, x);
    for (int r = 0; r < FRAMES; r++) {
        double pre[M], z[M] = {0};
        for (int i = 0; i < M; i++) {
            double v = b_enc[i];
            for (int j = 0; j < D; j++) v += (double)W_enc[i * D + j] * ((double)x[r * D + j] - b_dec[j]);
            pre[i] = v > 0 ? v : 0;
        }
        for (int t = 0; t < K; t++) {
            int best = -1;
            for (int i = 0; i < M; i++)
                if (pre[i] > 0 && z[i] == 0 && (best < 0 || pre[i] > pre[best])) best = i;
            if (best >= 0) z[best] = pre[best];
        }
        out[r] = z[latent];
    }
}

static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Checks excerpt rank r of `latent`: its trace against plain loops, its window, its audio against the source. */
static void check_excerpt(musae_store *s, const musae_features *f, int latent, int r, double seconds) {
    char rel[128];
    snprintf(rel, sizeof rel, "ex/feature%d_top%d.json", latent, r);
    char *txt = slurp(rel);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    CHECK(j != NULL, "%s is missing or not JSON", rel);
    if (!j) return;
    const int clip = f->top_clip[latent * f->N + r], sc = (int)f->clip_store_index[clip];
    double want[FRAMES];
    trace_of(s, sc, latent, want);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "activation");
    int bad = cJSON_GetArraySize(arr) != FRAMES, peak = 0;
    for (int t = 0; !bad && t < FRAMES; t++) {
        const double got = cJSON_GetArrayItem(arr, t)->valuedouble;
        bad += fabs(got - want[t]) > 1e-5 * fmax(1.0, fabs(want[t]));
        if (want[t] > want[peak]) peak = t;
    }
    CHECK(bad == 0, "%s: the trace differs from the plain-loop activation", rel);
    CHECK(num(j, "peak_frame") == peak && peak == f->top_clip_frame[latent * f->N + r], "%s: peak frame %g, want %d",
          rel, num(j, "peak_frame"), peak);
    const double a = num(j, "clip_start"), b = num(j, "clip_end"), s0 = num(j, "excerpt_start"), s1 = num(j, "excerpt_end");
    const double tp = a + (peak + 0.5) / 50.0;
    CHECK(fabs(s1 - s0 - seconds) < 1e-9 && s0 >= a - 1e-9 && s1 <= b + 1e-9 && s0 <= tp && tp <= s1,
          "%s: window %g..%g, clip %g..%g, peak at %g", rel, s0, s1, a, b, tp);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    char err[300];
    int64_t n_ogg = 0, n_src = 0;
    snprintf(rel, sizeof rel, "ex/feature%d_top%d.ogg", latent, r);
    float *ogg = musae_audio_load(at(rel), RATE, 0, 0, &n_ogg, err, sizeof err);
    float *ref = cJSON_IsString(src) ? musae_audio_load(at(src->valuestring), RATE, s0, seconds, &n_src, err, sizeof err)
                                     : NULL;
    CHECK(ogg && ref, "%s: %s", rel, err);
    if (ogg && ref) {
        CHECK(llabs(n_ogg - n_src) <= 2 && n_src == (int64_t)llround(seconds * RATE), "%s: %lld samples, source %lld",
              rel, (long long)n_ogg, (long long)n_src);
        double xy = 0, xx = 0, yy = 0;
        for (int64_t i = 0; i < n_src && i < n_ogg; i++) xy += ogg[i] * ref[i], xx += ogg[i] * ogg[i], yy += ref[i] * ref[i];
        CHECK(xy / sqrt(xx * yy + 1e-30) > 0.9, "%s: correlation with the source window %g", rel, xy / sqrt(xx * yy));
    }
    free(ogg);
    free(ref);
    cJSON_Delete(j);
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    scratch_open("test_excerpt");
    make_fixture();
    CHECK(run("analyze --sae sae --acts s.h5 --split all --top 3 -o f.h5") == 0, "analyze failed");
    musae_features f;
    char err[600];
    const int ok = features_read(at("f.h5"), &f, err, sizeof err) == 0;
    CHECK(ok, "%s", err);
    musae_store *s = musae_store_open(at("s.h5"), err, sizeof err);
    CHECK(s != NULL, "%s", err);
    int latent = -1;
    for (int i = 0; ok && i < M && latent < 0; i++)
        if (f.top_clip[i * f.N + 2] >= 0) latent = i; /* fires in all three clips */
    CHECK(latent >= 0, "no latent fires in all three clips");
    if (ok && s && latent >= 0) {
        CHECK(run("excerpt --features f.h5 --feature %d --top 3 --seconds 0.5 -o ex", latent) == 0, "excerpt failed");
        for (int r = 0; r < 3; r++) check_excerpt(s, &f, latent, r, 0.5);
        /* moved: b.wav's clip is reported by name and skipped, the others written */
        CHECK(sh("mv audio/b.wav audio/b_moved.wav") == 0, "mv failed");
        CHECK(run("excerpt --features f.h5 --feature %d --top 3 --seconds 0.5 -o ex_moved", latent) == 0,
              "excerpt (moved) failed");
        err_has("audio/b.wav: source of clip 'audio/b.wav#t=0,2' is missing");
        CHECK(sh("test $(ls ex_moved/*.ogg | wc -l) -eq 2") == 0, "ex_moved should hold two excerpts");
        /* changed: a.wav now 3 s long, but the store cut it into clips ending at 4 s */
        write_wav(at("audio/a.wav"), 3, 1);
        CHECK(run("excerpt --features f.h5 --feature %d --top 3 --seconds 0.5 -o ex_changed", latent) == 0,
              "excerpt (changed) failed");
        err_has("audio/a.wav: lasts 3.000 s, but the store's clips of it imply 4.000 .. 6.000 s");
        CHECK(sh("test $(ls ex_changed 2>/dev/null | wc -l) -eq 0") == 0, "ex_changed should be empty");
        /* refusals */
        CHECK(run("excerpt --features f.h5 --feature %d -o ex2", M) == 1, "a latent out of range was accepted");
        err_has("f.h5 has 24 latents");
        CHECK(run("excerpt --feature 0 -o ex2") == 1, "missing --features accepted");
        err_has("see musae excerpt --help");
        CHECK(run("excerpt --features f.h5 --feature 0 -o ex2 --frobnicate") == 1, "an unknown option was accepted");
        err_has("see musae excerpt --help");
        CHECK(run("excerpt --features s.h5 --feature 0 -o ex2") == 1, "a store was taken for a FEATURES file");
        err_has("not a FEATURES file");
        /* moved SAE and store, named again */
        CHECK(sh("mkdir -p moved && mv sae moved/sae && mv s.h5 moved/s.h5 && mv audio/b_moved.wav audio/b.wav") == 0,
              "cannot move");
        CHECK(run("excerpt --features f.h5 --feature %d --top 1 --seconds 0.5 -o ex3", latent) == 1,
              "a moved SAE was not noticed");
        err_has("sae/sae.safetensors");
        CHECK(run("excerpt --features f.h5 --feature %d --top 3 --seconds 0.5 --sae moved/sae --acts moved/s.h5 "
                  "-o ex_moved_sae",
                  latent) == 0,
              "excerpt with --sae/--acts failed");
        CHECK(sh("test $(ls ex_moved_sae/*.json | wc -l) -eq 1") == 0, "ex_moved_sae should hold b.wav's excerpt only");
        CHECK(sh("mv moved/sae sae && mv moved/s.h5 s.h5") == 0, "cannot move back");
        CHECK(run("excerpt --features f.h5 --feature %d --top 1 --sae nowhere -o ex3", latent) == 1,
              "a missing SAE was accepted");
        err_has("nowhere/sae.safetensors");
        CHECK(sh("printf x >> sae/sae.safetensors") == 0, "cannot touch the SAE");
        CHECK(run("excerpt --features f.h5 --feature 0 -o ex2") == 1, "a changed SAE was accepted");
        err_has("has changed since the analysis");
    }
    if (ok) features_free(&f);
    if (s) musae_store_close(s);
    scratch_close();
    TEST_END();
}
