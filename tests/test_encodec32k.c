/* The real-size EnCodec 32 kHz (facebook/encodec_32khz config) with hash-defined weights
 * (tools/reference/README.md): the C generator reproduces every tensor HF was run with (checked against
 * tests/fixtures/encodec32k-hash/tensors.json), and on HF's 2 s clip the codes are identical, the
 * embeddings and the decoded audio within tolerance, 640·F samples; and the codes, embeddings and audio are
 * bitwise the same with 1, 2 and 3 OpenMP threads (the LSTM's layer wavefront, the decoder's overlap and the
 * GEMM tiles split work by shape, never by thread count). A batched encode (encodec_encode_batch: clips of
 * one length share the LSTM's pass over its weights) gives every clip the bits it gets alone. */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "host/core/log.h"
#include "host/io/safetensors.h"
#include "kernels/ops.h"
#include "model/encodec.h"
#include "model/encodec_hash.h"
#include "st_test.h"
#include "test.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = musae_xmalloc((size_t)n + 1);
    b[fread(b, 1, (size_t)n, f)] = 0;
    fclose(f);
    return b;
}

/* Every tensor of tensors.json: same names and shapes as encodec_params, same first values and sum. */
static void test_generator(const musae_encodec_config *cfg, const char *json_path) {
    char *txt = slurp(json_path);
    CHECK(txt != NULL, "cannot read %s", json_path);
    if (!txt) return;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    int np = encodec_params(cfg, NULL, 0);
    encodec_param *ps = musae_xmalloc((size_t)np * sizeof *ps);
    encodec_params(cfg, ps, np);
    CHECK(cJSON_GetArraySize(ts) == np, "tensors.json has %d tensors, encodec_params %d", cJSON_GetArraySize(ts), np);
    int checked = 0, bad = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        const char *name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        const encodec_param *p = NULL;
        for (int i = 0; i < np; i++)
            if (!strcmp(ps[i].name, name)) p = &ps[i];
        CHECK(p != NULL, "%s: not among encodec_params", name);
        if (!p) continue;
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        int same = cJSON_GetArraySize(shape) == p->rank;
        for (int r = 0; same && r < p->rank; r++) same = cJSON_GetArrayItem(shape, r)->valuedouble == (double)p->shape[r];
        CHECK(same, "%s: shape differs from encodec_params", name);
        int64_t n = 1;
        for (int r = 0; r < p->rank; r++) n *= p->shape[r];
        float *v = musae_xmalloc((size_t)n * sizeof(float));
        encodec_hash_fill(name, p->rank, p->shape, v);
        const cJSON *f4 = cJSON_GetObjectItemCaseSensitive(t, "first4_hex");
        int ok = 1;
        for (int i = 0; i < 4 && i < n; i++) ok &= v[i] == (float)strtod(cJSON_GetArrayItem(f4, i)->valuestring, NULL);
        double sum = 0, want = cJSON_GetObjectItemCaseSensitive(t, "sum_f64")->valuedouble;
        for (int64_t i = 0; i < n; i++) sum += v[i];
        ok &= fabs(sum - want) <= 1e-9 * fmax(1.0, fabs(want));
        CHECK(ok, "%s: values differ from the HF rule (sum %.17g vs %.17g)", name, sum, want);
        bad += !ok;
        checked++;
        free(v);
    }
    printf("hash generator: %d tensors checked against tensors.json, %d differ\n", checked, bad);
    free(ps);
    cJSON_Delete(root);
}

/* Encode and decode x in windows of `chunk` frames (two for the 2 s clip, so the decoder's overlap runs, and
 * the first has blocks enough for the LSTM's wavefront) with 1, 2 and 3 threads: every bit the same. */
