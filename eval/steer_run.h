/* musae steer: the steering experiment of the paper (seed_paper.md §4) with TADA's controls (wave2_anchors.md §5),
 * as one resumable command (docs/STEER.md "The experiment").
 *
 * For every prompt p and seed s: a baseline clip (α = 0) and an SAE-passthrough clip (the layer's output replaced
 * by its SAE reconstruction at every frame's row while generating); and for every feature f and α: the steered
 * clip (v = fl(α·β_f)·W_dec[f]), a random control (a Philox-drawn Gaussian direction scaled to ‖W_dec[f]‖, the
 * same fl(α·β_f)), and another feature's control (the next feature of the study, scaled to ‖W_dec[f]‖). Every
 * clip of (p, s) draws its tokens from the same Philox stream (mg_sampler.same_draws), so the clips are paired;
 * the clips run as items of CFG batches with per-item ADD vectors.
 *
 * Per clip (steer.jsonl, one line each): the study's features' activations re-measured by running the generated
 * codes teacher-forced through the model (conditioned on the prompt) and the SAE (mean over frames of the latent,
 * 0 where it is not selected), the fraction of codes that differ from the paired baseline, and, when the model
 * folder has EnCodec, the WAV and its describe descriptors. summary.json is computed from steer.jsonl alone
 * (eval/steer_stats.h). A killed run is continued by running the same command: the complete lines of steer.jsonl
 * are kept (a partial last line is dropped) and only the missing clips are generated. */
#ifndef MUSAE_STEER_RUN_H
#define MUSAE_STEER_RUN_H

#include <stdint.h>

#include "kernels/ops.h"
#include "model/sampling.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STEER_RUN_MAX 1024 /* features, α values or prompts of one study */
/* random directions per feature by default: the statistics compare the steered clip with the mean of the draws of
 * its (prompt, seed), so the control's own variance is divided by R; 3 costs 2 clips more per (feature, α, prompt,
 * seed) than 1 and takes the random control's spread down by √3 (docs/STEER.md "Random draws") */
#define STEER_RANDOM_DRAWS 3

typedef struct {
    const char *model_dir, *sae_dir, *features, *out_dir;
    int64_t feature[STEER_RUN_MAX];  /* --feature F,... */
    int n_feature;
    int kept_top;                    /* --kept-top N: the N kept features with the largest max_act (0: --feature) */
    double alpha[STEER_RUN_MAX];
    int n_alpha;
    double alpha_max;                /* |α| allowed up to this (1) */
    const char *prompts[STEER_RUN_MAX];
    int n_prompts;
    int64_t seeds;                   /* seeds seed0 .. seed0 + seeds − 1 */
    uint64_t seed0;
    double seconds;
    double guidance;                 /* NaN: generation_config.json's */
    mg_sampler sampler;              /* same_draws is set by the run */
    const char *branch;              /* cond (default), uncond, both */
    int64_t batch;                   /* clips per CFG batch (16) */
    int audio;                       /* decode WAVs and describe them (1) when the folder has EnCodec */
    int64_t n_boot;                  /* bootstrap resamples (2000) */
    double fdr;                      /* Benjamini–Hochberg level (0.05) */
    uint64_t random_seed;            /* the random directions' and the bootstrap's Philox seed (0) */
    int64_t max_batches;             /* stop after this many batches (0: all), to be continued later */
    int64_t random_draws;            /* random directions per feature (STEER_RANDOM_DRAWS) */
    const char *clap;                /* CLAP folder: CLAP measures per clip (NULL: none) */
    const char *labels;              /* LABELS.jsonl: the features' label texts for the CLAP label alignment */
    const char *labeler;             /* take the labels of this labeler only (NULL: the first usable line) */
    const musae_ops *ops;
    musae_precision prec;
} steer_run_opts;

void steer_run_opts_defaults(steer_run_opts *o);

/* Runs (or continues) the study and writes out_dir/steer.jsonl, clips/, summary.json. Bad input is a musae_fail
 * naming the flag or file. Returns 0 when the study is complete, 2 when it stopped at max_batches. */
int steer_run(const steer_run_opts *o);

/* Writes out_dir/summary.json from out_dir/steer.jsonl (eval/steer_stats.h; docs/STEER.md "Statistics"). */
void steer_summarize(const steer_run_opts *o, const char *sae_sha256, int layer);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STEER_RUN_H */
