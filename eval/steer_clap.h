/* CLAP measures of `musae steer --clap DIR` (docs/STEER.md "CLAP measures"): per studied feature a label text
 * embedding (from LABELS.jsonl) and the centroid of its exemplars' audio embeddings (FEATURES.h5 /features/top_clip,
 * cut from their sources and cached by eval/clap_clips.h); per generated clip its audio embedding, read from the WAV
 * steer wrote exactly as `musae clap --audio` reads a file, so the test recomputes it with that verb. */
#ifndef MUSAE_STEER_CLAP_H
#define MUSAE_STEER_CLAP_H

#include <stdint.h>

#include "eval/clap_clips.h"
#include "eval/features_io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    clap_judge j;
    int64_t D;         /* projection width */
    int nf;            /* studied features */
    char **label;      /* [nf] the label text, or NULL when the feature has no usable label line */
    char **labeler;    /* [nf] the labeler of that line, or NULL */
    float *label_emb;  /* [nf, D] unit text embeddings (rows of unlabelled features are zero) */
    float *centroid;   /* [nf, D] unit centroid of the exemplars' embeddings (zero rows when none) */
    int64_t *n_ex;     /* [nf] exemplars behind each centroid */
} steer_clap;

/* Opens the CLAP folder, reads the labels (labels may be NULL: no label alignment; labeler NULL: the first line in
 * file order with status "ok" and a string label, else only that labeler's lines) and embeds the labels and the
 * exemplars of feat[0..nf) (fs: FEATURES.h5 at features_path, checked against its store). Refusals are musae_fail. */
void steer_clap_open(steer_clap *c, const char *clap_dir, const char *labels, const char *labeler,
                     const char *features_path, const musae_features *fs, const int64_t *feat, int nf,
                     const musae_ops *ops);
void steer_clap_close(steer_clap *c);

/* Unit audio embeddings [n, D] of the WAV files paths[0..n): each read at the model's rate for its first
 * max_length_s + 0.5 s as `musae clap --audio` reads it, then the front end and the encoder in one batch. */
void steer_clap_embed_wavs(steer_clap *c, const char *const *paths, int64_t n, float *emb);

/* <a, b> of two unit rows in double */
double steer_clap_dot(const float *a, const float *b, int64_t D);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STEER_CLAP_H */