static void test_threads(const encodec *m, const float *x, int64_t n) {
    const int dflt = omp_get_max_threads(), counts[3] = {1, 2, 3}, chunk = 90;
    int64_t *codes0 = NULL, F = 0;
    float *emb0 = NULL, *y0 = NULL;
    for (int i = 0; i < 3; i++) {
        omp_set_num_threads(counts[i]);
        encodec_encoder *e = encodec_encoder_new(m, chunk, 1);
        encodec_encoder_push(e, x, n);
        encodec_encoder_finish(e);
        const int64_t f = encodec_encoder_frames(e);
        float *y = encodec_decode_chunked(m, encodec_encoder_codes(e), f, chunk); /* asserts hop·f samples */
        if (i == 0) {
            F = f;
            codes0 = musae_xmalloc((size_t)(F * m->n_q) * sizeof(int64_t));
            emb0 = musae_xmalloc((size_t)(F * m->dim) * sizeof(float));
            memcpy(codes0, encodec_encoder_codes(e), (size_t)(F * m->n_q) * sizeof(int64_t));
            memcpy(emb0, encodec_encoder_embeddings(e), (size_t)(F * m->dim) * sizeof(float));
            y0 = y;
        } else {
            CHECK(f == F, "%d threads: %lld frames vs %lld", counts[i], (long long)f, (long long)F);
            int same = f == F && !memcmp(codes0, encodec_encoder_codes(e), (size_t)(F * m->n_q) * sizeof(int64_t)) &&
                       !memcmp(emb0, encodec_encoder_embeddings(e), (size_t)(F * m->dim) * sizeof(float));
            CHECK(same, "%d threads: codes or embeddings differ in their bits from 1 thread", counts[i]);
            int same_y = f == F && !memcmp(y0, y, (size_t)(F * m->hop) * sizeof(float));
            CHECK(same_y, "%d threads: decoded audio differs in its bits from 1 thread (max|d| %.3g)", counts[i],
                  f == F ? test_max_abs_diff(y0, y, (size_t)(F * m->hop)) : -1.0);
            printf("%d threads vs 1, windows of %d frames: codes and embeddings %s, audio %s\n", counts[i], chunk,
                   same ? "bitwise equal" : "DIFFER", same_y ? "bitwise equal" : "DIFFERS");
            free(y);
        }
        encodec_encoder_free(e);
    }
    omp_set_num_threads(dflt);
    free(codes0), free(emb0), free(y0);
}

/* encodec_encode_batch on three clips, two of 4.5 s (two LSTM calls each: 224 rows, then 1) around one of
 * 2 s, with 1, 2 and 3 threads: each clip's codes and embeddings byte-identical to encoding it alone. */
static void test_batch(const encodec *m, const float *x, int64_t n) {
    const int64_t nl = 144000; /* 225 frames */
    float *a = musae_xmalloc((size_t)nl * sizeof(float)), *b = musae_xmalloc((size_t)nl * sizeof(float));
    for (int64_t i = 0; i < nl; i++) {
        a[i] = x[i % n];
        b[i] = 0.7f * x[(n - 1) - (i * 7) % n]; /* another signal of the same length */
    }
    const float *clips[3] = {a, x, b};
    const int64_t lens[3] = {nl, n, nl};
    int64_t *codes1[3], f1[3];
    float *emb1[3];
    for (int c = 0; c < 3; c++) {
        encodec_encoder *e = encodec_encoder_new(m, 0, 1);
        encodec_encoder_push(e, clips[c], lens[c]);
        encodec_encoder_finish(e);
        f1[c] = encodec_encoder_frames(e);
        codes1[c] = musae_xmalloc((size_t)(f1[c] * m->n_q) * sizeof(int64_t));
        emb1[c] = musae_xmalloc((size_t)(f1[c] * m->dim) * sizeof(float));
        memcpy(codes1[c], encodec_encoder_codes(e), (size_t)(f1[c] * m->n_q) * sizeof(int64_t));
        memcpy(emb1[c], encodec_encoder_embeddings(e), (size_t)(f1[c] * m->dim) * sizeof(float));
        encodec_encoder_free(e);
    }
    CHECK(f1[0] == 225 && f1[1] == (n + 639) / 640, "alone: %lld and %lld frames", (long long)f1[0], (long long)f1[1]);
    CHECK(memcmp(codes1[0], codes1[2], (size_t)(f1[0] * m->n_q) * sizeof(int64_t)) != 0,
          "the two clips of one length have the same codes: the batch check would not see them swapped");
    const int dflt = omp_get_max_threads(), counts[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        omp_set_num_threads(counts[i]);
        int64_t *codes[3], f[3];
        float *emb[3];
        encodec_encode_batch(m, 3, clips, lens, codes, f, emb);
        for (int c = 0; c < 3; c++) {
            const int same = f[c] == f1[c] &&
                             !memcmp(codes[c], codes1[c], (size_t)(f1[c] * m->n_q) * sizeof(int64_t)) &&
                             !memcmp(emb[c], emb1[c], (size_t)(f1[c] * m->dim) * sizeof(float));
            CHECK(same, "batch of 3, %d threads: clip %d (%lld samples) differs in its bits from encoding it alone",
                  counts[i], c, (long long)lens[c]);
            free(codes[c]), free(emb[c]);
        }
        printf("batch of 3 clips (225, 100, 225 frames), %d thread(s): checked bitwise against each alone\n", counts[i]);
    }
    omp_set_num_threads(dflt);
    for (int c = 0; c < 3; c++) free(codes1[c]), free(emb1[c]);
    free(a), free(b);
}

