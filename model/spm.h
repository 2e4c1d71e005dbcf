/* A C face for libsentencepiece (C++): load a spiece.model and encode plain text with it. Nothing T5-
 * specific lives here: special tokens, </s>, padding and truncation are model/t5_tokenizer.c's business.
 * Every function catches what the library could throw, so no C++ exception crosses into C. */
#ifndef MUSAE_SPM_H
#define MUSAE_SPM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct musae_spm musae_spm; /* opaque: owns a sentencepiece::SentencePieceProcessor */

/* Loads a serialized SentencePiece model. NULL with a one-line reason in err (naming the path). */
musae_spm *musae_spm_load(const char *path, char *err, size_t errlen);
void musae_spm_free(musae_spm *s);

int musae_spm_piece_size(const musae_spm *s);
/* The id of a piece, or -1 when the model has no such piece (sentencepiece itself would answer unk). */
int musae_spm_piece_to_id(const musae_spm *s, const char *piece);
/* The reserved ids the model was trained with (-1 = none). */
int musae_spm_pad_id(const musae_spm *s);
int musae_spm_eos_id(const musae_spm *s);
int musae_spm_unk_id(const musae_spm *s);

/* Appends the ids of text[0..len) (normalized and segmented as the model says; embedded NULs are
 * text) to *ids, growing it with realloc; *n and *cap track the fill. 0, or -1 with the reason in err. */
int musae_spm_encode(const musae_spm *s, const char *text, size_t len, int64_t **ids, int64_t *n, int64_t *cap,
                     char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SPM_H */
