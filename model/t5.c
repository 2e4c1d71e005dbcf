#include "model/t5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

int musae_t5_bucket(int64_t rel, int num_buckets, int max_distance) {
    const int half = num_buckets / 2;    /* one half per direction */
    const int max_exact = half / 2;      /* below this, one bucket per distance */
    int bucket = rel > 0 ? half : 0;
    const int64_t a = rel < 0 ? -rel : rel;
    if (a < max_exact) return bucket + (int)a;
    /* torch: log(a.float() / max_exact) / math.log(max_distance / max_exact) * (half - max_exact), each op in
     * float32 (the Python scalars are rounded to float32 first), then truncated toward zero */
    const float lg = logf((float)a / (float)max_exact);
    const float scaled = lg / (float)log((double)max_distance / max_exact) * (float)(half - max_exact);
    int large = max_exact + (int)scaled;
    if (large > half - 1) large = half - 1;
    return bucket + large;
}

/* HF ACT2FN[config.dense_act_fn] for the names a T5 config can produce. */
typedef void (*t5_act_fn)(float *out, const float *x, int64_t n);
static t5_act_fn t5_act(const musae_ops *ops, const char *name) {
    if (!strcmp(name, "relu")) return ops->relu;
    if (!strcmp(name, "gelu_new")) return ops->gelu_tanh;
    if (!strcmp(name, "gelu")) return ops->gelu;
    return NULL;
}

static float *load_host(musae_st *st, const char *name, int64_t d0, int64_t d1) {
    const int64_t shape[2] = {d0, d1};
    return musae_st_load(st, name, MUSAE_F32, d1 ? 2 : 1, shape);
}

/* A host array to a new buffer on ops' device; the host copy is freed. */
static float *to_device(const musae_ops *ops, float *host, int64_t n) {
    float *d = ops->alloc((size_t)n * sizeof(float));
    ops->upload(d, host, (size_t)n * sizeof(float));
    free(host);
    return d;
}

static float *load(const musae_ops *ops, musae_st *st, const char *name, int64_t d0, int64_t d1) {
    return to_device(ops, load_host(st, name, d0, d1), d1 ? d0 * d1 : d0);
}

void musae_t5_load(musae_t5 *m, musae_st *st, const char *prefix, const musae_t5_config *cfg, const musae_ops *ops) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->ops = ops;
    const int64_t D = cfg->d_model, F = cfg->d_ff, I = (int64_t)cfg->num_heads * cfg->d_kv;
    m->inner = I;
    if (!t5_act(ops, cfg->dense_act_fn))
        musae_fail("%s: T5 activation \"%s\" is not supported (relu, gelu, gelu_new)", st->path, cfg->dense_act_fn);
    char name[512];
    musae_st_prefetch(st, prefix);

    /* The embedding is tied: HF stores shared.weight, older exports may hold only encoder.embed_tokens. */
    snprintf(name, sizeof name, "%sshared.weight", prefix);
    char tied[512];
    snprintf(tied, sizeof tied, "%sencoder.embed_tokens.weight", prefix);
    const int has_shared = musae_st_find(st, name) != NULL, has_tied = musae_st_find(st, tied) != NULL;
    if (!has_shared && !has_tied) musae_fail("%s: tensor '%s' (or '%s') is missing", st->path, name, tied);
    float *embed = load_host(st, has_shared ? name : tied, cfg->vocab_size, D);
    if (has_shared && has_tied) {
        float *e = load_host(st, tied, cfg->vocab_size, D);
        const int same = !memcmp(e, embed, (size_t)cfg->vocab_size * D * sizeof(float));
        free(e);
        if (!same) musae_fail("%s: '%s' and '%s' differ, but T5 ties them", st->path, name, tied);
    }
    m->embed = to_device(ops, embed, (int64_t)cfg->vocab_size * D);

    snprintf(name, sizeof name, "%sencoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", prefix);
    m->rel_bias = load_host(st, name, cfg->relative_attention_num_buckets, cfg->num_heads);

    m->blocks = musae_xcalloc((size_t)cfg->num_layers, sizeof *m->blocks);
    for (int j = 0; j < cfg->num_layers; j++) {
        musae_t5_block *b = &m->blocks[j];
        char p[400];
        snprintf(p, sizeof p, "%sencoder.block.%d.layer.", prefix, j);
#define T5_LOAD(field, suffix, d0, d1)                                                                     \
    do {                                                                                                   \
        snprintf(name, sizeof name, "%s%s", p, suffix);                                                    \
        b->field = load(ops, st, name, d0, d1);                                                            \
    } while (0)
        T5_LOAD(attn_norm, "0.layer_norm.weight", D, 0);
        T5_LOAD(q, "0.SelfAttention.q.weight", I, D);
        T5_LOAD(k, "0.SelfAttention.k.weight", I, D);
        T5_LOAD(v, "0.SelfAttention.v.weight", I, D);
        T5_LOAD(o, "0.SelfAttention.o.weight", D, I);
        T5_LOAD(ff_norm, "1.layer_norm.weight", D, 0);
        if (cfg->is_gated) {
            T5_LOAD(wi, "1.DenseReluDense.wi_0.weight", F, D);
            T5_LOAD(wi_gate, "1.DenseReluDense.wi_1.weight", F, D);
        } else {
            T5_LOAD(wi, "1.DenseReluDense.wi.weight", F, D);
        }
        T5_LOAD(wo, "1.DenseReluDense.wo.weight", D, F);
#undef T5_LOAD
    }
    snprintf(name, sizeof name, "%sencoder.final_layer_norm.weight", prefix);
    m->final_norm = load(ops, st, name, D, 0);

    /* Anything left under the prefix is a part of the model this code would silently ignore (another
     * block's relative bias, a gated weight under a relu config, a T5 decoder): refuse it. */
    const int unused = musae_st_report_unused(st, prefix);
    if (unused)
        musae_fail("%s: %d tensor(s) under '%s' are not part of the T5 encoder described by config.json (listed "
                   "above; feed_forward_proj \"%s\", %d layers)",
                   st->path, unused, prefix, cfg->feed_forward_proj, cfg->num_layers);
}

