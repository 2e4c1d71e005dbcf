#include "model/t5_tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/utf8.h"
#include "host/io/json.h"
#include "host/io/path.h"

/* tokenizer_config.json: model_max_length and extra_ids. Absent file = HF defaults (no limit, 100). */
static int read_tokenizer_config(musae_t5_tokenizer *t, const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    cJSON *root;
    if (musae_json_read_object(path, 1, &root, err, errlen)) return -1;
    if (!root) return 0;
    int rc = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsNumber(m) || m->valuedouble < 1) {
            snprintf(err, errlen, "%s: model_max_length: expected a positive number", path);
            rc = -1;
            goto done;
        }
        /* HF writes VERY_LARGE_INTEGER (1e30) for "no limit" */
        t->model_max_length = m->valuedouble < 1e15 ? (int64_t)m->valuedouble : 0;
    }
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, "extra_ids");
    if (x && !cJSON_IsNull(x)) {
        const double v = cJSON_IsNumber(x) ? x->valuedouble : -1;
        if (v < 0 || v > 10000 || floor(v) != v) {
            snprintf(err, errlen, "%s: extra_ids: expected an integer in 0..10000", path);
            rc = -1;
            goto done;
        }
        t->n_extra_ids = (int)x->valuedouble;
    }
done:
    cJSON_Delete(root);
    return rc;
}

int musae_t5_tokenizer_open(musae_t5_tokenizer *t, const char *dir, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    t->n_extra_ids = 100;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/spiece.model", dir);
    t->spm = musae_spm_load(path, err, errlen);
    if (!t->spm) return -1;
    t->n_pieces = musae_spm_piece_size(t->spm);
    /* T5's reserved pieces, found by name as HF's converter does; their ids are 0/1/2 in every T5 model */
    static const char *names[3] = {"<pad>", "</s>", "<unk>"};
    int *slots[3] = {&t->pad_id, &t->eos_id, &t->unk_id};
    for (int i = 0; i < 3; i++) {
        *slots[i] = musae_spm_piece_to_id(t->spm, names[i]);
        if (*slots[i] < 0) {
            snprintf(err, errlen, "%s: has no piece \"%s\" (not a T5 SentencePiece model)", path, names[i]);
            musae_t5_tokenizer_close(t);
            return -1;
        }
    }
    if (read_tokenizer_config(t, dir, err, errlen)) {
        musae_t5_tokenizer_close(t);
        return -1;
    }
    return 0;
}

void musae_t5_tokenizer_close(musae_t5_tokenizer *t) {
    musae_spm_free(t->spm);
    memset(t, 0, sizeof *t);
}

int64_t musae_t5_tokenizer_n_ids(const musae_t5_tokenizer *t) { return (int64_t)t->n_pieces + t->n_extra_ids; }

/* The special token starting at text[0..len), if any: its id and byte length. The special strings have no
 * common prefixes, so the first that matches is also the longest (HF: leftmost-longest). */
static int match_special(const musae_t5_tokenizer *t, const char *text, size_t len, int64_t *id) {
    if (len < 4 || text[0] != '<') return 0;
    static const char *names[3] = {"<pad>", "</s>", "<unk>"};
    const int ids[3] = {t->pad_id, t->eos_id, t->unk_id};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (len >= n && !memcmp(text, names[i], n)) {
            *id = ids[i];
            return (int)n;
        }
    }
    static const char ex[] = "<extra_id_";
    const size_t nex = sizeof ex - 1;
    if (len < nex + 2 || memcmp(text, ex, nex)) return 0;
    size_t j = nex;
    long v = 0;
    while (j < len && j < nex + 6 && text[j] >= '0' && text[j] <= '9') v = v * 10 + (text[j++] - '0');
    /* digits as str(N) writes them: at least one, no leading zero */
    if (j == nex || j >= len || text[j] != '>' || (text[nex] == '0' && j > nex + 1) || v >= t->n_extra_ids) return 0;
    *id = (int64_t)t->n_pieces + t->n_extra_ids - 1 - v;
    return (int)(j + 1);
}

