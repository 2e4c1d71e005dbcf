/* The LLM labeler and detection scorer (docs/LLM_LABEL.md): `musae label --labeler llm` and `musae score`.
 *
 * Labeling: per kept feature of FEATURES.h5, its top clips (at most --exemplars, default 10) are shuffled with
 * Philox (seed, feature); the first 80 % are shown to the model as excerpts around the peak, the last 20 % are
 * held out for scoring (music-sae's split). The model answers a JSON object {label, confidence, description,
 * concepts}; an answer that is not exactly that is asked again once, with the reason, then recorded as failed with
 * the raw text. Lines go to LABELS.jsonl (docs/LABELS.md, labeler "llm").
 *
 * Scoring: delphi's detection protocol on audio (docs/LLM_LABEL.md). */
#ifndef MUSAE_LLM_LABEL_H
#define MUSAE_LLM_LABEL_H

#include <stdint.h>

#include "eval/llm_request.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { LLM_LABEL_MAX_ONLY = 4096, LLM_LABEL_MAX_EXEMPLARS = 64 };
typedef struct {
    llm_common c;
    llm_client_opts client; /* resolved from c */
    char cache[4200];       /* client.cache_dir points here */
    const char *features, *out, *prompt_file;
    int only[LLM_LABEL_MAX_ONLY], n_only; /* --only: these features (n_only 0: every kept one) */
    int exemplars, one_audio, no_schema, max_features;
} llm_label_opts;

typedef struct {
    llm_common c;
    llm_client_opts client;
    char cache[4200];
    const char *labels, *features, *out, *labeler; /* out NULL: rewrite labels; labeler NULL: every labeler */
    int batch, n_pos, n_neg, no_logprobs;          /* excerpts per request, decile samples, non-firing clips */
} llm_score_opts;

/* Runs the labeler; the exit code (0 when every feature was asked, even if some failed; 1 on an error). */
int llm_label_run(const llm_label_opts *o);
/* Runs the detection scorer; the exit code likewise. */
int llm_score_run(const llm_score_opts *o);
/* `musae label --labeler llm ...` and `musae score ...` (host/cli/llm_cli.c): argv[0] is the verb; the options
 * are parsed there (--help included). */
int llm_label_main(int argc, char **argv);
int llm_score_main(int argc, char **argv);

/* The answer checks, exposed for tests. A label answer: the JSON object, optionally inside one ``` fence, with a
 * non-empty one-line string label (<= 200 bytes), a number confidence in [0, 1], a string description and an array
 * of strings concepts. Returns the object (caller frees) or NULL with the reason in why. */
cJSON *llm_parse_label(const char *text, char *why, size_t n);
/* A detection answer: the first [...] in text, a JSON array of exactly n numbers each 0 or 1, into out. 0 or -1. */
int llm_parse_detection(const char *text, int n, int *out);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LLM_LABEL_H */
