#include "model/clap_tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>

#include "host/core/check.h"
#include "host/core/utf8.h"
#include "host/io/json.h"
#include "host/io/path.h"

/* ---- a string → int map (open addressing, FNV-1a); keys are copied into one growing arena -------------- */
typedef struct {
    uint32_t *slots; /* 0 = empty, else entry index + 1 */
    size_t cap;      /* power of two */
    size_t n;
    size_t *key_off, *key_len;
    int32_t *val;
    char *keys;
    size_t keys_len, keys_cap, ent_cap;
} strmap;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static void strmap_init(strmap *m, size_t expect) {
    memset(m, 0, sizeof *m);
    m->cap = 64;
    while (m->cap < expect * 2) m->cap <<= 1;
    m->slots = musae_xcalloc(m->cap, sizeof *m->slots);
}

static void strmap_free(strmap *m) {
    free(m->slots);
    free(m->key_off);
    free(m->key_len);
    free(m->val);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

/* Index of key's slot: the one holding it, or the empty one where it would go. */
static size_t strmap_slot(const strmap *m, const char *k, size_t n) {
    size_t i = (size_t)fnv1a(k, n) & (m->cap - 1);
    for (;;) {
        const uint32_t e = m->slots[i];
        if (!e) return i;
        if (m->key_len[e - 1] == n && !memcmp(m->keys + m->key_off[e - 1], k, n)) return i;
        i = (i + 1) & (m->cap - 1);
    }
}

static int strmap_get(const strmap *m, const char *k, size_t n, int32_t *val) {
    const uint32_t e = m->slots[strmap_slot(m, k, n)];
    if (!e) return 0;
    *val = m->val[e - 1];
    return 1;
}

/* Inserts key → val; returns 0 when the key was already present (value left unchanged). */
static int strmap_put(strmap *m, const char *k, size_t n, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) { /* grow and rehash */
        free(m->slots);
        m->cap <<= 1;
        m->slots = musae_xcalloc(m->cap, sizeof *m->slots);
        for (size_t e = 0; e < m->n; e++)
            m->slots[strmap_slot(m, m->keys + m->key_off[e], m->key_len[e])] = (uint32_t)(e + 1);
    }
    const size_t s = strmap_slot(m, k, n);
    if (m->slots[s]) return 0;
    if (m->n == m->ent_cap) {
        m->ent_cap = m->ent_cap ? 2 * m->ent_cap : 256;
        m->key_off = musae_xrealloc(m->key_off, m->ent_cap * sizeof *m->key_off);
        m->key_len = musae_xrealloc(m->key_len, m->ent_cap * sizeof *m->key_len);
        m->val = musae_xrealloc(m->val, m->ent_cap * sizeof *m->val);
    }
    if (m->keys_len + n > m->keys_cap) {
        m->keys_cap = 2 * (m->keys_len + n) + 1024;
        m->keys = musae_xrealloc(m->keys, m->keys_cap);
    }
    memcpy(m->keys + m->keys_len, k, n);
    m->key_off[m->n] = m->keys_len;
    m->key_len[m->n] = n;
    m->val[m->n] = val;
    m->keys_len += n;
    m->slots[s] = (uint32_t)(m->n + 1);
    m->n++;
    return 1;
}

/* ---- the tokenizer ------------------------------------------------------------------------------------- */
#define N_SPECIAL 5
typedef struct {
    char content[16];
    int64_t id;
    int lstrip, rstrip;
} special_token;

struct musae_clap_tokenizer {
    strmap vocab;  /* byte-level symbol (UTF-8 of the mapped code points) → id */
    strmap merges; /* "left right" → rank (line order in merges.txt) */
    int64_t n_ids;
    special_token special[N_SPECIAL]; /* <s> <pad> </s> <unk> <mask> */
    char byte_sym[256][3];            /* GPT-2 bytes_to_unicode, as UTF-8 (1 or 2 bytes, NUL-terminated) */
};
enum { SP_BOS, SP_PAD, SP_EOS, SP_UNK, SP_MASK };

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 take code points
 * 256, 257, ... in byte order, so every byte is one visible character in vocab.json. */
