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

#ifdef __cplusplus
extern "C" {
#endif

/* `musae label --labeler clap ...` with argv[0] = "label"; parses its own options (--help prints them and returns
 * 0). Refusals (bad options, a missing CLAP folder, FEATURES.h5 not matching its store, an empty vocabulary, a
 * missing clip source) end with musae_fail: one line, exit 1. Returns 0. */
int clap_label_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_LABEL_H */
