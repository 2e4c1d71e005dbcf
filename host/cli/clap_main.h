/* The command lines of the CLAP labeler and CLAP scores (docs/CLAP.md): entry points the `label` and `score`
 * verbs hand their whole argv to (argv[0] "label" / "score"), each parsing its own options with cli_getopt,
 * --help included. The work is eval/clap_label.h and eval/clap_score.h. A refusal ends with one line and exit 1;
 * they return the exit code otherwise (0). */
#ifndef MUSAE_CLAP_MAIN_H
#define MUSAE_CLAP_MAIN_H

#ifdef __cplusplus
extern "C" {
#endif

/* musae label --labeler clap --clap DIR --features FEATURES.h5 --vocab FILE|mtg-jamendo -o LABELS.jsonl [...] */
int clap_label_main(int argc, char **argv);
/* musae score --clap DIR --features F --labels L.jsonl [-o OUT.jsonl] [...] */
int clap_score_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_MAIN_H */
