/* `musae score --clap`: CLAP scores for any labeler's labels in LABELS.jsonl (docs/CLAP.md, docs/LABELS.md).
 * Per line with status "ok" and a label, for its feature f of FEATURES.h5, with s(c) = cos(text(label), audio(c)):
 *   clap_alignment        mean of s over f's top clips (/features/top_clip: the exemplars, the paper's alignment)
 *   clap_contrast         clap_alignment minus the mean of s over f's random non-firing clips (/features/random_clip)
 *   clap_detection_auroc  AUROC of s separating f's decile samples (/features/quantile_clip, up to 50) from its
 *                         random non-firing clips: P(s(pos) > s(neg)) + ½ P(=) over all pairs (delphi's detection
 *                         with CLAP as the judge)
 * A value without clips to compute it from is null. The text embedded is the label through --template
 * (default "{label}": the label as written). */
#ifndef MUSAE_CLAP_SCORE_H
#define MUSAE_CLAP_SCORE_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *clap, *features, *labels; /* required */
    const char *out;                      /* NULL: labels itself */
    const char *only;                     /* NULL: every labeler's lines; else that labeler's */
    const char *tpl;                      /* the text embedded, "{label}" replaced ("{label}") */
    const char *cache, *acts;             /* NULL: the defaults, as clap_label_opts */
    int batch;                            /* clips per forward pass (8) */
    const musae_ops *ops;
} clap_score_opts;

void clap_score_opts_defaults(clap_score_opts *o);
/* Adds the keys above, their clip counts and scorer.clap to each scored line's `scores` object (keeping every
 * other key) and writes out atomically. Refusals (a missing CLAP folder or labels file, a line of another SAE or
 * out of FEATURES.h5's range, FEATURES.h5 not matching its store) end with musae_fail: one line, exit 1. Returns
 * 0. The command line is host/cli/clap_main.h's. */
int clap_score_run(const clap_score_opts *o);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_SCORE_H */
