#include "model/clap.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/json.h"
#include "host/core/log.h"
#include "host/io/torch_zip.h"

/* ---- config.json ------------------------------------------------------------------------------------------ */
typedef struct {
    const char *path, *section;
    char *err;
    size_t errlen;
} cfg_ctx;

/* An integer field in [lo, hi]; absent = def (HF's class default) when def >= lo. */
static int cfg_int(const cfg_ctx *x, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t def,
                   int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v && def >= lo) return *out = def, 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi) {
        snprintf(x->err, x->errlen, "%s: %s.%s: expected an integer in [%lld, %lld]", x->path, x->section, key,
                 (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int cfg_num(const cfg_ctx *x, const cJSON *o, const char *key, double lo, double hi, double def, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v && def >= lo) return *out = def, 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        snprintf(x->err, x->errlen, "%s: %s.%s: expected a number in [%g, %g]", x->path, x->section, key, lo, hi);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

/* A string field that must equal `want` (absent = HF's default, which is `want`). */
static int cfg_str_is(const cfg_ctx *x, const cJSON *o, const char *key, const char *want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, want))) return 0;
    snprintf(x->err, x->errlen, "%s: %s.%s: \"%s\" is not supported (only \"%s\")", x->path, x->section, key,
             cJSON_IsString(v) ? v->valuestring : "?", want);
    return -1;
}

/* An int or [a, a] (patch_size, patch_stride); both axes must agree. */
static int cfg_square(const cfg_ctx *x, const cJSON *o, const char *key, int64_t def, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsArray(v)) {
        const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
        if (cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble != b->valuedouble ||
            a->valuedouble < 1 || a->valuedouble > 64 || a->valuedouble != floor(a->valuedouble)) {
            snprintf(x->err, x->errlen, "%s: %s.%s: expected [n, n] with the same n in 1..64", x->path, x->section, key);
            return -1;
        }
        return *out = (int64_t)a->valuedouble, 0;
    }
    return cfg_int(x, o, key, 1, 64, def, out);
}

static int int_list(const cfg_ctx *x, const cJSON *o, const char *key, int n_expect, int *out, int *n_out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n < 1 || n > MUSAE_CLAP_MAX_STAGES || (n_expect && n != n_expect)) {
        snprintf(x->err, x->errlen, "%s: %s.%s: expected a list of 1..%d integers%s", x->path, x->section, key,
                 MUSAE_CLAP_MAX_STAGES, n_expect ? " (one per stage)" : "");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 4096 || e->valuedouble != floor(e->valuedouble)) {
            snprintf(x->err, x->errlen, "%s: %s.%s[%d]: expected an integer in [1, 4096]", x->path, x->section, key, i);
            return -1;
        }
        out[i] = (int)e->valuedouble;
    }
    if (n_out) *n_out = n;
    return 0;
}

static int read_text_config(musae_clap_text_config *t, const cJSON *o, cfg_ctx *x) {
    x->section = "text_config";
    double eps;
    if (!cJSON_IsObject(o)) {
        snprintf(x->err, x->errlen, "%s: text_config: missing or not an object", x->path);
        return -1;
    }
    if (cfg_int(x, o, "vocab_size", 4, 1 << 24, 50265, &t->vocab_size) ||
        cfg_int(x, o, "hidden_size", 1, 1 << 16, 768, &t->hidden) ||
        cfg_int(x, o, "num_hidden_layers", 1, 1024, 12, &t->layers) ||
        cfg_int(x, o, "num_attention_heads", 1, 1024, 12, &t->heads) ||
        cfg_int(x, o, "intermediate_size", 1, 1 << 20, 3072, &t->ffn) ||
        cfg_int(x, o, "max_position_embeddings", 1, 1 << 20, 514, &t->max_pos) ||
        cfg_int(x, o, "type_vocab_size", 1, 1 << 16, 1, &t->type_vocab) ||
        cfg_int(x, o, "pad_token_id", 0, 1 << 24, 1, &t->pad_id) ||
        cfg_num(x, o, "layer_norm_eps", 1e-30, 1, 1e-12, &eps) || cfg_str_is(x, o, "hidden_act", "gelu"))
        return -1;
    t->ln_eps = (float)eps;
    if (t->hidden % t->heads) {
        snprintf(x->err, x->errlen, "%s: text_config: hidden_size %lld is not a multiple of num_attention_heads %lld",
                 x->path, (long long)t->hidden, (long long)t->heads);
        return -1;
    }
    /* RoBERTa's positions run from pad_id + 1 to pad_id + 77 */
    if (t->max_pos < t->pad_id + 1 + MUSAE_CLAP_TEXT_LEN) {
        snprintf(x->err, x->errlen, "%s: text_config.max_position_embeddings: %lld is too small for %d tokens after "
                 "padding_idx %lld", x->path, (long long)t->max_pos, MUSAE_CLAP_TEXT_LEN, (long long)t->pad_id);
        return -1;
    }
    return 0;
}

