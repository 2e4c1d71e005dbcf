/* Text conditioning for MusicGen: prompts → T5 tokenizer → T5 encoder → enc_to_dec_proj → × mask, i.e. the
 * encoder_hidden_states that HF MusicgenForConditionalGeneration hands its decoder:
 *
 *   h      = T5(input_ids, attention_mask).last_hidden_state        [B, S, d_model]
 *   states = enc_to_dec_proj(h) * attention_mask[..., None]          [B, S, H]   (Linear with bias)
 *
 * HF creates enc_to_dec_proj only when d_model != H (every released MusicGen: 768 vs 1024/1536/2048);
 * otherwise the states are h itself, masked.
 *
 * Classifier-free guidance (guidance_scale > 1): HF generate appends an unconditional copy of the batch,
 * [cond; uncond], whose T5 states and mask are zeros *before* the projection; the projection then gives
 * the bias, the mask multiplies it to exactly 0, and the decoder's cross-attention over an all-masked row
 * outputs exactly 0. So only the conditional rows come from here: mg_generate (model/generate.h) runs the
 * unconditional rows with cross-attention skipped, which is the same thing bit for bit. */
#ifndef MUSAE_TEXT_COND_H
#define MUSAE_TEXT_COND_H

#include <stddef.h>
#include <stdint.h>

#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "kernels/ops.h"
#include "model/lm_files.h"
#include "model/t5.h"
#include "model/t5_tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* T5 and the projection run on the op table given at load (weights on its device); inputs and outputs of
 * every call below are host memory. */
typedef struct {
    musae_t5_tokenizer tok;
    musae_t5 t5;
    const musae_ops *ops;
    int64_t hidden;  /* decoder hidden_size H */
    float *proj_w;   /* [H, d_model] enc_to_dec_proj.weight (device); NULL when d_model == H (no projection) */
    float *proj_b;   /* [H]          enc_to_dec_proj.bias (device) */
} musae_text_cond;

/* The text states contract (ARCHITECTURE.md, "Text states"): what --text-states files hold. */
typedef struct {
    int64_t batch, len, hidden;
    float *states; /* [batch, len, hidden] projected, multiplied by the mask */
    int64_t *mask; /* [batch, len] 1 = real token */
} musae_text_states;

/* Tokenizer from dir (spiece.model, tokenizer_config.json) and weights (text_encoder.*, enc_to_dec_proj.*)
 * from st, checked against cfg. A missing tokenizer file or an unusable one returns -1 with the reason in
 * err; weight problems are musae_fail (name, got/expected shape), as for every loader. */
int musae_text_cond_load(musae_text_cond *tc, const char *dir, musae_st *st, const musae_model_config *cfg,
                         const musae_ops *ops, char *err, size_t errlen);
void musae_text_cond_free(musae_text_cond *tc);

/* T5 last hidden state h [B, S, d_model] → out [B, S, H]: projection, then × mask (mask NULL = all 1). */
void musae_text_cond_project(const musae_text_cond *tc, const float *h, const int64_t *mask, int64_t B, int64_t S,
                             float *out);
/* Tokens → text states (T5, projection, mask). `out` is allocated. */
void musae_text_cond_encode(const musae_text_cond *tc, const musae_t5_tokens *tokens, musae_text_states *out);
/* n >= 1 prompts → text states; max_tokens as musae_t5_tokenize (0 = no truncation, as HF MusicGen).
 * 0, or -1 with the reason in err (no prompts, invalid UTF-8). */
int musae_text_cond_prompts(const musae_text_cond *tc, int n, const char *const *prompts, int64_t max_tokens,
                            musae_text_states *out, char *err, size_t errlen);

void musae_text_states_free(musae_text_states *s);

/* Prompts straight to the decoder's conditioning, for the verbs: loads the text encoder from dir and st
 * (the opened model weights) onto ops' device, encodes, converts the mask to the 0/1 floats mg_text_states
 * holds, and frees the encoder. Any failure (tokenizer files, weights, no prompts, invalid UTF-8) is a
 * musae_fail. */
void musae_text_cond_run(const char *dir, musae_st *st, const musae_model_config *cfg, const musae_ops *ops, int n,
                         const char *const *prompts, int64_t max_tokens, mg_text_states *out);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_TEXT_COND_H */
