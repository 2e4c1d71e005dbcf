/* Tag vocabularies of the CLAP labeler (docs/CLAP.md): the built-in MTG-Jamendo lists (eval/clap_vocab_mtg.c) or
 * a file of one tag per line. */
#ifndef MUSAE_CLAP_VOCAB_H
#define MUSAE_CLAP_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;        /* "mtg-jamendo-genre", ... */
    const char *const *tags;
    size_t n;
} clap_vocab_list;

enum { CLAP_VOCAB_MTG_LISTS = 3 };
/* genre (87), instrument (40), mood/theme (56), in that order */
extern const clap_vocab_list clap_vocab_mtg_jamendo[CLAP_VOCAB_MTG_LISTS];

/* The tags to score: tag[i] with the vocabulary it came from, vocab[i] (both malloc'd). */
typedef struct {
    char **tag, **vocab;
    int64_t n;
} clap_vocab;

/* spec is "mtg-jamendo" (the three lists), one list's name ("mtg-jamendo-genre", "mtg-jamendo-instrument",
 * "mtg-jamendo-moodtheme"), or a file: UTF-8, one tag per line, surrounding blanks trimmed, empty lines and
 * lines starting with '#' skipped, a repeated tag kept once; its vocabulary name is the file's base name.
 * 0, or -1 with a one-line reason naming the file and line (unreadable, invalid UTF-8, no tags). */
int clap_vocab_load(const char *spec, clap_vocab *v, char *err, size_t errlen);
void clap_vocab_free(clap_vocab *v);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_VOCAB_H */
