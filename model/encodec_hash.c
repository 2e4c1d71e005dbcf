#include "model/encodec_hash.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/safetensors.h"
#include "model/encodec.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian: copy with a swap here");

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static uint32_t fmix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

void encodec_hash_fill(const char *name, int rank, const int64_t *shape, float *out) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    enum { ONES, UNIFORM, GAIN } kind;
    double scale = 1.0;
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    if (ends_with(name, "codebook.inited") || ends_with(name, "codebook.cluster_size")) kind = ONES;
    else if (ends_with(name, "codebook.embed") || ends_with(name, "codebook.embed_avg")) kind = UNIFORM, scale = 0.25;
    else if (ends_with(name, "parametrizations.weight.original0")) kind = GAIN;
    else if (strstr(last, "bias")) kind = UNIFORM, scale = 0.1;
    else kind = UNIFORM, scale = 2.0 / sqrt((double)(n / shape[0]));
    uint32_t h = 0x811C9DC5u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x01000193u;
    for (int64_t i = 0; i < n; i++) {
        if (kind == ONES) {
            out[i] = 1.0f;
            continue;
        }
        double u = (double)fmix32(h + (uint32_t)i * 2654435761u) / 4294967296.0 - 0.5;
        out[i] = kind == GAIN ? (float)(0.5 + fabs(u)) : (float)(u * scale);
    }
}

uint8_t *encodec_hash_image(const musae_encodec_config *cfg, int legacy_names, size_t *size) {
    int n = encodec_params(cfg, NULL, 0);
    encodec_param *ps = musae_xmalloc((size_t)n * sizeof *ps);
    encodec_params(cfg, ps, n);
    musae_st_writer *w = musae_st_writer_new();
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int r = 0; r < ps[i].rank; r++) numel *= ps[i].shape[r];
        float *dst = musae_xmalloc((size_t)numel * sizeof(float));
        /* the values are defined on the transformers-5 name, whatever the stored spelling */
        encodec_hash_fill(ps[i].name, ps[i].rank, ps[i].shape, dst);
        char *at = strstr(ps[i].name, "parametrizations.weight.original");
        if (legacy_names && at) snprintf(at, sizeof ps[i].name - (size_t)(at - ps[i].name), "%s", at[32] == '0' ? "weight_g" : "weight_v");
        musae_st_writer_add(w, ps[i].name, MUSAE_F32, ps[i].rank, ps[i].shape, dst);
        free(dst);
    }
    uint8_t *img = musae_st_writer_image(w, size);
    musae_st_writer_free(w);
    free(ps);
    return img;
}

int encodec_hash_write(const musae_encodec_config *cfg, const char *path, int legacy_names, char *err, size_t errlen) {
    size_t size;
    uint8_t *img = encodec_hash_image(cfg, legacy_names, &size);
    int rc = musae_write_file_atomic(path, img, size);
    if (rc) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    free(img);
    return rc;
}