static int read_audio_config(musae_clap_audio_config *a, const cJSON *o, cfg_ctx *x) {
    x->section = "audio_config";
    if (!cJSON_IsObject(o)) {
        snprintf(x->err, x->errlen, "%s: audio_config: missing or not an object", x->path);
        return -1;
    }
    const cJSON *fusion = cJSON_GetObjectItemCaseSensitive(o, "enable_fusion");
    if (cJSON_IsTrue(fusion)) {
        snprintf(x->err, x->errlen, "%s: audio_config.enable_fusion: fusion models (clap-htsat-fused) are not "
                 "supported", x->path);
        return -1;
    }
    int64_t mels, spec, patch, stride, window, embed, hidden, in_ch;
    double ratio, eps;
    if (cfg_int(x, o, "num_mel_bins", 1, 4096, 64, &mels) || cfg_int(x, o, "spec_size", 1, 1 << 14, 256, &spec) ||
        cfg_square(x, o, "patch_size", 4, &patch) || cfg_square(x, o, "patch_stride", 4, &stride) ||
        cfg_int(x, o, "window_size", 1, 1024, 8, &window) ||
        cfg_int(x, o, "patch_embeds_hidden_size", 1, 1 << 16, 96, &embed) ||
        cfg_int(x, o, "hidden_size", 1, 1 << 20, 768, &hidden) ||
        cfg_int(x, o, "patch_embed_input_channels", 1, 1, 1, &in_ch) ||
        cfg_num(x, o, "mlp_ratio", 1e-3, 1e3, 4.0, &ratio) || cfg_num(x, o, "layer_norm_eps", 1e-30, 1, 1e-5, &eps) ||
        cfg_str_is(x, o, "hidden_act", "gelu") ||
        int_list(x, o, "depths", 0, a->depths, &a->n_stages) ||
        int_list(x, o, "num_attention_heads", a->n_stages, a->heads, NULL))
        return -1;
    const cJSON *qkv = cJSON_GetObjectItemCaseSensitive(o, "qkv_bias"), *pln = cJSON_GetObjectItemCaseSensitive(o, "enable_patch_layer_norm");
    const cJSON *flat = cJSON_GetObjectItemCaseSensitive(o, "flatten_patch_embeds");
    if ((qkv && !cJSON_IsTrue(qkv)) || (pln && !cJSON_IsTrue(pln)) || (flat && !cJSON_IsTrue(flat))) {
        snprintf(x->err, x->errlen, "%s: audio_config: qkv_bias, enable_patch_layer_norm and flatten_patch_embeds must "
                 "be true (as in every CLAP checkpoint)", x->path);
        return -1;
    }
    a->n_mels = (int)mels, a->spec_size = (int)spec, a->patch = (int)patch, a->window = (int)window;
    a->embed_dim = (int)embed, a->ln_eps = (float)eps;
    if (patch != stride || spec % patch) {
        snprintf(x->err, x->errlen, "%s: audio_config: patch_size %lld must equal patch_stride %lld and divide spec_size "
                 "%lld", x->path, (long long)patch, (long long)stride, (long long)spec);
        return -1;
    }
    a->freq_ratio = (int)(spec / mels);
    if (a->freq_ratio < 1 || spec % mels) {
        snprintf(x->err, x->errlen, "%s: audio_config: num_mel_bins %lld must divide spec_size %lld", x->path,
                 (long long)mels, (long long)spec);
        return -1;
    }
    /* Stage grids: HF pads grids that windows or merging do not divide, and breaks (a bias table of the wrong
     * size) when a grid is smaller than the window; every CLAP checkpoint divides evenly, so require it. */
    int64_t g = spec / patch;
    for (int s = 0; s < a->n_stages; s++) {
        const int64_t dim = embed << s;
        const int ws = (int)(g < window ? g : window);
        if (g < window || g % ws || (s + 1 < a->n_stages && g % 2) || dim % a->heads[s]) {
            snprintf(x->err, x->errlen, "%s: audio_config: stage %d (grid %lldx%lld, width %lld, %d heads) does not "
                     "divide into %lldx%lld windows%s or heads", x->path, s, (long long)g, (long long)g,
                     (long long)dim, a->heads[s], (long long)window, (long long)window,
                     s + 1 < a->n_stages ? ", 2x2 merging" : "");
            return -1;
        }
        a->mlp_hidden[s] = (int64_t)((double)dim * ratio); /* HF: int(dim * mlp_ratio) */
        if (s + 1 < a->n_stages) g /= 2;
    }
    a->hidden = (int64_t)embed << (a->n_stages - 1);
    if (hidden != a->hidden) {
        snprintf(x->err, x->errlen, "%s: audio_config.hidden_size: %lld, but the last stage is %lld wide", x->path,
                 (long long)hidden, (long long)a->hidden);
        return -1;
    }
    return 0;
}

