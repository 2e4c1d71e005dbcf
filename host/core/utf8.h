/* Strict UTF-8: the one validator, shared by the T5 tokenizer (prompts) and capture (captions of a list file),
 * so a caption capture accepts is one the tokenizer takes. */
#ifndef MUSAE_UTF8_H
#define MUSAE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Offset of the first byte that breaks strict UTF-8 (overlong forms, surrogates, > U+10FFFF and cut
 * sequences are all invalid), or -1 when text[0..len) is valid. */
int64_t musae_utf8_invalid_at(const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_UTF8_H */
