/* Shared by the tests that drive `musae capture` on the tiny model (tests/test_capture.c, test_capture_safety.c,
 * test_capture_dist.c): the test signal written as a float WAV, and a store opened for reading. */
#ifndef MUSAE_TEST_CAPTURE_TEST_H
#define MUSAE_TEST_CAPTURE_TEST_H

#include <math.h>

#include "cli.h"
#include "fixture_io.h"
#include "host/core/philox.h"
#include "host/io/store.h"

/* g_dir/rel: a deterministic test signal, a few partials and Philox noise per channel, so that different seeds
 * (files) and channels give different rows. */
static inline void write_audio(const char *rel, int rate, int channels, double seconds, int seed) {
    const int64_t n = (int64_t)llround(seconds * rate);
    float *x = musae_xmalloc(sizeof(float) * (size_t)(n * channels));
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < channels; c++) {
            const double t = (double)i / rate;
            const double u = musae_u32_to_unit(musae_philox((uint64_t)seed, (uint64_t)c, (uint64_t)i).v[0]) - 0.5;
            x[i * channels + c] = (float)(0.3 * sin(2 * M_PI * (110.0 * (seed + 1) + 40 * c) * t) +
                                          0.2 * sin(2 * M_PI * 523.0 * t + seed) + 0.1 * u);
        }
    fx_write_wav(at(rel), x, n, rate, channels, MUSAE_AUDIO_FLOAT);
    free(x);
}

/* g_dir/rel opened for reading; NULL (the reason on stderr) when it does not open. */
static inline musae_store *open_store(const char *rel) {
    char err[1024];
    musae_store *s = musae_store_open(at(rel), err, sizeof err);
    if (!s) fprintf(stderr, "%s\n", err);
    return s;
}

#endif /* MUSAE_TEST_CAPTURE_TEST_H */