int main(void) {
    musae_log_set_level(MUSAE_LOG_WARN);
    char cfg_dir[512], gold[512], err[512], path[600];
    snprintf(cfg_dir, sizeof cfg_dir, "%s/encodec32k-hash", test_fixtures());
    snprintf(gold, sizeof gold, "%s/golden/encodec32k_hash.safetensors", test_fixtures());
    musae_encodec_config cfg;
    if (musae_encodec_config_load(&cfg, cfg_dir, err, sizeof err)) { /* a committed fixture: missing fails */
        fprintf(stderr, "%s (regenerate with tools/reference/make_encodec32k_hash.py)\n", err);
        return 1;
    }
    CHECK(cfg.hop_length == 640 && cfg.num_quantizers == 4 && cfg.num_filters == 64, "config: hop %d n_q %d",
          cfg.hop_length, cfg.num_quantizers);
    snprintf(path, sizeof path, "%s/tensors.json", cfg_dir);
    test_generator(&cfg, path);

    /* the checkpoint as a safetensors image in memory, through the same loader as a file */
    double t0 = musae_now();
    size_t size;
    uint8_t *img = encodec_hash_image(&cfg, 0, &size);
    musae_st st;
    CHECK(musae_st_parse(&st, "encodec32k-hash (in memory)", img, size, err, sizeof err) == 0, "%s", err);
    encodec m;
    encodec_load_st(&m, &cfg, &st, "", musae_ops_cpu());
    musae_st_close(&st);
    free(img);
    printf("built and loaded the hash checkpoint (%.0f MB) in %.2f s\n", (double)size / 1e6, musae_now() - t0);

    musae_st g;
    st_open_or_die(&g, gold);
    int64_t sa[8], sc[8], se[8], sd[8];
    float *x = st_load_or_die(&g, "audio", MUSAE_F32, sa);
    int64_t *gc = st_load_or_die(&g, "codes", MUSAE_I64, sc);
    float *ge = st_load_or_die(&g, "embeddings", MUSAE_F32, se);
    float *gd = st_load_or_die(&g, "decoded", MUSAE_F32, sd);
    const int64_t N = sa[2], F = sc[2], D = se[1];

    t0 = musae_now();
    encodec_encoder *e = encodec_encoder_new(&m, 0, 1);
    encodec_encoder_push(e, x, N);
    encodec_encoder_finish(e);
    double t_enc = musae_now() - t0;
    CHECK(encodec_encoder_frames(e) == F, "%lld frames, expected %lld", (long long)encodec_encoder_frames(e), (long long)F);
    const int64_t *codes = encodec_encoder_codes(e);
    const float *emb = encodec_encoder_embeddings(e);
    int64_t bad = 0;
    for (int64_t i = 0; i < 4 * F; i++) bad += codes[i] != gc[i];
    double de = 0;
    for (int64_t f = 0; f < F; f++)
        for (int64_t d = 0; d < D; d++) de = fmax(de, fabs((double)emb[f * D + d] - ge[d * F + f]));
    CHECK(bad == 0, "%lld of %lld codes differ from HF", (long long)bad, (long long)(4 * F));
    CHECK(de <= 1e-4, "embeddings max abs diff %.3g", de);

    t0 = musae_now();
    float *y = encodec_decode_all(&m, gc, F);
    double t_dec = musae_now() - t0;
    CHECK(sd[2] == 640 * F, "golden length");
    double dd = test_max_abs_diff(y, gd, (size_t)(640 * F));
    CHECK(dd <= 1e-4, "decoded max abs diff %.3g vs HF", dd);
    printf("encodec 32 kHz (hash weights), %lld samples: codes equal %s, embeddings max|d| %.2e, decoded max|d| %.2e "
           "(%lld samples); encode %.2f s, decode %.2f s\n",
           (long long)N, bad ? "NO" : "yes", de, dd, (long long)(640 * F), t_enc, t_dec);
    free(y);
    encodec_encoder_free(e);
    test_threads(&m, x, N);
    test_batch(&m, x, N);
    free(x), free(gc), free(ge), free(gd);
    musae_st_close(&g);
    encodec_free(&m);
    TEST_END();
}
