/* Shared pieces of the LLM labeler and scorer (eval/llm_request.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/llm_request.h"
#include "host/core/check.h"
#include "host/io/audio.h"

void llm_common_defaults(llm_common *c) {
    memset(c, 0, sizeof *c);
    c->parallel = 4;
    c->retries = 4;
    c->timeout_s = 300;
    c->backoff_s = 2;
    c->audio_rate = 16000;
    c->seconds = 10;
}

char *llm_base64(const uint8_t *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = musae_xmalloc((n + 2) / 3 * 4 + 1), *q = s;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        const uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = tab[v >> 18], *q++ = tab[v >> 12 & 63], *q++ = tab[v >> 6 & 63], *q++ = tab[v & 63];
    }
    if (i < n) {
        const uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *q++ = tab[v >> 18], *q++ = tab[v >> 12 & 63];
        *q++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return s;
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF), put16(p + 2, v >> 16); }

uint8_t *llm_wav16(const float *x, int64_t n, int rate, size_t *len) {
    const uint32_t data = (uint32_t)n * 2;
    uint8_t *w = musae_xmalloc(44 + (size_t)data);
    memcpy(w, "RIFF", 4), put32(w + 4, 36 + data), memcpy(w + 8, "WAVEfmt ", 8);
    put32(w + 16, 16), put16(w + 20, 1), put16(w + 22, 1), put32(w + 24, (uint32_t)rate);
    put32(w + 28, (uint32_t)rate * 2), put16(w + 32, 2), put16(w + 34, 16);
    memcpy(w + 36, "data", 4), put32(w + 40, data);
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i] > 1 ? 1 : x[i] < -1 ? -1 : x[i];
        put16(w + 44 + 2 * i, (uint16_t)(int16_t)lrintf(v * 32767.0f));
    }
    *len = 44 + (size_t)data;
    return w;
}

int llm_excerpt(excerpt_ctx *x, int feature, int64_t clip, int32_t peak_frame, double seconds, int rate, float **out,
                int64_t *n, char *err, size_t errlen) {
    float *a;
    int64_t na;
    excerpt_result res;
    const int rc = excerpt_audio(x, feature, clip, peak_frame, seconds, &a, &na, NULL, &res, err, errlen);
    if (rc) return rc;
    if (rate == EXCERPT_RATE) {
        *out = a, *n = na;
        return 0;
    }
    musae_resampler *rs = musae_resampler_new(EXCERPT_RATE, rate, err, errlen);
    if (!rs) {
        free(a);
        return -1;
    }
    const int64_t cap = na * rate / EXCERPT_RATE + 128;
    float *y = musae_xmalloc(sizeof(float) * (size_t)cap);
    int64_t m = musae_resampler_process(rs, a, na, y, cap);
    m += musae_resampler_process(rs, NULL, 0, y + m, cap - m);
    musae_resampler_free(rs);
    free(a);
    *out = y, *n = m;
    return 0;
}

void llm_add_audio(cJSON *content, const float *x, int64_t n, int rate) {
    size_t len;
    uint8_t *wav = llm_wav16(x, n, rate, &len);
    char *b64 = llm_base64(wav, len);
    free(wav);
    cJSON *part = cJSON_CreateObject();
    cJSON_AddStringToObject(part, "type", "input_audio");
    cJSON *ia = cJSON_AddObjectToObject(part, "input_audio");
    cJSON_AddStringToObject(ia, "data", b64);
    cJSON_AddStringToObject(ia, "format", "wav");
    cJSON_AddItemToArray(content, part);
    free(b64);
}

void llm_add_text(cJSON *content, const char *text) {
    cJSON *part = cJSON_CreateObject();
    cJSON_AddStringToObject(part, "type", "text");
    cJSON_AddStringToObject(part, "text", text);
    cJSON_AddItemToArray(content, part);
}

cJSON *llm_chat_body(const char *model, cJSON *content) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", model);
    cJSON_AddNumberToObject(b, "temperature", 0);
    cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddItemToObject(m, "content", content);
    cJSON_AddItemToArray(msgs, m);
    return b;
}
