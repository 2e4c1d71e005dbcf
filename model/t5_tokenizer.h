/* The T5 tokenizer exactly as Hugging Face transformers 5.x runs it for MusicGen (T5Tokenizer, the
 * `tokenizers` backend; read from tokenization_t5.py and the tokenizer.json it writes):
 *
 *   1. special tokens are cut out of the raw text first (leftmost match, not normalized): "<pad>" = 0,
 *      "</s>" = 1, "<unk>" = 2 and "<extra_id_N>" for N < extra_ids, numbered backwards from the end
 *      of the vocabulary (<extra_id_0> = pieces + extra_ids - 1, <extra_id_99> = pieces for t5-base);
 *   2. every stretch of text between them goes through the SentencePiece unigram model in spiece.model
 *      (nmt_nfkc normalization, whitespace split with "▁" prepended, Viterbi; unknown characters become
 *      <unk>, consecutive ones one <unk>). HF's Precompiled + WhitespaceSplit + Metaspace + Unigram
 *      pipeline gives the same ids as sentencepiece on such stretches (checked on 79 prompts);
 *   3. "</s>" is appended, so an empty or all-whitespace prompt is [1];
 *   4. a batch is right-padded with <pad> to its longest prompt, with mask 1 on real tokens.
 *
 * Length: HF MusicGen never truncates (MusicgenProcessor and generate pass no truncation); a prompt longer
 * than tokenizer_config.json's model_max_length (512 for t5-base) only draws a warning, and T5's relative
 * positions handle any length. max_tokens > 0 truncates as HF's truncation=True does: the first
 * max_tokens - 1 ids, then </s>; that also warns.
 *
 * Input must be valid UTF-8: a Python str always is, so HF has no behaviour to copy for broken bytes, and
 * guessing (replacement characters) would silently change the prompt. Invalid input is an error naming
 * the byte offset. */
#ifndef MUSAE_T5_TOKENIZER_H
#define MUSAE_T5_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "model/spm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    musae_spm *spm;
    int n_pieces;          /* pieces in spiece.model (32000 for t5-base) */
    int n_extra_ids;       /* tokenizer_config.json extra_ids (default 100) */
    int pad_id, eos_id, unk_id;
    int64_t model_max_length; /* tokenizer_config.json; 0 when absent or "unlimited" */
} musae_t5_tokenizer;

/* Token ids of a batch of prompts, right padded. */
typedef struct {
    int64_t batch, len;
    int64_t *ids;  /* [batch, len] pad_id after the end of each prompt */
    int64_t *mask; /* [batch, len] 1 = real token (</s> included), 0 = padding */
} musae_t5_tokens;

/* Reads DIR/spiece.model (required) and DIR/tokenizer_config.json (optional). 0, or -1 with a one-line
 * reason in err naming the file. */
int musae_t5_tokenizer_open(musae_t5_tokenizer *t, const char *dir, char *err, size_t errlen);
void musae_t5_tokenizer_close(musae_t5_tokenizer *t);
/* Ids the tokenizer can produce: pieces + extra ids. The model's embedding table must have at least this
 * many rows (t5-base pads 32100 to 32128). */
int64_t musae_t5_tokenizer_n_ids(const musae_t5_tokenizer *t);

/* One prompt (text[0..len), embedded NULs allowed) → malloc'd ids ending in </s>. max_tokens: 0 = no
 * limit, else truncate to that many ids (>= 1). `what` names the prompt in messages ("prompt 2").
 * 0, or -1 with the reason in err (invalid UTF-8). */
int musae_t5_tokenize(const musae_t5_tokenizer *t, const char *text, size_t len, int64_t max_tokens,
                      const char *what, int64_t **ids, int64_t *n, char *err, size_t errlen);
/* n >= 1 NUL-terminated prompts → padded batch. 0, or -1 with the reason in err (no prompts, or which
 * prompt is invalid). */
int musae_t5_tokenize_batch(const musae_t5_tokenizer *t, int n, const char *const *texts, int64_t max_tokens,
                            musae_t5_tokens *out, char *err, size_t errlen);
void musae_t5_tokens_free(musae_t5_tokens *b);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_T5_TOKENIZER_H */
