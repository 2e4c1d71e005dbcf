/* CLAP as HF transformers' ClapModel computes it (modeling_clap.py, transformers 5.24), fp32, written once
 * against ops.h, loaded from the HF folder as downloaded (config.json, model.safetensors,
 * preprocessor_config.json, vocab.json, merges.txt[, tokenizer.json]):
 *
 *   text   RoBERTa (model/clap_text.c): x = LN(word[id] + type[0] + pos[p]), p = 2 + i for the i-th real
 *          token (padding_idx + cumsum(mask)), then post-LN blocks x = LN(x + O·attn(x)), x = LN(x + W2·gelu(W1·x));
 *          pooled = tanh(dense(x[0]))  (the <s> row)
 *   audio  HTSAT (model/clap_htsat.c) on the front end's log-mel [frames, mels] (model/clap_audio_fe.h):
 *          BatchNorm over mel bins, bicubic (align_corners) time → spec_size·r (r = spec_size / mels), folded
 *          into a spec_size² image of r time chunks stacked along frequency; patch embed + LN; Swin stages
 *          of (shifted) window attention with relative position bias, patch merging between stages; final
 *          LN; pooled = mean over all tokens
 *   both   embeds = normalize(W2·relu(W1·pooled + b1) + b2)
 *   logits_per_text[m, n] = exp(logit_scale_t) · <text_m, audio_n>
 *
 * Host work: the BatchNorm, interpolation, fold and patch extraction (a fixed permutation of one clip's
 * features), the window permutations and attention biases (built once per batch, uploaded). Everything
 * else runs on the op table the model was loaded with. Text batches run at the longest real length of
 * the batch rather than 77: padded keys are masked and the pooler reads token 0, so the result is the same. */
#ifndef MUSAE_CLAP_H
#define MUSAE_CLAP_H

#include <stddef.h>
#include <stdint.h>

#include "host/io/safetensors.h"
#include "kernels/ops.h"
#include "model/clap_audio_fe.h"
#include "model/clap_tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MUSAE_CLAP_MAX_STAGES 8

typedef struct {
    int64_t vocab_size, hidden, layers, heads, ffn, max_pos, type_vocab, pad_id;
    float ln_eps;
} musae_clap_text_config;

typedef struct {
    int n_mels, spec_size, freq_ratio, patch, window;
    int embed_dim;                    /* patch_embeds_hidden_size: stage 0 width; stage s is embed_dim·2^s */
    int n_stages, depths[MUSAE_CLAP_MAX_STAGES], heads[MUSAE_CLAP_MAX_STAGES];
    int64_t mlp_hidden[MUSAE_CLAP_MAX_STAGES]; /* int(dim · mlp_ratio) per stage */
    int64_t hidden;                   /* embed_dim · 2^(n_stages-1) = hidden_size */
    float ln_eps;
} musae_clap_audio_config;

typedef struct {
    musae_clap_text_config text;
    musae_clap_audio_config audio;
    int64_t proj_dim;
} musae_clap_config;

/* projection head: linear1 [P, in] + b1 [P], ReLU, linear2 [P, P] + b2 [P] */
typedef struct {
    float *w1, *b1, *w2, *b2;
} musae_clap_proj;

typedef struct {
    float *qkv_w, *qkv_b; /* [3H, H], [3H]: query, key, value stacked */
    float *o_w, *o_b;     /* [H, H], [H] */
    float *ln1_w, *ln1_b; /* attention.output.LayerNorm */
    float *fc1_w, *fc1_b; /* [F, H], [F] */
    float *fc2_w, *fc2_b; /* [H, F], [H] */
    float *ln2_w, *ln2_b; /* output.LayerNorm */
} musae_clap_text_layer;

typedef struct {
    float *word, *pos, *type;   /* [V, H], [max_pos, H], [type_vocab, H] */
    float *ln_w, *ln_b;         /* embeddings.LayerNorm */
    musae_clap_text_layer *layers;
    float *pool_w, *pool_b;     /* [H, H], [H] */
} musae_clap_text;

typedef struct {
    float *ln1_w, *ln1_b;         /* layernorm_before [C] */
    float *qkv_w, *qkv_b;         /* [3C, C], [3C] */
    float *o_w, *o_b;             /* attention.output.dense [C, C], [C] */
    float *ln2_w, *ln2_b;         /* layernorm_after */
    float *fc1_w, *fc1_b;         /* intermediate.dense [M, C], [M] */
    float *fc2_w, *fc2_b;         /* output.dense [C, M], [C] */
    float *bias;                  /* [n_types, heads, T, T], T = window²: relative position bias, plus for a
                                   * shifted block the -100 mask of each window type (interior, last column,
                                   * last row, corner) */
    int n_types;                  /* 1 unshifted, 4 shifted */
    int shift;                    /* cyclic shift (0 when the stage is one window high and wide) */
} musae_clap_swin_block;

