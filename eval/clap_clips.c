/* CLAP as a judge of FEATURES.h5's clips: model identity, texts, clip embeddings through the cache
 * (eval/clap_clips.h). */
#include "eval/clap_clips.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/excerpt.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/core/sha256.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"

enum { TEXT_BATCH = 64 };
static const double k_save_every_s = 30.0;

int clap_judge_open(clap_judge *j, const char *dir, const musae_ops *ops, char *err, size_t errlen) {
    memset(j, 0, sizeof *j);
    struct stat sb;
    const int missing = stat(dir, &sb) != 0;
    if (missing || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "--clap %s: %s", dir, missing ? strerror(errno) : "not a folder (the HF CLAP folder)");
        return -1;
    }
    /* the identity hashes what decides the numbers: the config and the weights, whichever file holds them */
    static const char *const weights[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"};
    char path[4400], h_cfg[65], h_w[65] = "";
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (musae_sha256_file(path, h_cfg)) {
        snprintf(err, errlen, "--clap %s: config.json: %s", dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof weights / sizeof *weights && !h_w[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, weights[i]);
        if (access(path, F_OK) == 0 && musae_sha256_file(path, h_w)) {
            snprintf(err, errlen, "--clap %s: %s: %s", dir, weights[i], strerror(errno));
            return -1;
        }
    }
    if (musae_clap_open(&j->m, dir, ops, err, errlen)) return -1;
    musae_sha256 s;
    musae_sha256_init(&s);
    musae_sha256_update(&s, h_cfg, 64);
    musae_sha256_update(&s, h_w, strlen(h_w));
    musae_sha256_hex(&s, j->sha256);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    const char *base = dir;
    for (size_t i = 0; i < len; i++)
        if (dir[i] == '/') base = dir + i + 1;
    snprintf(j->identity, sizeof j->identity, "%.*s:%.16s", (int)(dir + len - base), base, j->sha256);
    return 0;
}

void clap_judge_close(clap_judge *j) {
    musae_clap_close(&j->m);
    memset(j, 0, sizeof *j);
}

int clap_judge_texts(clap_judge *j, const char *const *texts, int64_t n, const char *what, float *embeds, char *err,
                     size_t errlen) {
    const int64_t L = MUSAE_CLAP_TEXT_LEN, D = j->m.cfg.proj_dim;
    int64_t *ids = musae_xmalloc((size_t)(TEXT_BATCH * L) * sizeof *ids);
    int64_t *mask = musae_xmalloc((size_t)(TEXT_BATCH * L) * sizeof *mask);
    int rc = 0;
    for (int64_t b0 = 0; b0 < n && !rc; b0 += TEXT_BATCH) {
        const int64_t nb = n - b0 < TEXT_BATCH ? n - b0 : TEXT_BATCH;
        for (int64_t i = 0; i < nb && !rc; i++) {
            char name[512];
            snprintf(name, sizeof name, "%s: text %lld '%.200s'", what, (long long)(b0 + i + 1), texts[b0 + i]);
            int64_t n_real;
            rc = musae_clap_tokenize(j->m.tok, texts[b0 + i], strlen(texts[b0 + i]), name, ids + i * L, mask + i * L,
                                     &n_real, err, errlen);
            if (!rc && n_real > L)
                LOG_WARN("%s: %lld tokens, truncated to CLAP's %lld", name, (long long)n_real, (long long)L);
        }
        if (!rc) musae_clap_text_embed(&j->m, ids, mask, nb, embeds + b0 * D, NULL);
    }
    free(ids), free(mask);
    return rc ? -1 : 0;
}

int clap_clips_check_store(const musae_features *f, const char *features_path, const char *acts, char *err,
                           size_t errlen) {
    musae_store *s = musae_store_open(acts, err, errlen);
    if (!s) return -1;
    const int64_t n = musae_store_get_info(s)->n_clips;
    int rc = 0;
    for (int64_t c = 0; c < f->C && !rc; c++) {
        const int64_t k = f->clip_store_index[c];
        char *name = k >= 0 && k < n ? musae_store_clip_path(s, k) : NULL;
        if (!name || strcmp(name, f->clip_path[c])) {
            snprintf(err, errlen,
                     "%s: clip %lld '%s' is store clip %lld, but %s %s (not the store it was analysed from; --acts "
                     "names the right one)",
                     features_path, (long long)c, f->clip_path[c], (long long)k, acts,
                     name ? "names that clip differently" : "has no such clip");
            rc = -1;
        }
        free(name);
    }
    musae_store_close(s);
    return rc;
}

void clap_clips_default_cache(const clap_judge *j, const char *features_path, char *out, size_t cap) {
    snprintf(out, cap, "%s.clap-%.16s.safetensors", features_path, j->sha256);
}

double clap_mean_sim(const float *t, const float *audio, const int64_t *rows, int64_t n, int64_t D) {
    if (n == 0) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *a = audio + rows[i] * D;
        double d = 0;
        for (int64_t k = 0; k < D; k++) d += (double)t[k] * a[k];
        s += d;
    }
    return s / (double)n;
}

