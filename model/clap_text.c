/* CLAP's text encoder: RoBERTa (ClapTextModel, post-LN BERT blocks with exact GELU) and its pooler. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "model/clap.h"

/* HF registers these as persistent buffers; they carry no information beyond the config, but a file whose
 * buffers disagree with it was not written for this config. */
static void check_index_buffer(musae_st *st, const char *name, int64_t n, int arange) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t) return; /* older exports do not save them */
    int rank;
    int64_t shape[MUSAE_ST_MAX_RANK];
    int64_t *v = musae_st_load_any(st, name, MUSAE_I64, &rank, shape);
    if (rank != 2 || shape[0] != 1 || shape[1] != n) musae_fail("%s: tensor '%s' has the wrong shape (want [1, %lld])",
                                                                st->path, name, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (v[i] != (arange ? i : 0)) musae_fail("%s: tensor '%s' element %lld is %lld, want %lld", st->path, name,
                                                 (long long)i, (long long)v[i], (long long)(arange ? i : 0));
    free(v);
}

void musae_clap_text_load(musae_clap_text *t, musae_st *st, const musae_clap_text_config *c, const musae_ops *ops) {
    memset(t, 0, sizeof *t);
    const int64_t H = c->hidden, F = c->ffn;
    t->word = musae_clap_load_dev(ops, st, "text_model.embeddings.word_embeddings.weight", c->vocab_size, H);
    t->pos = musae_clap_load_dev(ops, st, "text_model.embeddings.position_embeddings.weight", c->max_pos, H);
    t->type = musae_clap_load_dev(ops, st, "text_model.embeddings.token_type_embeddings.weight", c->type_vocab, H);
    t->ln_w = musae_clap_load_dev(ops, st, "text_model.embeddings.LayerNorm.weight", H, 0);
    t->ln_b = musae_clap_load_dev(ops, st, "text_model.embeddings.LayerNorm.bias", H, 0);
    check_index_buffer(st, "text_model.embeddings.position_ids", c->max_pos, 1);
    check_index_buffer(st, "text_model.embeddings.token_type_ids", c->max_pos, 0);
    t->layers = musae_xcalloc((size_t)c->layers, sizeof *t->layers);
    for (int64_t l = 0; l < c->layers; l++) {
        musae_clap_text_layer *L = &t->layers[l];
        char p[128];
        snprintf(p, sizeof p, "text_model.encoder.layer.%lld", (long long)l);
        musae_clap_load_qkv(ops, st, p, H, &L->qkv_w, &L->qkv_b);
        L->o_w = musae_clap_load_sub(ops, st, p, "attention.output.dense.weight", H, H);
        L->o_b = musae_clap_load_sub(ops, st, p, "attention.output.dense.bias", H, 0);
        L->ln1_w = musae_clap_load_sub(ops, st, p, "attention.output.LayerNorm.weight", H, 0);
        L->ln1_b = musae_clap_load_sub(ops, st, p, "attention.output.LayerNorm.bias", H, 0);
        L->fc1_w = musae_clap_load_sub(ops, st, p, "intermediate.dense.weight", F, H);
        L->fc1_b = musae_clap_load_sub(ops, st, p, "intermediate.dense.bias", F, 0);
        L->fc2_w = musae_clap_load_sub(ops, st, p, "output.dense.weight", H, F);
        L->fc2_b = musae_clap_load_sub(ops, st, p, "output.dense.bias", H, 0);
        L->ln2_w = musae_clap_load_sub(ops, st, p, "output.LayerNorm.weight", H, 0);
        L->ln2_b = musae_clap_load_sub(ops, st, p, "output.LayerNorm.bias", H, 0);
    }
    t->pool_w = musae_clap_load_dev(ops, st, "text_model.pooler.dense.weight", H, H);
    t->pool_b = musae_clap_load_dev(ops, st, "text_model.pooler.dense.bias", H, 0);
}

void musae_clap_text_free(musae_clap_text *t, const musae_clap_text_config *c, const musae_ops *ops) {
    for (int64_t l = 0; l < c->layers; l++) {
        musae_clap_text_layer *L = &t->layers[l];
        float *ws[] = {L->qkv_w, L->qkv_b, L->o_w, L->o_b, L->ln1_w, L->ln1_b, L->fc1_w, L->fc1_b,
                       L->fc2_w, L->fc2_b, L->ln2_w, L->ln2_b};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]) ops->free(ws[i]);
    }
    free(t->layers);
    float *ws[] = {t->word, t->pos, t->type, t->ln_w, t->ln_b, t->pool_w, t->pool_b};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        if (ws[i]) ops->free(ws[i]);
    memset(t, 0, sizeof *t);
}