typedef struct {
    int H, W, dim, heads, window;  /* token grid, width, heads; window = min(window, H, W) */
    musae_clap_swin_block *blocks;
    float *merge_ln_w, *merge_ln_b; /* downsample.norm [4C] (not on the last stage) */
    float *merge_w;                 /* downsample.reduction [2C, 4C], no bias */
} musae_clap_stage;

typedef struct {
    float *bn_scale, *bn_shift;     /* host [mels]: eval BatchNorm folded, y = x·scale + shift */
    float *patch_w, *patch_b;       /* [E, p·p], [E] */
    float *patch_ln_w, *patch_ln_b; /* [E] */
    musae_clap_stage *stages;
    float *norm_w, *norm_b;         /* [hidden] */
} musae_clap_htsat;

typedef struct {
    musae_clap_config cfg;
    const musae_ops *ops;
    musae_clap_tokenizer *tok;
    musae_clap_fe fe;
    musae_clap_text text;
    musae_clap_htsat audio;
    musae_clap_proj text_proj, audio_proj;
    float logit_scale_t, logit_scale_a; /* exp() of the stored log scales */
} musae_clap;

/* Opens the HF folder dir on ops' device: config, tokenizer, front end and weights (model.safetensors, a
 * sharded index, or else pytorch_model.bin through host/io/torch_zip.h), every tensor checked
 * by name and shape and none left unused. 0, or -1 with a one-line reason in err (file and field); a bad
 * weight file is a musae_fail naming the tensor. */
int musae_clap_open(musae_clap *m, const char *dir, const musae_ops *ops, char *err, size_t errlen);
void musae_clap_close(musae_clap *m);

/* features [B, fe.frames, fe.n_mels] (host, from musae_clap_fe_features) → embeds [B, proj_dim] (host,
 * unit length); pooled (NULL or [B, audio.hidden]) gets the encoder's pooler_output. */
void musae_clap_audio_embed(const musae_clap *m, const float *features, int64_t B, float *embeds, float *pooled);
/* ids, mask [B, 77] (host, from musae_clap_tokenize) → embeds [B, proj_dim]; pooled (NULL or [B, hidden]) */
void musae_clap_text_embed(const musae_clap *m, const int64_t *ids, const int64_t *mask, int64_t B, float *embeds,
                           float *pooled);
/* logits_per_text [M, N] = logit_scale_t · text [M, D] · audio [N, D]ᵀ (host) */
void musae_clap_logits(const musae_clap *m, const float *text, int64_t M, const float *audio, int64_t N,
                       float *logits);

/* ---- parts (model/clap_text.c, model/clap_htsat.c, model/clap.c) ---- */
int musae_clap_read_config(musae_clap_config *c, const char *dir, char *err, size_t errlen);
/* helpers shared by the loaders: a host copy checked by name and shape, or a device copy */
float *musae_clap_load_host(musae_st *st, const char *name, int rank, const int64_t *shape);
float *musae_clap_load_dev(const musae_ops *ops, musae_st *st, const char *name, int64_t d0, int64_t d1);
float *musae_clap_to_dev(const musae_ops *ops, float *host, int64_t n);
/* musae_clap_load_dev of tensor "<prefix>.<suffix>": a layer's weights by their names within the layer */
float *musae_clap_load_sub(const musae_ops *ops, musae_st *st, const char *prefix, const char *suffix, int64_t d0,
                          int64_t d1);
/* a layer's <p>.attention.self.{query,key,value} weights [C, C] and biases [C] stacked into one [3C, C] matrix
 * and [3C] bias: one GEMM per layer (the text encoder's and HTSAT's attention both name them so) */
void musae_clap_load_qkv(const musae_ops *ops, musae_st *st, const char *p, int64_t C, float **w, float **b);
void musae_clap_text_load(musae_clap_text *t, musae_st *st, const musae_clap_text_config *c, const musae_ops *ops);
void musae_clap_text_free(musae_clap_text *t, const musae_clap_text_config *c, const musae_ops *ops);
/* pooled [B, hidden] on ops' device */
void musae_clap_text_forward(const musae_clap_text *t, const musae_clap_text_config *c, const musae_ops *ops,
                             const int64_t *ids, const int64_t *mask, int64_t B, float *pooled);
void musae_clap_htsat_load(musae_clap_htsat *a, musae_st *st, const musae_clap_audio_config *c, const musae_ops *ops);
void musae_clap_htsat_free(musae_clap_htsat *a, const musae_clap_audio_config *c, const musae_ops *ops);
/* features host [B, frames, mels] → pooled [B, hidden] on ops' device */
void musae_clap_htsat_forward(const musae_clap_htsat *a, const musae_clap_audio_config *c, const musae_ops *ops,
                              const float *features, int64_t B, int64_t frames, float *pooled);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_H */