/* ---- the cache ---------------------------------------------------------------------------------------------- */

typedef struct {
    char **keys;   /* [n] */
    float *embeds; /* [n, D] */
    int64_t n, cap, D;
} cache_t;

typedef struct {
    const char *key;
    int64_t row;
} key_row;

static int by_key(const void *a, const void *b) { return strcmp(((const key_row *)a)->key, ((const key_row *)b)->key); }

static void cache_push(cache_t *c, char *key, const float *e) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->keys = musae_xrealloc(c->keys, (size_t)c->cap * sizeof *c->keys);
        c->embeds = musae_xrealloc(c->embeds, (size_t)(c->cap * c->D) * sizeof *c->embeds);
    }
    c->keys[c->n] = key;
    memcpy(c->embeds + c->n * c->D, e, (size_t)c->D * sizeof *e);
    c->n++;
}

/* The cache's rows when it is this model's, else nothing (a warning says why, unless the file is absent). */
static void cache_load(cache_t *c, const char *path, const clap_judge *j) {
    if (access(path, F_OK)) return;
    musae_st st;
    char err[1024];
    if (musae_st_open(&st, path, err, sizeof err)) {
        LOG_WARN("%s: unreadable cache, replaced: %s", path, err);
        return;
    }
    const char *fmt = musae_st_meta(&st, "format"), *sha = musae_st_meta(&st, "model_sha256");
    const char *keys = musae_st_meta(&st, "keys");
    cJSON *jk = keys ? cJSON_Parse(keys) : NULL;
    musae_st_tensor *t = musae_st_find(&st, "embeds");
    const int64_t nk = cJSON_GetArraySize(jk);
    const char *why = !fmt || strcmp(fmt, "musae-clap-cache") ? "not a musae-clap-cache file"
                      : !sha || strcmp(sha, j->sha256)        ? NULL
                      : !cJSON_IsArray(jk)                    ? "metadata 'keys' is not a JSON list"
                      : nk && (!t || t->rank != 2 || t->shape[0] != nk || t->shape[1] != c->D)
                          ? "'embeds' does not have one row of the model's width per key"
                          : NULL;
    if (why) LOG_WARN("%s: %s; replaced", path, why);
    else if (strcmp(sha, j->sha256)) LOG_WARN("%s: embeddings of another CLAP model; replaced", path);
    else if (nk) {
        float *e = musae_xmalloc((size_t)(nk * c->D) * sizeof *e);
        musae_st_read(&st, t, e, MUSAE_F32);
        for (int64_t i = 0; i < nk; i++) {
            const cJSON *k = cJSON_GetArrayItem(jk, (int)i);
            if (cJSON_IsString(k)) cache_push(c, musae_xstrdup(k->valuestring), e + i * c->D);
        }
        free(e);
    }
    cJSON_Delete(jk);
    musae_st_close(&st);
}

