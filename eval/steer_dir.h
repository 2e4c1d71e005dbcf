/* Steering directions for `musae generate --steer` (docs/STEER.md): the vector added to the residual stream after
 * the SAE's layer while generating, built from SAE features or read from a file, with every refusal a user can
 * meet (one line naming the flag or file, exit 1 through musae_fail).
 *
 *   features:  v = Σ_i fl(α_i·β) · W_dec[f_i]     in f32, terms in the order given, each product rounded
 *   a vector:  v = fl(α·β) · u                    u from --steer-vector FILE (tensor "direction", f32 [d_model])
 *
 * Units. A musae checkpoint's weights act on raw residuals: the training input scale s (musae.json
 * input_scale) is folded into encoder.bias and b_dec, so latent values are z/s and x̂ = W_decᵀ(z/s) + b_dec, as
 * evaluate's splice decodes them (eval/spliced.c). A latent of value a therefore moves the residual by a·W_dec[f]
 * in the residual's own units, and β = the feature's largest latent value (FEATURES.h5 /features/max_act, from
 * the same folded encoder) needs no rescaling: α·β·W_dec[f] is exactly "the feature at α of its maximum".
 *
 * The hook: an ADD after layer L at sequence positions [pos_begin, pos_end) of the chosen CFG branch, scale 1
 * (x + 1·v = x + v exactly), so the add is x + v on the host loop and the device loop alike. */
#ifndef MUSAE_STEER_DIR_H
#define MUSAE_STEER_DIR_H

#include <stdint.h>

#include "eval/features_io.h"
#include "model/musicgen.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STEER_MAX_TERMS 64

typedef struct {
    const char *sae_dir;      /* --sae */
    const char *spec;         /* --steer "F:ALPHA[,F:ALPHA...]" */
    const char *vector;       /* --steer-vector FILE */
    double vector_alpha;      /* --steer-alpha (for --steer-vector; default 1) */
    double beta;              /* --beta (any number: refused here unless finite and > 0) */
    int have_beta;
    const char *features;     /* --features FEATURES.h5: each feature's β = /features/max_act[f] (with --steer) */
    double alpha_max;         /* |α| allowed up to this (default 1; --alpha-max) */
    const char *branch;       /* --steer-branch cond|uncond|both (NULL = cond) */
    const char *frames;       /* --steer-frames a:b (NULL = every position) */
    int layer;                /* --steer-layer (-1 = the SAE's musae.json layer) */
    int force;                /* --force: an SAE whose musae.json names another model or layer */
} steer_opts;

void steer_opts_defaults(steer_opts *o);
/* Whether any steering flag was given. */
int steer_opts_any(const steer_opts *o);

typedef struct {
    int layer;
    mg_branch branch;
    int64_t pos_begin, pos_end;    /* sequence positions; frames [a, b) are positions [a + 1, b + 1) */
    int64_t frame_begin, frame_end; /* -1, -1 when every position */
    int64_t H;
    float *vec;                    /* host [H] */
    double norm;                   /* ‖vec‖ */
    int n_terms;
    int64_t feature[STEER_MAX_TERMS];
    double alpha[STEER_MAX_TERMS];
    double beta;                   /* --beta, or the first term's β from --features */
    double term_beta[STEER_MAX_TERMS]; /* each term's β */
    char *json;                    /* what was done, as one JSON object (the codes file's "steer" metadata) */
} steer_plan;

/* Reads FEATURES.h5 (eval/features_io.h) for the SAE folder sae_dir, refusing a file of another SAE: the sha256 of
 * sae_dir/sae.safetensors must be the one the file records, and its latent count the SAE's. `flag` names the option
 * in the messages. A failure is a musae_fail naming both files. */
void steer_features_open(const char *flag, const char *features_path, const char *sae_dir, int64_t num_latents,
                         musae_features *f);
/* β of feature f from FEATURES.h5: /features/max_act[f], refused (naming the file and the feature) unless finite
 * and > 0 (a dead feature has max_act 0: nothing to scale by). */
double steer_features_beta(const char *features_path, const musae_features *fs, int64_t f);

/* Validates the options against the model (folder model_dir, loaded m) and a generation of `frames` frames, with
 * or without CFG, and builds the direction. Any refusal is a musae_fail naming the flag. */
void steer_plan_build(const steer_opts *o, const mg_model *m, const char *model_dir, int64_t frames, int cfg,
                      steer_plan *p);
/* The ADD hook of the plan; vec_dev is p->vec uploaded to the model's device. */
mg_hook steer_plan_hook(const steer_plan *p, const float *vec_dev);
void steer_plan_free(steer_plan *p);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STEER_DIR_H */