int musae_clap_read_config(musae_clap_config *c, const char *dir, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root;
    if (musae_json_read_object(path, 0, &root, err, errlen)) return -1;
    cfg_ctx x = {.path = path, .section = "", .err = err, .errlen = errlen};
    int rc = -1;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "clap")) {
        snprintf(err, errlen, "%s: model_type: expected \"clap\" (a ClapModel checkpoint), got \"%s\"", path,
                 cJSON_IsString(mt) ? mt->valuestring : "?");
        goto done;
    }
    x.section = "config";
    if (cfg_int(&x, root, "projection_dim", 1, 1 << 16, 512, &c->proj_dim) ||
        cfg_str_is(&x, root, "projection_hidden_act", "relu") ||
        read_text_config(&c->text, cJSON_GetObjectItemCaseSensitive(root, "text_config"), &x) ||
        read_audio_config(&c->audio, cJSON_GetObjectItemCaseSensitive(root, "audio_config"), &x))
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

/* ---- weights ------------------------------------------------------------------------------------------------ */
float *musae_clap_load_host(musae_st *st, const char *name, int rank, const int64_t *shape) {
    float *h = musae_st_load(st, name, MUSAE_F32, rank, shape);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(h[i])) musae_fail("%s: tensor '%s' holds a non-finite value at element %lld", st->path, name,
                                        (long long)i);
    return h;
}

float *musae_clap_to_dev(const musae_ops *ops, float *host, int64_t n) {
    float *d = ops->alloc((size_t)n * sizeof *d);
    ops->upload(d, host, (size_t)n * sizeof *d);
    free(host);
    return d;
}

float *musae_clap_load_dev(const musae_ops *ops, musae_st *st, const char *name, int64_t d0, int64_t d1) {
    const int64_t shape[2] = {d0, d1};
    return musae_clap_to_dev(ops, musae_clap_load_host(st, name, d1 ? 2 : 1, shape), d1 ? d0 * d1 : d0);
}

float *musae_clap_load_sub(const musae_ops *ops, musae_st *st, const char *prefix, const char *suffix, int64_t d0,
                          int64_t d1) {
    char name[320];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    return musae_clap_load_dev(ops, st, name, d0, d1);
}