static int cache_save(const cache_t *c, const char *path, const clap_judge *j, char *err, size_t errlen) {
    musae_st_writer *w = musae_st_writer_new();
    if (c->n) {
        const int64_t shape[2] = {c->n, c->D};
        musae_st_writer_add(w, "embeds", MUSAE_F32, 2, shape, c->embeds);
    }
    cJSON *jk = cJSON_CreateArray();
    for (int64_t i = 0; i < c->n; i++) cJSON_AddItemToArray(jk, cJSON_CreateString(c->keys[i]));
    char *keys = cJSON_PrintUnformatted(jk);
    musae_st_writer_meta(w, "format", "musae-clap-cache");
    musae_st_writer_meta(w, "model_sha256", j->sha256);
    musae_st_writer_meta(w, "keys", keys);
    musae_st_writer_meta(w, "musae_version", MUSAE_VERSION);
    const int rc = musae_st_writer_save(w, path, err, errlen);
    musae_st_writer_free(w);
    free(keys);
    cJSON_Delete(jk);
    return rc;
}

typedef struct {
    char *src; /* malloc'd */
    double a, b;
} clip_where;

/* Where clip row c's audio is and its cache key (malloc'd); NULL with the reason in err. */
static char *clip_key(const musae_features *f, const char *acts, int64_t c, clip_where *w, char *err, size_t errlen) {
    const char *name = f->clip_path[c];
    char file[4200];
    if (excerpt_parse_clip_name(name, file, sizeof file, &w->a, &w->b)) {
        snprintf(err, errlen, "clip %lld '%s' names no source span (\"file#t=a,b\"; clips of a generation-time capture "
                 "have no audio to embed)", (long long)c, name);
        return NULL;
    }
    char src[4200];
    excerpt_resolve_source(file, acts, src, sizeof src);
    struct stat sb;
    if (!src[0] || stat(src, &sb)) {
        snprintf(err, errlen, "%s: source of clip '%s' is missing (moved? looked beside %s too)", file, name, acts);
        return NULL;
    }
    w->src = musae_xstrdup(src);
    const long long mt = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    const size_t n = strlen(name) + 64;
    char *key = musae_xmalloc(n);
    snprintf(key, n, "%s\t%lld\t%lld", name, (long long)sb.st_size, mt);
    return key;
}