void musae_t5_free(musae_t5 *m) {
    const musae_ops *ops = m->ops;
    if (m->blocks)
        for (int j = 0; j < m->cfg.num_layers; j++) {
            musae_t5_block *b = &m->blocks[j];
            float *ws[] = {b->attn_norm, b->q, b->k, b->v, b->o, b->ff_norm, b->wi, b->wi_gate, b->wo};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                if (ws[i]) ops->free(ws[i]);
        }
    free(m->blocks);
    if (m->embed) ops->free(m->embed);
    if (m->final_norm) ops->free(m->final_norm);
    free(m->rel_bias);
    memset(m, 0, sizeof *m);
}

void musae_t5_encode(const musae_t5 *m, const int64_t *ids, const int64_t *mask, int64_t B, int64_t S, float *out,
                     float *const *block_out) {
    const musae_t5_config *c = &m->cfg;
    const musae_ops *ops = m->ops;
    const int64_t D = c->d_model, F = c->d_ff, I = m->inner, H = c->num_heads, N = B * S;
    MUSAE_ASSERT(B >= 1 && S >= 1, "T5 batch %lld x %lld", (long long)B, (long long)S);
    const float eps = (float)c->layer_norm_epsilon;
    const t5_act_fn act = t5_act(ops, c->dense_act_fn);
    MUSAE_ASSERT(act, "T5 activation '%s'", c->dense_act_fn);

    /* the relative position bias [H, S, S], shared by all blocks and all batch rows */
    float *bias_h = musae_xmalloc((size_t)(H * S * S) * sizeof *bias_h);
    for (int64_t i = 0; i < S; i++)
        for (int64_t j = 0; j < S; j++) {
            const int bk =
                musae_t5_bucket(j - i, c->relative_attention_num_buckets, c->relative_attention_max_distance);
            for (int64_t h = 0; h < H; h++) bias_h[(h * S + i) * S + j] = m->rel_bias[bk * H + h];
        }
    float *bias = to_device(ops, bias_h, H * S * S);
    float *key_mask = NULL;
    if (mask) {
        float *km = musae_xmalloc((size_t)N * sizeof *km);
        for (int64_t r = 0; r < N; r++) km[r] = mask[r] ? 1.0f : 0.0f;
        key_mask = to_device(ops, km, N);
    }
    int64_t *ids_d = ops->alloc((size_t)N * sizeof *ids_d);
    ops->upload(ids_d, ids, (size_t)N * sizeof *ids_d);

    float *x = ops->alloc((size_t)(N * D) * sizeof *x); /* the residual stream; the final norm writes n */
    float *n = ops->alloc((size_t)(N * D) * sizeof *n);
    float *qkv = ops->alloc((size_t)(3 * N * I) * sizeof *qkv);
    float *att = ops->alloc((size_t)(N * I) * sizeof *att);
    float *h1 = ops->alloc((size_t)(N * F) * sizeof *h1);
    float *h2 = c->is_gated ? ops->alloc((size_t)(N * F) * sizeof *h2) : NULL;
    float *q = qkv, *k = qkv + N * I, *v = qkv + 2 * N * I;

    ops->embedding(x, m->embed, c->vocab_size, D, ids_d, N, 0);
    const musae_attn_params ap = {
        .batch = B, .heads = H, .tq = S, .tk = S, .dh = c->d_kv,
        .q_sb = S * I, .q_st = I, .k_sb = S * I, .k_st = I, .v_sb = S * I, .v_st = I, .o_sb = S * I, .o_st = I,
        .scale = 1.0f, /* T5 folds the 1/sqrt(d_kv) into its initialization, not the forward */
        .causal = 0, .q_pos0 = 0, .bias = bias, .bias_tk = S, .key_mask = key_mask,
    };
    for (int j = 0; j < c->num_layers; j++) {
        const musae_t5_block *b = &m->blocks[j];
        ops->rmsnorm(n, x, b->attn_norm, N, D, eps);
        ops->linear(q, n, b->q, NULL, N, I, D, 0.0f);
        ops->linear(k, n, b->k, NULL, N, I, D, 0.0f);
        ops->linear(v, n, b->v, NULL, N, I, D, 0.0f);
        ops->attention(att, q, k, v, &ap);
        ops->linear(x, att, b->o, NULL, N, D, I, 1.0f); /* x += O·att */

        ops->rmsnorm(n, x, b->ff_norm, N, D, eps);
        ops->linear(h1, n, b->wi, NULL, N, F, D, 0.0f);
        act(h1, h1, N * F);
        if (c->is_gated) {
            ops->linear(h2, n, b->wi_gate, NULL, N, F, D, 0.0f);
            ops->mul(h1, h1, h2, N * F);
        }
        ops->linear(x, h1, b->wo, NULL, N, D, F, 1.0f); /* x += wo·h */
        if (block_out) ops->download(block_out[j], x, (size_t)(N * D) * sizeof *x);
    }
    ops->rmsnorm(n, x, m->final_norm, N, D, eps);
    ops->download(out, n, (size_t)(N * D) * sizeof *out);

    float *bufs[] = {bias, key_mask, x, n, qkv, att, h1, h2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops->free(bufs[i]);
    ops->free(ids_d);
}