void musae_clap_load_qkv(const musae_ops *ops, musae_st *st, const char *p, int64_t C, float **w, float **b) {
    float *hw = musae_xmalloc((size_t)(3 * C * C) * sizeof *hw), *hb = musae_xmalloc((size_t)(3 * C) * sizeof *hb);
    static const char *parts[3] = {"query", "key", "value"};
    for (int i = 0; i < 3; i++) {
        char name[256];
        const int64_t ws[2] = {C, C}, bs[1] = {C};
        snprintf(name, sizeof name, "%s.attention.self.%s.weight", p, parts[i]);
        float *t = musae_clap_load_host(st, name, 2, ws);
        memcpy(hw + i * C * C, t, (size_t)(C * C) * sizeof *t);
        free(t);
        snprintf(name, sizeof name, "%s.attention.self.%s.bias", p, parts[i]);
        t = musae_clap_load_host(st, name, 1, bs);
        memcpy(hb + i * C, t, (size_t)C * sizeof *t);
        free(t);
    }
    *w = musae_clap_to_dev(ops, hw, 3 * C * C);
    *b = musae_clap_to_dev(ops, hb, 3 * C);
}

static void proj_load(musae_clap_proj *p, musae_st *st, const char *prefix, int64_t in, int64_t P,
                      const musae_ops *ops) {
    p->w1 = musae_clap_load_sub(ops, st, prefix, "linear1.weight", P, in);
    p->b1 = musae_clap_load_sub(ops, st, prefix, "linear1.bias", P, 0);
    p->w2 = musae_clap_load_sub(ops, st, prefix, "linear2.weight", P, P);
    p->b2 = musae_clap_load_sub(ops, st, prefix, "linear2.bias", P, 0);
}

static void proj_free(musae_clap_proj *p, const musae_ops *ops) {
    float *ws[] = {p->w1, p->b1, p->w2, p->b2};
    for (int i = 0; i < 4; i++)
        if (ws[i]) ops->free(ws[i]);
    memset(p, 0, sizeof *p);
}

static float load_scalar(musae_st *st, const char *name) {
    float *v = musae_clap_load_host(st, name, 0, NULL);
    const float s = *v;
    free(v);
    return s;
}

int musae_clap_open(musae_clap *m, const char *dir, const musae_ops *ops, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->ops = ops;
    if (musae_clap_read_config(&m->cfg, dir, err, errlen)) return -1;
    if (!(m->tok = musae_clap_tokenizer_open(dir, err, errlen))) return -1;
    if (musae_clap_fe_open(&m->fe, dir, err, errlen)) goto fail;
    const musae_clap_config *c = &m->cfg;
    if (m->fe.n_mels != c->audio.n_mels) {
        snprintf(err, errlen, "%s/preprocessor_config.json: feature_size: %d, but config.json's audio_config.num_mel_bins "
                 "is %d", dir, m->fe.n_mels, c->audio.n_mels);
        goto fail;
    }
    if (m->fe.frames > (int64_t)c->audio.spec_size * c->audio.freq_ratio) {
        snprintf(err, errlen, "%s/preprocessor_config.json: %lld frames do not fit HTSAT's %d time steps (spec_size %d x "
                 "freq_ratio %d)", dir, (long long)m->fe.frames, c->audio.spec_size * c->audio.freq_ratio,
                 c->audio.spec_size, c->audio.freq_ratio);
        goto fail;
    }
    if (musae_clap_tokenizer_n_ids(m->tok) > c->text.vocab_size) {
        snprintf(err, errlen, "%s/vocab.json: ids up to %lld, but text_config.vocab_size is %lld", dir,
                 (long long)musae_clap_tokenizer_n_ids(m->tok) - 1, (long long)c->text.vocab_size);
        goto fail;
    }
    if (musae_clap_tokenizer_pad_id(m->tok) != c->text.pad_id) {
        snprintf(err, errlen, "%s/vocab.json: <pad> is %lld, but text_config.pad_token_id is %lld", dir,
                 (long long)musae_clap_tokenizer_pad_id(m->tok), (long long)c->text.pad_id);
        goto fail;
    }
    /* model.safetensors (or a sharded index); else pytorch_model.bin (torch.save's zip, never executed) */
    musae_st st;
    char path[PATH_MAX], bin[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
    char index[PATH_MAX];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) != 0 && access(index, F_OK) != 0 && access(bin, F_OK) == 0) {
        snprintf(path, sizeof path, "%s", bin);
        if (musae_torch_zip_open(&st, bin, err, errlen)) goto fail;
    } else if (musae_st_open(&st, dir, err, errlen)) {
        goto fail;
    }
    musae_clap_text_load(&m->text, &st, &c->text, ops);
    musae_clap_htsat_load(&m->audio, &st, &c->audio, ops);
    proj_load(&m->text_proj, &st, "text_projection", c->text.hidden, c->proj_dim, ops);
    proj_load(&m->audio_proj, &st, "audio_projection", c->audio.hidden, c->proj_dim, ops);
    m->logit_scale_t = expf(load_scalar(&st, "logit_scale_t"));
    m->logit_scale_a = expf(load_scalar(&st, "logit_scale_a"));
    const int unused = musae_st_report_unused(&st, "");
    musae_st_close(&st);
    if (unused) {
        snprintf(err, errlen, "%s: %d tensor(s) are not part of the CLAP model described by config.json (listed above)",
                 path, unused);
        goto fail;
    }
    return 0;