static void build_byte_map(musae_clap_tokenizer *t) {
    int next = 256;
    for (int b = 0; b < 256; b++) {
        const int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        const int cp = keep ? b : next++;
        char *o = t->byte_sym[b];
        if (cp < 0x80) o[0] = (char)cp, o[1] = 0;
        else o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), o[2] = 0;
    }
}

static int load_vocab(musae_clap_tokenizer *t, const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    cJSON *root;
    if (musae_json_read_object(path, 0, &root, err, errlen)) return -1;
    int rc = -1;
    strmap_init(&t->vocab, (size_t)cJSON_GetArraySize(root));
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > INT32_MAX ||
            e->valuedouble != (double)(int64_t)e->valuedouble) {
            snprintf(err, errlen, "%s: token \"%s\": the id is not an integer in 0..2^31-1", path, e->string);
            goto done;
        }
        const int64_t id = (int64_t)e->valuedouble;
        if (!strmap_put(&t->vocab, e->string, strlen(e->string), (int32_t)id)) {
            snprintf(err, errlen, "%s: token \"%s\" appears twice", path, e->string);
            goto done;
        }
        if (id + 1 > t->n_ids) t->n_ids = id + 1;
    }
    for (int b = 0; b < 256; b++) {
        int32_t id;
        if (!strmap_get(&t->vocab, t->byte_sym[b], strlen(t->byte_sym[b]), &id)) {
            snprintf(err, errlen, "%s: the byte-level symbol \"%s\" of byte 0x%02X is missing (not a byte-level BPE "
                     "vocabulary)", path, t->byte_sym[b], b);
            goto done;
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static int load_merges(musae_clap_tokenizer *t, const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    size_t n;
    char *txt = musae_read_file(path, &n, err, errlen);
    if (!txt) return -1;
    strmap_init(&t->merges, n / 8 + 16);
    int rc = -1, rank = 0, line_no = 0;
    char joined[1024];
    for (char *line = txt; line < txt + n;) {
        char *end = memchr(line, '\n', (size_t)(txt + n - line));
        if (!end) end = txt + n;
        size_t len = (size_t)(end - line);
        if (len && line[len - 1] == '\r') len--;
        line_no++;
        /* HF skips the "#version" header and blank lines */
        if (len && !(line_no == 1 && len >= 8 && !memcmp(line, "#version", 8))) {
            const char *sp = memchr(line, ' ', len);
            if (!sp || sp == line || sp == line + len - 1 || memchr(sp + 1, ' ', (size_t)(line + len - sp - 1)) ||
                len >= sizeof joined) {
                snprintf(err, errlen, "%s: line %d: expected two symbols separated by one space", path, line_no);
                goto done;
            }
            /* the merged symbol must be in the vocabulary (tokenizers refuses the file otherwise) */
            size_t jl = 0;
            memcpy(joined, line, (size_t)(sp - line));
            jl = (size_t)(sp - line);
            memcpy(joined + jl, sp + 1, (size_t)(line + len - sp - 1));
            jl += (size_t)(line + len - sp - 1);
            int32_t id;
            if (!strmap_get(&t->vocab, joined, jl, &id)) {
                snprintf(err, errlen, "%s: line %d: the merged symbol \"%.*s\" is not in vocab.json", path, line_no,
                         (int)jl, joined);
                goto done;
            }
            strmap_put(&t->merges, line, len, rank++); /* a repeated pair keeps its first (lowest) rank */
        }
        line = end + 1;
    }
    rc = 0;
done:
    free(txt);
    return rc;
}

/* tokenizer.json's added_tokens override the lstrip/rstrip defaults (and give ids for tokens vocab.json
 * lacks). A missing file is fine: vocab.json + merges.txt is a complete RobertaTokenizer. */
static int load_added(musae_clap_tokenizer *t, const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cJSON *root;
    if (musae_json_read_object(path, 1, &root, err, errlen)) return -1;
    if (!root) return 0;
    int rc = -1;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added)) {
        snprintf(err, errlen, "%s: added_tokens: expected an array", path);
        goto done;
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(c) || !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX) {
            snprintf(err, errlen, "%s: added_tokens: an entry without a string content and an integer id", path);
            goto done;
        }
        for (int s = 0; s < N_SPECIAL; s++) {
            special_token *sp = &t->special[s];
            if (strcmp(sp->content, c->valuestring)) continue;
            sp->id = (int64_t)id->valuedouble;
            sp->lstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "lstrip"));
            sp->rstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "rstrip"));
            if (sp->id + 1 > t->n_ids) t->n_ids = sp->id + 1;
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

