/* The dashboard's images: a minimal PNG encoder (8-bit RGB, one IDAT compressed by zlib, filter 0 on every
 * row) and the excerpt's spectrogram drawn with it. dashboard.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "eval/dashboard.h"
#include "eval/dsp.h"
#include "host/core/check.h"

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* One chunk: length, type, data, CRC-32 over type and data (PNG spec §5.3). */
static int put_chunk(FILE *f, const char type[4], const uint8_t *data, uint32_t n) {
    uint8_t hdr[8], crc[4];
    put_u32(hdr, n);
    memcpy(hdr + 4, type, 4);
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, (const Bytef *)type, 4);
    if (n) c = crc32(c, data, n);
    put_u32(crc, (uint32_t)c);
    return fwrite(hdr, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) && fwrite(crc, 1, 4, f) == 4 ? 0 : -1;
}

int dash_png_write(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t errlen) {
    MUSAE_ASSERT(w > 0 && h > 0, "png %dx%d", w, h);
    const size_t row = (size_t)w * 3 + 1, raw_n = row * (size_t)h;
    uint8_t *raw = musae_xmalloc(raw_n);
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * row] = 0; /* filter type None */
        memcpy(raw + (size_t)y * row + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
    }
    uLongf z_n = compressBound((uLong)raw_n);
    uint8_t *z = musae_xmalloc(z_n);
    const int zrc = compress2(z, &z_n, raw, (uLong)raw_n, 6);
    free(raw);
    if (zrc != Z_OK) {
        free(z);
        snprintf(err, errlen, "%s: zlib compress2 failed (%d)", path, zrc);
        return -1;
    }
    uint8_t ihdr[13];
    put_u32(ihdr, (uint32_t)w);
    put_u32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0; /* 8-bit, truecolour, deflate, filter 0, no interlace */
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int rc = f ? 0 : -1;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (!rc) rc = fwrite(sig, 1, 8, f) == 8 ? 0 : -1;
    if (!rc) rc = put_chunk(f, "IHDR", ihdr, 13);
    if (!rc) rc = put_chunk(f, "IDAT", z, (uint32_t)z_n);
    if (!rc) rc = put_chunk(f, "IEND", NULL, 0);
    if (f && fclose(f) != 0) rc = -1;
    if (!rc && rename(tmp, path) != 0) rc = -1;
    free(z);
    if (rc) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
    }
    return rc;
}

/* A dark-to-bright map (black, indigo, magenta, orange, pale yellow) at t in [0, 1]. */
static void colour(double t, uint8_t *px) {
    static const double stop[5][3] = {{0, 0, 4}, {59, 15, 112}, {183, 55, 121}, {252, 137, 97}, {252, 253, 191}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const double s = t * 4;
    int i = (int)s;
    if (i > 3) i = 3;
    const double u = s - i;
    for (int c = 0; c < 3; c++) px[c] = (uint8_t)lround(stop[i][c] + u * (stop[i + 1][c] - stop[i][c]));
}

int dash_spectrogram_png(const char *path, const float *x, int64_t n, int rate, char *err, size_t errlen) {
    if (n <= 0) {
        snprintf(err, errlen, "%s: no samples to draw", path);
        return -1;
    }
    dsp_work *w = dsp_work_new();
    dsp_clip c = {.x = x, .n = n, .rate = rate};
    dsp_stft(w, &c);
    dsp_work_free(w);
    const int W = (int)c.n_frames, H = DASH_SPEC_ROWS;
    /* row r (0 = top) covers log-spaced [f_lo, f_hi) from 40 Hz to Nyquist: the max magnitude of its bins */
    const double f0 = 40.0, f1 = rate / 2.0, hz_per_bin = (double)rate / DSP_NFFT;
    float *db = musae_xmalloc(sizeof(float) * (size_t)W * H);
    float peak = -300;
    for (int r = 0; r < H; r++) {
        const int q = H - 1 - r;
        const double lo = f0 * pow(f1 / f0, (double)q / H), hi = f0 * pow(f1 / f0, (double)(q + 1) / H);
        int k0 = (int)floor(lo / hz_per_bin), k1 = (int)ceil(hi / hz_per_bin);
        if (k1 <= k0) k1 = k0 + 1;
        if (k1 > DSP_BINS) k1 = DSP_BINS;
        for (int t = 0; t < W; t++) {
            float m = 0;
            for (int k = k0; k < k1; k++) m = fmaxf(m, c.mag[(size_t)t * DSP_BINS + k]);
            const float v = 20.0f * log10f(m + 1e-9f);
            db[(size_t)r * W + t] = v;
            peak = fmaxf(peak, v);
        }
    }
    uint8_t *rgb = musae_xmalloc((size_t)W * H * 3);
    for (size_t i = 0; i < (size_t)W * H; i++) colour((db[i] - (peak - 80.0f)) / 80.0f, rgb + i * 3);
    const int rc = dash_png_write(path, rgb, W, H, err, errlen);
    free(rgb);
    free(db);
    dsp_clip_free(&c);
    return rc;
}
