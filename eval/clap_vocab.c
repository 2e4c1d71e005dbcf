/* Tag vocabularies of the CLAP labeler: built-in lists or a file (eval/clap_vocab.h). */
#include "eval/clap_vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/utf8.h"

static void add(clap_vocab *v, const char *tag, size_t len, const char *vocab) {
    for (int64_t i = 0; i < v->n; i++)
        if (strlen(v->tag[i]) == len && !memcmp(v->tag[i], tag, len)) return;
    v->tag = musae_xrealloc(v->tag, (size_t)(v->n + 1) * sizeof *v->tag);
    v->vocab = musae_xrealloc(v->vocab, (size_t)(v->n + 1) * sizeof *v->vocab);
    char *t = musae_xmalloc(len + 1);
    memcpy(t, tag, len);
    t[len] = 0;
    v->tag[v->n] = t;
    v->vocab[v->n++] = musae_xstrdup(vocab);
}

int clap_vocab_load(const char *spec, clap_vocab *v, char *err, size_t errlen) {
    memset(v, 0, sizeof *v);
    const int all = !strcmp(spec, "mtg-jamendo");
    for (int l = 0; l < CLAP_VOCAB_MTG_LISTS; l++) {
        const clap_vocab_list *L = &clap_vocab_mtg_jamendo[l];
        if (all || !strcmp(spec, L->name))
            for (size_t i = 0; i < L->n; i++) add(v, L->tags[i], strlen(L->tags[i]), L->name);
    }
    if (v->n) return 0;
    FILE *f = fopen(spec, "rb");
    if (!f) {
        snprintf(err, errlen, "--vocab %s: %s (give a file of tags, one per line, or mtg-jamendo, mtg-jamendo-genre, "
                 "mtg-jamendo-instrument, mtg-jamendo-moodtheme)", spec, strerror(errno));
        return -1;
    }
    const char *slash = strrchr(spec, '/');
    const char *name = slash ? slash + 1 : spec;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long no = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        no++;
        const int64_t bad = musae_utf8_invalid_at(line, (size_t)n);
        if (bad >= 0) {
            snprintf(err, errlen, "--vocab %s: line %ld: invalid UTF-8 at byte %lld", spec, no, (long long)bad);
            rc = -1;
            break;
        }
        char *s = line, *e = line + n;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e == s || *s == '#') continue;
        add(v, s, (size_t)(e - s), name);
    }
    if (!rc && ferror(f)) snprintf(err, errlen, "--vocab %s: read error", spec), rc = -1;
    if (!rc && v->n == 0)
        snprintf(err, errlen, "--vocab %s: no tags (one per line; empty lines and '#' lines are skipped)", spec),
            rc = -1;
    free(line);
    fclose(f);
    if (rc) clap_vocab_free(v);
    return rc;
}

void clap_vocab_free(clap_vocab *v) {
    for (int64_t i = 0; i < v->n; i++) free(v->tag[i]), free(v->vocab[i]);
    free(v->tag), free(v->vocab);
    memset(v, 0, sizeof *v);
}
