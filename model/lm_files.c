#include "model/lm_files.h"

#include <math.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/safetensors.h"

static musae_st_tensor *need(musae_st *st, const char *path, const char *name, const char *dtype, int rank) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t) musae_fail("%s: no tensor '%s'", path, name);
    if (dtype && strcmp(t->dtype, dtype))
        musae_fail("%s: tensor '%s' has dtype %s, expected %s", path, name, t->dtype, dtype);
    if (t->rank != rank) {
        char got[128];
        musae_shape_str(t->rank, t->shape, got, sizeof got);
        musae_fail("%s: tensor '%s' has shape %s, expected rank %d", path, name, got, rank);
    }
    return t;
}

int mg_codes_read(const char *path, int64_t K, int64_t V, int64_t **codes, int64_t *B, int64_t *F, char *err,
                  size_t errlen) {
    *codes = NULL;
    musae_st st;
    if (musae_st_open(&st, path, err, errlen)) return -1;
    const musae_st_tensor *t = musae_st_find(&st, "codes");
    char shape[128] = "";
    if (t) musae_shape_str(t->rank, t->shape, shape, sizeof shape);
    if (!t)
        snprintf(err, errlen, "%s: no tensor 'codes' (expected int64 [B, %lld, F])", path, (long long)K);
    else if (strcmp(t->dtype, "I64"))
        snprintf(err, errlen, "%s: tensor 'codes' has dtype %s, expected I64", path, t->dtype);
    else if (t->rank != 3)
        snprintf(err, errlen, "%s: tensor 'codes' has shape %s, expected [B, %lld, F]", path, shape, (long long)K);
    else if (t->shape[1] != K)
        snprintf(err, errlen, "%s: tensor 'codes' has %lld codebooks, the model has %lld (shape %s is [B, K, F])",
                 path, (long long)t->shape[1], (long long)K, shape);
    else if (t->shape[0] < 1 || t->shape[2] < 1)
        snprintf(err, errlen, "%s: tensor 'codes' is empty (shape %s)", path, shape);
    else {
        const int64_t n = musae_st_numel(t);
        int64_t *c = musae_xmalloc((size_t)n * sizeof(int64_t));
        musae_st_read(&st, t, c, MUSAE_I64);
        *B = t->shape[0];
        *F = t->shape[2];
        for (int64_t i = 0; i < n && !*codes; i++)
            if (c[i] < 0 || c[i] >= V) {
                snprintf(err, errlen, "%s: codes[%lld, %lld, %lld] = %lld is outside 0..%lld", path,
                         (long long)(i / (*F * K)), (long long)(i / *F % K), (long long)(i % *F), (long long)c[i],
                         (long long)V - 1);
                free(c);
                musae_st_close(&st);
                return -1;
            }
        *codes = c;
    }
    musae_st_close(&st);
    return *codes ? 0 : -1;
}

int64_t *mg_read_codes(const char *path, int64_t K, int64_t V, int64_t *B, int64_t *F) {
    char err[1400];
    int64_t *c;
    if (mg_codes_read(path, K, V, &c, B, F, err, sizeof err)) musae_fail("%s", err);
    return c;
}

void mg_write_codes(const char *path, const int64_t *codes, int64_t B, int64_t K, int64_t F, const char *const *meta,
                    int n_meta) {
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "codes", MUSAE_I64, 3, (int64_t[]){B, K, F}, codes);
    for (int i = 0; i < n_meta; i++) musae_st_writer_meta(w, meta[2 * i], meta[2 * i + 1]);
    char err[1024];
    if (musae_st_writer_save(w, path, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);
}

void mg_read_text_states(const char *path, int64_t H, mg_text_states *out) {
    char err[1024];
    musae_st st;
    if (musae_st_open(&st, path, err, sizeof err)) musae_fail("%s", err);
    musae_st_tensor *ts = need(&st, path, "text_states", NULL, 3);
    if (strcmp(ts->dtype, "F32") && strcmp(ts->dtype, "F16") && strcmp(ts->dtype, "BF16"))
        musae_fail("%s: tensor 'text_states' has dtype %s, expected F32", path, ts->dtype);
    if (ts->shape[2] != H)
        musae_fail("%s: tensor 'text_states' has hidden size %lld, expected %lld (the decoder's; the states must be "
                   "after enc_to_dec_proj)", path, (long long)ts->shape[2], (long long)H);
    const int64_t B = ts->shape[0], S = ts->shape[1];
    if (B < 1 || S < 1) musae_fail("%s: tensor 'text_states' is empty", path);
    musae_st_tensor *tm = need(&st, path, "text_mask", "I64", 2);
    if (tm->shape[0] != B || tm->shape[1] != S)
        musae_fail("%s: tensor 'text_mask' has shape [%lld, %lld], expected [%lld, %lld] (as text_states)", path,
                   (long long)tm->shape[0], (long long)tm->shape[1], (long long)B, (long long)S);
    out->B = B, out->S = S, out->H = H;
    out->states = musae_xmalloc((size_t)(B * S * H) * sizeof(float));
    musae_st_read(&st, ts, out->states, MUSAE_F32);
    for (int64_t i = 0; i < B * S * H; i++)
        if (!isfinite(out->states[i]))
            musae_fail("%s: text_states[%lld, %lld, %lld] is not finite", path, (long long)(i / (S * H)),
                       (long long)(i / H % S), (long long)(i % H));
    int64_t *mask = musae_xmalloc((size_t)(B * S) * sizeof(int64_t));
    musae_st_read(&st, tm, mask, MUSAE_I64);
    out->mask = musae_xmalloc((size_t)(B * S) * sizeof(float));
    for (int64_t i = 0; i < B * S; i++) {
        if (mask[i] != 0 && mask[i] != 1)
            musae_fail("%s: text_mask[%lld, %lld] = %lld; expected 0 or 1", path, (long long)(i / S), (long long)(i % S),
                       (long long)mask[i]);
        out->mask[i] = (float)mask[i];
    }
    free(mask);
    musae_st_close(&st);
}

void mg_text_states_free(mg_text_states *t) {
    free(t->states);
    free(t->mask);
    memset(t, 0, sizeof *t);
}