int musae_t5_tokenize(const musae_t5_tokenizer *t, const char *text, size_t len, int64_t max_tokens,
                      const char *what, int64_t **ids_out, int64_t *n_out, char *err, size_t errlen) {
    MUSAE_ASSERT(max_tokens >= 0, "max_tokens %lld", (long long)max_tokens);
    int64_t bad = musae_utf8_invalid_at(text, len);
    if (bad >= 0) {
        snprintf(err, errlen, "%s: not valid UTF-8 (byte 0x%02x at offset %lld)", what,
                 (unsigned char)text[bad], (long long)bad);
        return -1;
    }
    int64_t n = 0, cap = 16;
    int64_t *ids = musae_xmalloc((size_t)cap * sizeof *ids);
    size_t seg = 0; /* start of the text not yet encoded */
    for (size_t i = 0; i <= len; i++) {
        int64_t sid = -1;
        int m = i < len ? match_special(t, text + i, len - i, &sid) : 0;
        if (!m && i < len) continue;
        if (musae_spm_encode(t->spm, text + seg, i - seg, &ids, &n, &cap, err, errlen)) {
            free(ids);
            return -1;
        }
        if (m) {
            if (n == cap) ids = musae_xrealloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            ids[n++] = sid;
            i += (size_t)m - 1;
            seg = i + 1;
        }
    }
    if (n == cap) ids = musae_xrealloc(ids, (size_t)(cap + 1) * sizeof *ids);
    ids[n++] = t->eos_id;
    if (max_tokens > 0 && n > max_tokens) {
        LOG_WARN("%s: %lld tokens, truncated to %lld (the last one </s>)", what, (long long)n, (long long)max_tokens);
        n = max_tokens;
        ids[n - 1] = t->eos_id;
    } else if (max_tokens == 0 && t->model_max_length > 0 && n > t->model_max_length) {
        LOG_WARN("%s: %lld tokens > model_max_length %lld (tokenizer_config.json); all are kept, as HF MusicGen "
                 "does (set a token limit to truncate)",
                 what, (long long)n, (long long)t->model_max_length);
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

int musae_t5_tokenize_batch(const musae_t5_tokenizer *t, int n, const char *const *texts, int64_t max_tokens,
                            musae_t5_tokens *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (n < 1) {
        snprintf(err, errlen, "no prompts (give at least one)");
        return -1;
    }
    int64_t **rows = musae_xcalloc((size_t)n, sizeof *rows);
    int64_t *lens = musae_xcalloc((size_t)n, sizeof *lens);
    int64_t L = 0;
    int rc = 0;
    for (int b = 0; b < n && !rc; b++) {
        char what[32];
        snprintf(what, sizeof what, "prompt %d", b + 1);
        rc = musae_t5_tokenize(t, texts[b], strlen(texts[b]), max_tokens, what, &rows[b], &lens[b], err, errlen);
        if (!rc && lens[b] > L) L = lens[b];
    }
    if (!rc) {
        out->batch = n;
        out->len = L;
        out->ids = musae_xmalloc((size_t)(n * L) * sizeof *out->ids);
        out->mask = musae_xcalloc((size_t)(n * L), sizeof *out->mask);
        for (int b = 0; b < n; b++)
            for (int64_t s = 0; s < L; s++) {
                out->ids[b * L + s] = s < lens[b] ? rows[b][s] : t->pad_id;
                out->mask[b * L + s] = s < lens[b];
            }
    }
    for (int b = 0; b < n; b++) free(rows[b]);
    free(rows);
    free(lens);
    return rc;
}

void musae_t5_tokens_free(musae_t5_tokens *b) {
    free(b->ids);
    free(b->mask);
    memset(b, 0, sizeof *b);
}