musae_clap_tokenizer *musae_clap_tokenizer_open(const char *dir, char *err, size_t errlen) {
    musae_clap_tokenizer *t = musae_xcalloc(1, sizeof *t);
    build_byte_map(t);
    static const char *names[N_SPECIAL] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    if (load_vocab(t, dir, err, errlen)) goto fail;
    for (int s = 0; s < N_SPECIAL; s++) {
        special_token *sp = &t->special[s];
        snprintf(sp->content, sizeof sp->content, "%s", names[s]);
        sp->lstrip = s == SP_MASK; /* RobertaTokenizer's <mask> is AddedToken(lstrip=True) */
        int32_t id;
        sp->id = strmap_get(&t->vocab, names[s], strlen(names[s]), &id) ? id : -1;
    }
    if (load_merges(t, dir, err, errlen) || load_added(t, dir, err, errlen)) goto fail;
    for (int s = 0; s < N_SPECIAL; s++)
        if (t->special[s].id < 0) {
            snprintf(err, errlen, "%s/vocab.json: the special token %s is missing (a RoBERTa vocabulary has it)", dir,
                     names[s]);
            goto fail;
        }
    return t;
fail:
    musae_clap_tokenizer_close(t);
    return NULL;
}

void musae_clap_tokenizer_close(musae_clap_tokenizer *t) {
    if (!t) return;
    strmap_free(&t->vocab);
    strmap_free(&t->merges);
    free(t);
}

int64_t musae_clap_tokenizer_n_ids(const musae_clap_tokenizer *t) { return t->n_ids; }
int64_t musae_clap_tokenizer_pad_id(const musae_clap_tokenizer *t) { return t->special[SP_PAD].id; }

