#include "model/text_cond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

int musae_text_cond_load(musae_text_cond *tc, const char *dir, musae_st *st, const musae_model_config *cfg,
                         const musae_ops *ops, char *err, size_t errlen) {
    memset(tc, 0, sizeof *tc);
    tc->ops = ops;
    if (!cfg->has_text) {
        snprintf(err, errlen, "%s/config.json: has no text_encoder section (not a text-conditioned MusicGen)", dir);
        return -1;
    }
    if (musae_t5_tokenizer_open(&tc->tok, dir, err, errlen)) return -1;
    const musae_t5_config *t = &cfg->text;
    if (musae_t5_tokenizer_n_ids(&tc->tok) > t->vocab_size) {
        snprintf(err, errlen,
                 "%s/spiece.model: %d pieces + %d extra ids = %lld token ids, but the T5 embedding has only %d rows "
                 "(config.json text_encoder.vocab_size): tokenizer and model do not belong together",
                 dir, tc->tok.n_pieces, tc->tok.n_extra_ids, (long long)musae_t5_tokenizer_n_ids(&tc->tok),
                 t->vocab_size);
        musae_t5_tokenizer_close(&tc->tok);
        return -1;
    }
    musae_t5_load(&tc->t5, st, "text_encoder.", t, ops);
    tc->hidden = cfg->decoder.hidden_size;
    if (t->d_model != tc->hidden) {
        const int64_t ws[2] = {tc->hidden, t->d_model}, bs[1] = {tc->hidden};
        float *w = musae_st_load(st, "enc_to_dec_proj.weight", MUSAE_F32, 2, ws);
        float *b = musae_st_load(st, "enc_to_dec_proj.bias", MUSAE_F32, 1, bs);
        tc->proj_w = ops->alloc((size_t)(ws[0] * ws[1]) * sizeof(float));
        tc->proj_b = ops->alloc((size_t)bs[0] * sizeof(float));
        ops->upload(tc->proj_w, w, (size_t)(ws[0] * ws[1]) * sizeof(float));
        ops->upload(tc->proj_b, b, (size_t)bs[0] * sizeof(float));
        free(w);
        free(b);
    } else if (musae_st_find(st, "enc_to_dec_proj.weight")) {
        musae_fail("%s: has enc_to_dec_proj.weight, but T5 d_model %d equals the decoder hidden_size, where HF "
                   "MusicGen has no projection", st->path, t->d_model);
    }
    return 0;
}

void musae_text_cond_free(musae_text_cond *tc) {
    musae_t5_tokenizer_close(&tc->tok);
    musae_t5_free(&tc->t5);
    if (tc->proj_w) tc->ops->free(tc->proj_w);
    if (tc->proj_b) tc->ops->free(tc->proj_b);
    memset(tc, 0, sizeof *tc);
}

void musae_text_cond_project(const musae_text_cond *tc, const float *h, const int64_t *mask, int64_t B, int64_t S,
                             float *out) {
    const musae_ops *ops = tc->ops;
    const int64_t D = tc->t5.cfg.d_model, H = tc->hidden, N = B * S;
    if (tc->proj_w) {
        float *hd = ops->alloc((size_t)(N * D) * sizeof *hd), *od = ops->alloc((size_t)(N * H) * sizeof *od);
        ops->upload(hd, h, (size_t)(N * D) * sizeof *hd);
        ops->linear(od, hd, tc->proj_w, tc->proj_b, N, H, D, 0.0f);
        ops->download(out, od, (size_t)(N * H) * sizeof *out);
        ops->free(hd);
        ops->free(od);
    } else {
        memcpy(out, h, (size_t)(N * H) * sizeof *out);
    }
    if (!mask) return;
    /* HF multiplies (x * 0 = ±0); padded rows become exactly zero either way */
    for (int64_t r = 0; r < N; r++)
        if (!mask[r]) memset(out + r * H, 0, (size_t)H * sizeof *out);
}

void musae_text_cond_encode(const musae_text_cond *tc, const musae_t5_tokens *tokens, musae_text_states *out) {
    const int64_t B = tokens->batch, S = tokens->len, D = tc->t5.cfg.d_model, H = tc->hidden;
    float *h = musae_xmalloc((size_t)(B * S * D) * sizeof *h);
    musae_t5_encode(&tc->t5, tokens->ids, tokens->mask, B, S, h, NULL);
    out->batch = B, out->len = S, out->hidden = H;
    out->states = musae_xmalloc((size_t)(B * S * H) * sizeof *out->states);
    out->mask = musae_xmalloc((size_t)(B * S) * sizeof *out->mask);
    memcpy(out->mask, tokens->mask, (size_t)(B * S) * sizeof *out->mask);
    musae_text_cond_project(tc, h, tokens->mask, B, S, out->states);
    free(h);
}

int musae_text_cond_prompts(const musae_text_cond *tc, int n, const char *const *prompts, int64_t max_tokens,
                            musae_text_states *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    musae_t5_tokens tokens;
    if (musae_t5_tokenize_batch(&tc->tok, n, prompts, max_tokens, &tokens, err, errlen)) return -1;
    musae_text_cond_encode(tc, &tokens, out);
    musae_t5_tokens_free(&tokens);
    return 0;
}

void musae_text_states_free(musae_text_states *s) {
    free(s->states);
    free(s->mask);
    memset(s, 0, sizeof *s);
}

void musae_text_cond_run(const char *dir, musae_st *st, const musae_model_config *cfg, const musae_ops *ops, int n,
                         const char *const *prompts, int64_t max_tokens, mg_text_states *out) {
    char err[1024];
    musae_text_cond tc;
    if (musae_text_cond_load(&tc, dir, st, cfg, ops, err, sizeof err)) musae_fail("%s", err);
    const double t0 = musae_now();
    musae_text_states ts;
    if (musae_text_cond_prompts(&tc, n, prompts, max_tokens, &ts, err, sizeof err))
        musae_fail("%s", err);
    LOG_INFO("text: %d prompt(s), %lld tokens (longest, with </s>) through T5 in %.2f s", n, (long long)ts.len,
             musae_now() - t0);
    out->B = ts.batch, out->S = ts.len, out->H = ts.hidden;
    out->states = ts.states; /* ownership moves to out */
    out->mask = musae_xmalloc((size_t)(ts.batch * ts.len) * sizeof *out->mask);
    for (int64_t i = 0; i < ts.batch * ts.len; i++) out->mask[i] = (float)ts.mask[i];
    free(ts.mask);
    musae_text_cond_free(&tc);
}
