/* The CLAP labeler, `musae label --labeler clap` (docs/CLAP.md, docs/LABELS.md): every kept feature of FEATURES.h5
 * gets the tags of a vocabulary whose CLAP text embedding is most similar to the feature's top clips relative to
 * its random non-firing clips. Per kept feature f and tag t (prompt p(t) from the template):
 *   sim_top(t)    = mean over f's top clips (/features/top_clip) of cos(text(p(t)), audio(clip))
 *   sim_random(t) = the same over f's random non-firing clips (/features/random_clip)
 *   contrast(t)   = sim_top(t) - sim_random(t)
 * Tags are ranked by contrast (ties to the vocabulary order); the label is the best tag, the score its contrast,
 * the evidence the --tags best. A feature without random non-firing clips, or whose best contrast is not above 0,
 * is "no_signal". Clip embeddings come through eval/clap_clips.h (cached). */
#ifndef MUSAE_CLAP_LABEL_H
#define MUSAE_CLAP_LABEL_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLAP_LABEL_TEMPLATE "This is a sound of {tag}."

typedef struct {
    const char *clap, *features, *vocab, *out; /* required */
    const char *tpl;                           /* prompt, "{tag}" replaced (CLAP_LABEL_TEMPLATE) */
    const char *cache;                         /* NULL: clap_clips_default_cache */
    const char *acts;                          /* NULL: the store FEATURES.h5 names */
    int n_tags;                                /* evidence tags per feature (5) */
    int batch;                                 /* clips per forward pass (8) */
    const musae_ops *ops;                      /* the device the model runs on */
} clap_label_opts;

void clap_label_opts_defaults(clap_label_opts *o);
/* Labels and writes o->out atomically, keeping other labelers' lines and replacing clap's. Refusals (a missing
 * CLAP folder, FEATURES.h5 not matching its store, an empty vocabulary, a missing clip source, an output that is
 * not LABELS.jsonl) end with musae_fail: one line, exit 1. Returns 0. The command line is host/cli/clap_main.h's. */
int clap_label_run(const clap_label_opts *o);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_LABEL_H */
