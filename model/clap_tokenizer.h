/* The RoBERTa byte-level BPE tokenizer exactly as HF transformers 5.x runs it for CLAP (RobertaTokenizer, the
 * `tokenizers` backend; read from tokenization_roberta.py and the tokenizer.json it writes), with CLAP's
 * text settings: padding "max_length", truncation, max_length 77.
 *
 *   1. special tokens are cut out of the raw text first, leftmost-longest: <s>, <pad>, </s>, <unk>, <mask>
 *      (their ids from vocab.json; their lstrip/rstrip flags from tokenizer.json's added_tokens when the
 *      folder has one, else RobertaTokenizer's: only <mask> lstrips, so " <mask>" is one token);
 *   2. each stretch between them is split by the GPT-2 pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (letters and numbers by Unicode general category, through ICU), each piece's UTF-8 bytes mapped to
 *      GPT-2's printable byte alphabet and merged by merges.txt rank (lowest first, leftmost on ties);
 *   3. <s> ids </s>: more than 75 ids keep the first 75; then <pad> to 77 with mask 0.
 *
 * Input must be valid UTF-8 (a Python str always is; there is nothing of HF's to copy for broken bytes). */
#ifndef MUSAE_CLAP_TOKENIZER_H
#define MUSAE_CLAP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MUSAE_CLAP_TEXT_LEN 77 /* CLAP's max_length: laion_clap and ClapProcessor both pad/truncate to it */

typedef struct musae_clap_tokenizer musae_clap_tokenizer;

/* Reads DIR/vocab.json and DIR/merges.txt (required) and DIR/tokenizer.json's added_tokens (optional).
 * NULL with a one-line reason in err naming the file and the field. */
musae_clap_tokenizer *musae_clap_tokenizer_open(const char *dir, char *err, size_t errlen);
void musae_clap_tokenizer_close(musae_clap_tokenizer *t);
/* 1 + the largest id (vocab.json and the special tokens): the model's embedding table needs that many rows. */
int64_t musae_clap_tokenizer_n_ids(const musae_clap_tokenizer *t);
int64_t musae_clap_tokenizer_pad_id(const musae_clap_tokenizer *t);

/* text[0..len) → ids [77] and mask [77] (1 = real token, <s> and </s> included). n_real (may be NULL) gets
 * the count before truncation, so a caller can warn. 0, or -1 with the reason in err (invalid UTF-8, naming
 * the byte offset; `what` names the text in it). */
int musae_clap_tokenize(const musae_clap_tokenizer *t, const char *text, size_t len, const char *what,
                        int64_t ids[MUSAE_CLAP_TEXT_LEN], int64_t mask[MUSAE_CLAP_TEXT_LEN], int64_t *n_real,
                        char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_TOKENIZER_H */