/* ---- pre-tokenization ----------------------------------------------------------------------------------- */
/* Decodes one code point of valid UTF-8 at s; its byte length in *n. */
static UChar32 utf8_at(const char *s, int *n) {
    const uint8_t c = (uint8_t)s[0];
    if (c < 0x80) return *n = 1, c;
    if (c < 0xE0) return *n = 2, (UChar32)(c & 0x1F) << 6 | (s[1] & 0x3F);
    if (c < 0xF0) return *n = 3, (UChar32)(c & 0x0F) << 12 | (UChar32)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    return *n = 4, (UChar32)(c & 0x07) << 18 | (UChar32)(s[1] & 0x3F) << 12 | (UChar32)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

/* \p{L}, \p{N} by general category; \s and Rust's char::is_whitespace are the White_Space property. */
static int is_letter(UChar32 c) { return (U_GET_GC_MASK(c) & U_GC_L_MASK) != 0; }
static int is_number(UChar32 c) { return (U_GET_GC_MASK(c) & U_GC_N_MASK) != 0; }
static int is_space(UChar32 c) { return u_isUWhiteSpace(c); }

enum { CLS_SPACE, CLS_LETTER, CLS_NUMBER, CLS_OTHER };
static int cls_of(UChar32 c) {
    return is_space(c) ? CLS_SPACE : is_letter(c) ? CLS_LETTER : is_number(c) ? CLS_NUMBER : CLS_OTHER;
}

/* Length in code points of the GPT-2 pattern's match at cp[i] (every position matches something). */
static int64_t regex_match(const UChar32 *cp, const int *cl, int64_t i, int64_t n) {
    if (cp[i] == '\'' && i + 1 < n) {
        static const char *suffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
        for (int s = 0; s < 7; s++) {
            const int64_t l = (int64_t)strlen(suffixes[s]);
            int64_t k = 0;
            while (k < l && i + 1 + k < n && cp[i + 1 + k] == (UChar32)suffixes[s][k]) k++;
            if (k == l) return 1 + l;
        }
    }
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional ASCII space, then a run of one class */
    const int64_t j = cp[i] == ' ' && i + 1 < n ? i + 1 : i;
    for (int c = CLS_LETTER; c <= CLS_OTHER; c++) {
        int64_t k = j;
        if (cl[k] != c) k = i; /* the space is optional: retry the run from i */
        if (cl[k] != c) continue;
        while (k < n && cl[k] == c) k++;
        return k - i;
    }
    /* "\s+(?!\S)" then "\s+": a whitespace run, giving back its last character to a following non-space */
    int64_t k = i;
    while (k < n && cl[k] == CLS_SPACE) k++;
    if (k < n && k - 1 > i) k--;
    return k - i;
}

/* ---- BPE ------------------------------------------------------------------------------------------------ */
typedef struct {
    int64_t *ids;
    int64_t n, cap;
} id_list;

static void push_id(id_list *l, int64_t id) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 128;
        l->ids = musae_xrealloc(l->ids, (size_t)l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = id;
}

/* One pre-tokenized piece (raw UTF-8 bytes) → ids: map bytes to symbols, then repeatedly merge the adjacent
 * pair of lowest rank (leftmost on ties). Ranks of pairs built from merged symbols are always higher than
 * those of their parts, so this equals tokenizers' priority-queue order. */
static void bpe_piece(const musae_clap_tokenizer *t, const char *bytes, int64_t nb, id_list *out) {
    char *s = musae_xmalloc((size_t)nb * 2 + 1);
    int64_t *off = musae_xmalloc((size_t)(nb + 1) * sizeof *off), m = 0, len = 0;
    for (int64_t b = 0; b < nb; b++) {
        const char *sym = t->byte_sym[(uint8_t)bytes[b]];
        off[m++] = len;
        for (const char *p = sym; *p; p++) s[len++] = *p;
    }
    off[m] = len;
    char *key = musae_xmalloc((size_t)len + 2);
    while (m > 1) {
        int32_t best = INT32_MAX;
        int64_t at = -1;
        for (int64_t i = 0; i + 1 < m; i++) {
            const int64_t la = off[i + 1] - off[i], lb = off[i + 2] - off[i + 1];
            memcpy(key, s + off[i], (size_t)la);
            key[la] = ' ';
            memcpy(key + la + 1, s + off[i + 1], (size_t)lb);
            int32_t r;
            if (strmap_get(&t->merges, key, (size_t)(la + 1 + lb), &r) && r < best) best = r, at = i;
        }
        if (at < 0) break;
        memmove(off + at + 1, off + at + 2, (size_t)(m - at - 1) * sizeof *off); /* symbols at, at+1 → one */
        m--;
    }
    for (int64_t i = 0; i < m; i++) {
        int32_t id;
        /* every byte symbol and every merge result was checked against vocab.json at load */
        MUSAE_ASSERT(strmap_get(&t->vocab, s + off[i], (size_t)(off[i + 1] - off[i]), &id), "BPE symbol not in vocab");
        push_id(out, id);
    }
    free(key);
    free(off);
    free(s);
}

/* A stretch of text with no special tokens: pre-tokenize and BPE each piece. */
static void encode_stretch(const musae_clap_tokenizer *t, const char *text, int64_t len, id_list *out) {
    if (len <= 0) return;
    UChar32 *cp = musae_xmalloc((size_t)len * sizeof *cp);
    int *cl = musae_xmalloc((size_t)len * sizeof *cl);
    int64_t *at = musae_xmalloc((size_t)(len + 1) * sizeof *at), n = 0;
    for (int64_t b = 0; b < len;) {
        int k;
        cp[n] = utf8_at(text + b, &k);
        cl[n] = cls_of(cp[n]);
        at[n++] = b;
        b += k;
    }
    at[n] = len;
    for (int64_t i = 0; i < n;) {
        const int64_t k = regex_match(cp, cl, i, n);
        bpe_piece(t, text + at[i], at[i + k] - at[i], out);
        i += k;
    }
    free(at);
    free(cl);
    free(cp);
}

/* Whitespace (Rust's char::is_whitespace) ending right before byte `end`, not before `lo`: its start. */
static int64_t strip_left(const char *text, int64_t lo, int64_t end) {
    while (end > lo) {
        int64_t b = end - 1;
        while (b > lo && ((uint8_t)text[b] & 0xC0) == 0x80) b--;
        int k;
        if (!is_space(utf8_at(text + b, &k))) break;
        end = b;
    }
    return end;
}

static int64_t strip_right(const char *text, int64_t start, int64_t len) {
    while (start < len) {
        int k;
        if (!is_space(utf8_at(text + start, &k))) break;
        start += k;
    }
    return start;
}

int musae_clap_tokenize(const musae_clap_tokenizer *t, const char *text, size_t len, const char *what,
                        int64_t ids[MUSAE_CLAP_TEXT_LEN], int64_t mask[MUSAE_CLAP_TEXT_LEN], int64_t *n_real,
                        char *err, size_t errlen) {
    const int64_t bad = musae_utf8_invalid_at(text, len);
    if (bad >= 0) {
        snprintf(err, errlen, "%s: invalid UTF-8 at byte %lld", what, (long long)bad);
        return -1;
    }
    id_list body = {0};
    const int64_t n = (int64_t)len;
    int64_t done = 0; /* bytes consumed (by stretches or special tokens) */
    for (int64_t p = 0; p < n;) {
        /* leftmost, then longest, special token starting at or after p */
        int best = -1;
        int64_t best_at = n;
        for (int64_t q = p; q < n && best < 0; q++)
            for (int s = 0; s < N_SPECIAL; s++) {
                const size_t l = strlen(t->special[s].content);
                if ((size_t)(n - q) >= l && !memcmp(text + q, t->special[s].content, l) &&
                    (best < 0 || l > strlen(t->special[best].content)))
                    best = s, best_at = q;
            }
        if (best < 0) break;
        const special_token *sp = &t->special[best];
        const int64_t end = best_at + (int64_t)strlen(sp->content);
        const int64_t start = sp->lstrip ? strip_left(text, done, best_at) : best_at;
        encode_stretch(t, text + done, start - done, &body);
        push_id(&body, sp->id);
        done = sp->rstrip ? strip_right(text, end, n) : end;
        p = done;
    }
    encode_stretch(t, text + done, n - done, &body);

    if (n_real) *n_real = body.n + 2;
    const int64_t keep = body.n < MUSAE_CLAP_TEXT_LEN - 2 ? body.n : MUSAE_CLAP_TEXT_LEN - 2;
    int64_t k = 0;
    ids[k++] = t->special[SP_BOS].id;
    for (int64_t i = 0; i < keep; i++) ids[k++] = body.ids[i];
    ids[k++] = t->special[SP_EOS].id;
    for (int64_t i = 0; i < MUSAE_CLAP_TEXT_LEN; i++) mask[i] = i < k;
    for (; k < MUSAE_CLAP_TEXT_LEN; k++) ids[k] = t->special[SP_PAD].id;
    free(body.ids);
    return 0;
}
