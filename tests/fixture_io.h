/* Fixtures that tests write on the fly: a WAV file, a one-layer f32 activation store, a top-k SAE checkpoint
 * folder (sae.safetensors, cfg.json, musae.json) as musae train writes it. A step that fails ends the test
 * (exit 1) with a line naming the file: a test whose setup fails fails, it does not skip. */
#ifndef MUSAE_TEST_FIXTURE_IO_H
#define MUSAE_TEST_FIXTURE_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "test.h"

static inline void fx_setup_failed(const char *path, const char *why) {
    fprintf(stderr, "FAIL: setup: %s: %s\n", path, why);
    exit(1);
}

/* x [n, channels] (interleaved) as an audio file at path in format fmt. */
static inline void fx_write_wav(const char *path, const float *x, int64_t n, int rate, int channels,
                                musae_audio_format fmt) {
    char err[1024] = "";
    musae_audio_writer *w = musae_audio_writer_open(path, rate, channels, fmt, err, sizeof err);
    if (!w || musae_audio_write(w, x, n, err, sizeof err) || musae_audio_writer_close(w, NULL, err, sizeof err))
        fx_setup_failed(path, err);
}

/* A new one-layer f32 store at path as musae capture writes it (50 frames/s, d_model d, layer `layer`, model
 * name `model`): add clips with musae_store_add_clip, finish with musae_store_close_writer(w, 1). */
static inline musae_store_writer *fx_store_create(const char *path, const char *model, int d, int layer) {
    musae_store_spec sp = {0};
    sp.model = model;
    sp.d_model = d;
    sp.frame_rate = 50;
    sp.n_layers = 1;
    sp.layers[0] = layer;
    sp.dtype = MUSAE_F32;
    sp.dtype_source = "f32";
    return musae_store_create(path, &sp);
}

/* A top-k SAE checkpoint folder dir (made if missing): sae.safetensors with encoder.weight W_enc [m, d],
 * encoder.bias b_enc [m], W_dec [m, d], b_dec [d]; cfg.json {"activation": "topk", num_latents m, k, d_in d};
 * musae.json {"layer": layer, "model": "test/model", <musae_fields>} (musae_fields: JSON members, e.g.
 * "\"selection\": \"topk\""). */
static inline void fx_write_sae(const char *dir, int m, int d, int k, int layer, const float *W_enc,
                                const float *b_enc, const float *W_dec, const float *b_dec, const char *musae_fields) {
    mkdir(dir, 0755);
    char path[2048], err[1024];
    musae_st_writer *sw = musae_st_writer_new();
    const int64_t s_md[2] = {m, d}, s_m[1] = {m}, s_d[1] = {d};
    musae_st_writer_add(sw, "encoder.weight", MUSAE_F32, 2, s_md, W_enc);
    musae_st_writer_add(sw, "encoder.bias", MUSAE_F32, 1, s_m, b_enc);
    musae_st_writer_add(sw, "W_dec", MUSAE_F32, 2, s_md, W_dec);
    musae_st_writer_add(sw, "b_dec", MUSAE_F32, 1, s_d, b_dec);
    snprintf(path, sizeof path, "%s/sae.safetensors", dir);
    if (musae_st_writer_save(sw, path, err, sizeof err)) fx_setup_failed(path, err);
    musae_st_writer_free(sw);
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "{\"activation\": \"topk\", \"num_latents\": %d, \"k\": %d, \"d_in\": %d}\n", m, k, d) < 0 ||
        fclose(f))
        fx_setup_failed(path, "cannot write");
    snprintf(path, sizeof path, "%s/musae.json", dir);
    f = fopen(path, "w");
    if (!f || fprintf(f, "{\"layer\": %d, \"model\": \"test/model\", %s}\n", layer, musae_fields) < 0 || fclose(f))
        fx_setup_failed(path, "cannot write");
}

#endif /* MUSAE_TEST_FIXTURE_IO_H */