fail:
    musae_clap_close(m);
    return -1;
}

void musae_clap_close(musae_clap *m) {
    if (m->ops) {
        if (m->text.layers) musae_clap_text_free(&m->text, &m->cfg.text, m->ops);
        if (m->audio.stages) musae_clap_htsat_free(&m->audio, &m->cfg.audio, m->ops);
        proj_free(&m->text_proj, m->ops);
        proj_free(&m->audio_proj, m->ops);
    }
    musae_clap_tokenizer_close(m->tok);
    musae_clap_fe_close(&m->fe);
    memset(m, 0, sizeof *m);
}

/* ---- forward ------------------------------------------------------------------------------------------------ */
/* pooled [B, in] (device) → out [B, P] host, unit rows */
static void project(const musae_ops *ops, const musae_clap_proj *p, const float *pooled, int64_t B, int64_t in,
                    int64_t P, float *out) {
    float *h = ops->alloc((size_t)(B * P) * sizeof *h), *y = ops->alloc((size_t)(B * P) * sizeof *y);
    ops->linear(h, pooled, p->w1, p->b1, B, P, in, 0.0f);
    ops->relu(h, h, B * P);
    ops->linear(y, h, p->w2, p->b2, B, P, P, 0.0f);
    ops->l2_normalize(y, y, B, P);
    ops->download(out, y, (size_t)(B * P) * sizeof *out);
    ops->free(h);
    ops->free(y);
}

void musae_clap_audio_embed(const musae_clap *m, const float *features, int64_t B, float *embeds, float *pooled) {
    const musae_ops *ops = m->ops;
    const int64_t Hd = m->cfg.audio.hidden;
    float *pd = ops->alloc((size_t)(B * Hd) * sizeof *pd);
    musae_clap_htsat_forward(&m->audio, &m->cfg.audio, ops, features, B, m->fe.frames, pd);
    project(ops, &m->audio_proj, pd, B, Hd, m->cfg.proj_dim, embeds);
    if (pooled) ops->download(pooled, pd, (size_t)(B * Hd) * sizeof *pooled);
    ops->free(pd);
}

void musae_clap_text_embed(const musae_clap *m, const int64_t *ids, const int64_t *mask, int64_t B, float *embeds,
                           float *pooled) {
    const musae_ops *ops = m->ops;
    const int64_t Hd = m->cfg.text.hidden;
    float *pd = ops->alloc((size_t)(B * Hd) * sizeof *pd);
    musae_clap_text_forward(&m->text, &m->cfg.text, ops, ids, mask, B, pd);
    project(ops, &m->text_proj, pd, B, Hd, m->cfg.proj_dim, embeds);
    if (pooled) ops->download(pooled, pd, (size_t)(B * Hd) * sizeof *pooled);
    ops->free(pd);
}

void musae_clap_logits(const musae_clap *m, const float *text, int64_t M, const float *audio, int64_t N,
                       float *logits) {
    const int64_t D = m->cfg.proj_dim;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < D; k++) s += (double)text[i * D + k] * audio[j * D + k];
            logits[i * N + j] = (float)(s * m->logit_scale_t);
        }
}