int clap_clips_embed(clap_judge *j, const musae_features *f, const char *acts, const int64_t *rows, int64_t n,
                     const char *cache, int batch, float *embeds, clap_clip_stats *st, char *err, size_t errlen) {
    const int64_t D = j->m.cfg.proj_dim, F = j->m.fe.frames * j->m.fe.n_mels;
    memset(st, 0, sizeof *st);
    cache_t c = {.D = D};
    cache_load(&c, cache, j);
    key_row *sorted = musae_xmalloc((size_t)(c.n + 1) * sizeof *sorted);
    for (int64_t i = 0; i < c.n; i++) sorted[i] = (key_row){c.keys[i], i};
    qsort(sorted, (size_t)c.n, sizeof *sorted, by_key);
    const int64_t n_sorted = c.n;

    /* each distinct clip once: its cache row, or a place in the work list */
    int64_t *slot = musae_xmalloc((size_t)(f->C + 1) * sizeof *slot); /* cache row of clip c, -1 not yet known */
    for (int64_t i = 0; i < f->C; i++) slot[i] = -1;
    int64_t *pending = musae_xmalloc((size_t)(n + 1) * sizeof *pending), n_pending = 0;
    char **pending_key = musae_xmalloc((size_t)(n + 1) * sizeof *pending_key);
    clip_where *where = musae_xmalloc((size_t)(n + 1) * sizeof *where);
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        const int64_t r = rows[i];
        MUSAE_ASSERT(r >= 0 && r < f->C, "clip row %lld of %lld", (long long)r, (long long)f->C);
        if (slot[r] != -1) continue;
        clip_where w;
        char *key = clip_key(f, acts, r, &w, err, errlen);
        if (!key) {
            rc = -1;
            break;
        }
        const key_row probe = {key, 0};
        const key_row *hit = bsearch(&probe, sorted, (size_t)n_sorted, sizeof *sorted, by_key);
        st->n_clips++;
        if (hit) {
            slot[r] = hit->row;
            st->n_cached++;
            free(key), free(w.src);
        } else {
            slot[r] = -2 - n_pending; /* filled when embedded */
            where[n_pending] = w;
            pending_key[n_pending] = key;
            pending[n_pending++] = r;
        }
    }

    /* the rest, in batches; the cache is saved every k_save_every_s and at the end */
    if (!rc && n_pending) {
        const double max_s = (double)j->m.fe.max_samples / j->m.fe.sampling_rate;
        float *feats = musae_xmalloc((size_t)((int64_t)batch * F) * sizeof *feats);
        float *emb = musae_xmalloc((size_t)((int64_t)batch * D) * sizeof *emb);
        musae_progress p;
        musae_progress_init(&p, "clap", "clips", n_pending);
        const double t0 = musae_now();
        double last_save = t0;
        int64_t done = 0;
        for (int64_t b0 = 0; b0 < n_pending && !rc; b0 += batch) {
            const int64_t nb = n_pending - b0 < batch ? n_pending - b0 : batch;
            for (int64_t i = 0; i < nb && !rc; i++) {
                const clip_where *w = &where[b0 + i];
                /* the resampler's tail stays past the kept samples, as musae clap reads a file */
                const double dur = fmin(w->b - w->a, max_s + 0.5);
                int64_t ns = 0;
                float *x = musae_audio_load(w->src, j->m.fe.sampling_rate, w->a, dur, &ns, err, errlen);
                if (x && ns == 0) snprintf(err, errlen, "%s: no samples at %g s (clip '%s')", w->src, w->a,
                                           f->clip_path[pending[b0 + i]]);
                if (!x || ns == 0) rc = -1;
                else musae_clap_fe_features(&j->m.fe, x, ns, feats + i * F);
                free(x);
            }
            if (rc) break;
            musae_clap_audio_embed(&j->m, feats, nb, emb, NULL);
            for (int64_t i = 0; i < nb; i++) {
                slot[pending[b0 + i]] = c.n;
                cache_push(&c, pending_key[b0 + i], emb + i * D);
                pending_key[b0 + i] = NULL;
            }
            done += nb;
            musae_progress_add(&p, nb, NULL);
            if (musae_now() - last_save > k_save_every_s && b0 + nb < n_pending) {
                if (cache_save(&c, cache, j, err, errlen)) rc = -1;
                last_save = musae_now();
            }
        }
        musae_progress_finish(&p, NULL);
        st->n_embedded = done;
        st->seconds = musae_now() - t0;
        /* what was embedded is kept even when a later clip failed */
        if (done) {
            char e2[1024];
            if (cache_save(&c, cache, j, e2, sizeof e2)) {
                if (!rc) snprintf(err, errlen, "%s", e2);
                rc = -1;
            }
        }
        free(feats), free(emb);
    }
    if (!rc) {
        LOG_INFO("clap: %lld clip(s): %lld from the cache, %lld embedded in %.2f s (%.2f clips/s)",
                 (long long)st->n_clips, (long long)st->n_cached, (long long)st->n_embedded, st->seconds,
                 st->seconds > 0 ? (double)st->n_embedded / st->seconds : 0.0);
        for (int64_t i = 0; i < n; i++)
            memcpy(embeds + i * D, c.embeds + slot[rows[i]] * D, (size_t)D * sizeof *embeds);
    }
    for (int64_t i = 0; i < n_pending; i++) free(pending_key[i]), free(where[i].src);
    for (int64_t i = 0; i < c.n; i++) free(c.keys[i]);
    free(c.keys), free(c.embeds), free(sorted), free(slot), free(pending), free(pending_key), free(where);
    return rc;
}