void musae_clap_text_forward(const musae_clap_text *t, const musae_clap_text_config *c, const musae_ops *ops,
                             const int64_t *ids, const int64_t *mask, int64_t B, float *pooled) {
    const int64_t H = c->hidden, F = c->ffn, NH = c->heads, L77 = MUSAE_CLAP_TEXT_LEN;
    /* run at the longest real length: padded keys are masked and only token 0 is read */
    int64_t S = 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < L77; i++)
            if (mask[b * L77 + i] && i + 1 > S) S = i + 1;
    const int64_t N = B * S;
    int64_t *tok = musae_xmalloc((size_t)N * sizeof *tok), *pos = musae_xmalloc((size_t)N * sizeof *pos);
    int64_t *zero = musae_xcalloc((size_t)N, sizeof *zero), *first = musae_xmalloc((size_t)B * sizeof *first);
    float *km = musae_xmalloc((size_t)N * sizeof *km);
    for (int64_t b = 0; b < B; b++) {
        int64_t run = 0; /* HF: padding_idx + cumsum(mask) on real tokens, padding_idx on pads */
        for (int64_t i = 0; i < S; i++) {
            const int64_t r = b * S + i, real = mask[b * L77 + i] != 0;
            tok[r] = ids[b * L77 + i];
            MUSAE_ASSERT(tok[r] >= 0 && tok[r] < c->vocab_size, "token id %lld", (long long)tok[r]);
            run += real;
            pos[r] = real ? c->pad_id + run : c->pad_id;
            km[r] = real ? 1.0f : 0.0f;
        }
        first[b] = b * S;
    }
    const size_t nb = (size_t)N * sizeof(int64_t);
    int64_t *d_tok = ops->alloc(nb), *d_pos = ops->alloc(nb), *d_zero = ops->alloc(nb);
    int64_t *d_first = ops->alloc((size_t)B * sizeof(int64_t));
    ops->upload(d_tok, tok, nb), ops->upload(d_pos, pos, nb), ops->upload(d_zero, zero, nb);
    ops->upload(d_first, first, (size_t)B * sizeof(int64_t));
    float *d_km = musae_clap_to_dev(ops, km, N);

    float *x = ops->alloc((size_t)(N * H) * sizeof *x), *x2 = ops->alloc((size_t)(N * H) * sizeof *x2);
    float *tmp = ops->alloc((size_t)(N * H) * sizeof *tmp), *att = ops->alloc((size_t)(N * H) * sizeof *att);
    float *qkv = ops->alloc((size_t)(N * 3 * H) * sizeof *qkv), *h1 = ops->alloc((size_t)(N * F) * sizeof *h1);
    /* HF's order: (word + token type) + position, then LayerNorm */
    ops->embedding(x2, t->word, c->vocab_size, H, d_tok, N, 0);
    ops->embedding(x2, t->type, c->type_vocab, H, d_zero, N, 1);
    ops->embedding(x2, t->pos, c->max_pos, H, d_pos, N, 1);
    ops->layernorm(x, x2, t->ln_w, t->ln_b, N, H, c->ln_eps);
    const int64_t dh = H / NH;
    const musae_attn_params ap = {
        .batch = B, .heads = NH, .tq = S, .tk = S, .dh = dh,
        .q_sb = S * 3 * H, .q_st = 3 * H, .k_sb = S * 3 * H, .k_st = 3 * H, .v_sb = S * 3 * H, .v_st = 3 * H,
        .o_sb = S * H, .o_st = H, .scale = (float)(1.0 / sqrt((double)dh)), .causal = 0, .q_pos0 = 0,
        .bias = NULL, .bias_tk = 0, .key_mask = d_km,
    };
    for (int64_t l = 0; l < c->layers; l++) {
        const musae_clap_text_layer *Lw = &t->layers[l];
        ops->linear(qkv, x, Lw->qkv_w, Lw->qkv_b, N, 3 * H, H, 0.0f);
        ops->attention(att, qkv, qkv + H, qkv + 2 * H, &ap);
        ops->linear(tmp, att, Lw->o_w, Lw->o_b, N, H, H, 0.0f);
        ops->add_layernorm(tmp, x, x2, Lw->ln1_w, Lw->ln1_b, N, H, c->ln_eps); /* x2 = LN(O·att + x) */
        ops->linear(h1, x2, Lw->fc1_w, Lw->fc1_b, N, F, H, 0.0f);
        ops->gelu(h1, h1, N * F);
        ops->linear(tmp, h1, Lw->fc2_w, Lw->fc2_b, N, H, F, 0.0f);
        ops->add_layernorm(tmp, x2, x, Lw->ln2_w, Lw->ln2_b, N, H, c->ln_eps); /* x = LN(W2·h + x2) */
    }
    /* pooler: the <s> row of each text, dense, tanh */
    ops->embedding(tmp, x, N, H, d_first, B, 0);
    ops->linear(pooled, tmp, t->pool_w, t->pool_b, B, H, H, 0.0f);
    ops->tanh(pooled, pooled, B * H);

    void *bufs[] = {d_tok, d_pos, d_zero, d_first, d_km, x, x2, tmp, att, qkv, h1};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ops->free(bufs[i]);
    free(tok), free(pos), free(zero), free(first);
}
