/* The top-k sparse autoencoder: model, trainer, evaluation and checkpoints (CPU; kernels in kernels/sae_ops.h).
 *
 *   xc  = s·x − b_dec                       s: one input scale so that E‖s·x‖² = d (stored, folded at save)
 *   z   = topk(ReLU(W_enc xc + b_enc))      per row, or over the whole batch (batch-top-k)
 *   x̂   = W_decᵀ z + b_dec
 *   loss = FVU + α·AuxK,  FVU = Σ‖s·x − x̂‖² / Σ‖s·x − mean‖²  (per batch)
 *   AuxK: the top-k_aux pre-activations of the latents dead for more than dead_tokens tokens reconstruct the
 *         residual e = s·x − x̂ (without b_dec), scaled by min(n_dead / k_aux, 1) (Gao et al.; sparsify with
 *         its #132 fix).
 * Recipe: W_dec rows unit norm, W_enc = W_dec at init (W_enc is [M, d], so this is "W_enc = W_decᵀ" in the
 * column convention), b_enc = 0, b_dec = geometric median (or mean) of a sample; Adam(β 0.9/0.999, eps
 * 6.25e-10), lr 4e-4/√(M/16384) (the encoder bias at benc_lr_mult times it), linear warmup, optional linear decay to 0; the gradient parallel to each
 * decoder row is removed before the step and the rows are renormalized after it.
 *
 * A checkpoint folder (ARCHITECTURE.md, contract) holds sae.safetensors + cfg.json in sparsify's layout,
 * with the weights acting on raw (unscaled) activations: encoder.weight = W_enc, encoder.bias = b_enc/s,
 * W_dec, b_dec = b_dec/s (so latent values are z/s); musae.json; and state/ with the exact training state. */
#ifndef MUSAE_SAE_H
#define MUSAE_SAE_H

#include <stdint.h>
#include <stdio.h>

#include "host/core/check.h"
#include "host/dist/dist.h"
#include "host/io/store.h"
#include "kernels/sae_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SAE_BDEC_MEDIAN = 0, SAE_BDEC_MEAN = 1, SAE_BDEC_ZERO = 2 } sae_bdec_init;

typedef struct {
    int d, M, k;
    int batch_topk;         /* select the top N·k of the batch instead of k per row */
    int k_aux;              /* AuxK latents per row; default d/2 */
    float auxk_alpha;       /* 1/32; 0 disables AuxK */
    int64_t dead_tokens;    /* a latent is dead after this many tokens without firing (10M) */
    float lr;               /* 0: 4e-4 / sqrt(M / 16384) */
    float benc_lr_mult;     /* the encoder bias steps with lr·benc_lr_mult (1 here; musae train's default 2) */
    int64_t warmup_steps;   /* linear warmup: lr·min(1, (t+1)/warmup) at step t (0-based) */
    int64_t total_steps;    /* for the decay schedule */
    double decay_frac;      /* > 0: linear decay to 0 over the last decay_frac of total_steps */
    float beta1, beta2, eps;
    uint64_t seed;          /* W_dec init */
    sae_bdec_init bdec_init;
} sae_config;

void sae_config_defaults(sae_config *c, int d, int M, int k);
float sae_lr_at(const sae_config *c, int64_t step);

/* Parameters, one allocation: W_enc [M, d], b_enc [M], W_dec [M, d], b_dec [d]. */
typedef struct {
    int64_t d, M;
    float *W_enc, *b_enc, *W_dec, *b_dec;
    float *base;
} sae_params;

void sae_params_alloc(sae_params *p, int64_t d, int64_t M);
void sae_params_free(sae_params *p);
int64_t sae_params_numel(int64_t d, int64_t M);

typedef struct {
    double loss, fvu, auxk, l0, dead_frac;
} sae_step_stats;

struct sae_dist_bufs; /* the candidate exchange of the distributed step (sae/sae_dist.c) */

typedef struct {
    sae_config cfg;            /* cfg.M: all latents, also when this process holds a shard */
    sae_params p, g, m, v;     /* weights, gradients, Adam moments; [Ml] latent rows (b_dec whole) */
    int64_t *since_fired;      /* [Ml] tokens since each latent last fired */
    int64_t step, tokens;
    float scale;               /* s */
    double threshold;          /* batch-top-k: EMA of the smallest selected activation (for inference) */
    /* per-batch buffers for up to `batch` rows */
    int64_t batch;
    float *x, *xc, *xhat, *ehat, *g_xhat, *g_ehat; /* [batch, d] */
    float *pre;                /* [batch, M], batch-top-k only */
    uint8_t *dead;
    sae_codes codes, aux;
    void *scratch;
    double seconds[4];         /* time spent in encode, decode + loss, backward, optimizer (for benchmarks) */
    /* distribution (sae/sae_dist.h): one process has dist_mode 0 (SAE_DIST_NONE), m0 = 0, Ml = M */
    int dist_mode;
    const musae_dist *dist;
    int64_t m0, Ml;            /* this process's latents [m0, m0 + Ml) (latent-sharded mode), else [0, M) */
    struct sae_dist_bufs *xb;
} sae_trainer;

void sae_trainer_init(sae_trainer *t, const sae_config *cfg, int64_t batch);
/* The same for latents [m0, m0 + Ml) of cfg->M only (sae_dist_trainer_init picks the slice). */
void sae_trainer_init_shard(sae_trainer *t, const sae_config *cfg, int64_t batch, int64_t m0, int64_t Ml);
void sae_trainer_free(sae_trainer *t);
/* The update of a step whose gradients t->g are complete: Adam on this process's latents [m0, m0 + Ml) and b_dec,
 * the decoder's parallel-gradient removal and row renormalization (sae_cpu_adam_decoder). Then the step's times go
 * to t->seconds: encode from t0 to t1, decode + loss to t2, backward to this call, and the update itself. */
void sae_trainer_update(sae_trainer *t, double t0, double t1, double t2);
/* Input scale, W_dec/W_enc init from cfg.seed (Philox), b_dec from the sample (raw rows [n, d]). Each W_dec
 * element is drawn by its global (latent, dim) index, so a shard holds exactly its rows of the global init. */
void sae_trainer_init_weights(sae_trainer *t, const float *sample, int64_t n);
/* One step on raw rows x [n, d] (n <= batch): forward, loss, sparse backward, Adam, decoder constraint.
 * Distributed trainers (dist_mode != 0) take the whole global batch on every rank (sae/sae_dist.h). */
void sae_trainer_step(sae_trainer *t, const float *x, int64_t n, sae_step_stats *out);
/* The user-facing end of a step whose n rows have no variance (all equal, or one row): the loss (FVU) divides by
 * it, so the step is undefined. musae train refuses the batch sizes that cause it up front; this is the store
 * whose rows are all the same. */
MUSAE_NORETURN void sae_fail_constant_batch(int64_t n, double tv);

/* Weiszfeld's geometric median of rows x [n, d] into out [d] (starting from the mean; at most max_iter
 * iterations, stops when the step is below tol·‖median‖). */
void sae_geometric_median(const float *x, int64_t n, int64_t d, int max_iter, double tol, float *out);

/* ---- an SAE for inference (weights on raw activations, as saved) ------------------------------------------ */
typedef struct {
    int d, M, k, batch_topk;
    sae_params p;
    int layer;              /* -1 when unknown (a sparsify-saved SAE) */
    char model[256];
    float scale;            /* informational: the training scale s (already folded) */
    double threshold;
    int has_split;          /* musae.json named the held-out split it was trained with: */
    double val_fraction;
    uint64_t split_seed;
    char acts[4096];        /* the store it was trained on (musae.json data.acts), "" when unknown */
} sae_model;

/* Folds the trainer's scale into inference weights (copies). */
void sae_model_from_trainer(sae_model *m, const sae_trainer *t, int layer, const char *model);
void sae_model_free(sae_model *m);
/* Encodes raw rows x [n, d] into codes (cap >= n·k; batch-top-k selects n·k over these rows). */
void sae_model_encode(const sae_model *m, const float *x, int64_t n, sae_codes *codes, float *xc_scratch,
                      float *pre_scratch);

/* Encodes raw rows x [n, d] as at inference, each row independently of the others (so a row's code does not
 * depend on which rows share its batch): top-k per row, or for a batch-top-k SAE every pre-activation above
 * the threshold recorded at training (dictionary_learning's inference rule). Rows of codes are sorted by value,
 * descending, ties to the lower latent. codes->idx/val are grown with realloc as needed (codes->cap follows);
 * ptr must hold n + 1. xc [n, d]; pre [n, M] for batch-top-k SAEs (may be NULL otherwise). */
void sae_model_infer(const sae_model *m, const float *x, int64_t n, sae_codes *codes, float *xc, float *pre);
/* A batch-top-k SAE's inference rule on its pre-activations pre [n, M] (ReLU(W_enc xc + b_enc), from the CPU
 * or the GPU encoder): every value above m->threshold, rows sorted as sae_model_infer's. ptr must hold n + 1. */
void sae_model_threshold_codes(const sae_model *m, const float *pre, int64_t n, sae_codes *codes);

/* ---- evaluation ------------------------------------------------------------------------------------------- */
typedef struct {
    int64_t n;                 /* rows */
    double sq_err;             /* Σ‖x − x̂‖² */
    double *sum, *sum_sq;      /* [d] Σx, Σx² per dimension */
    double nnz;                /* Σ L0 */
    double cos;                /* Σ cos(x, x̂) */
    int64_t *fired;            /* [M] rows where each latent was active */
    int d, M;
} sae_eval_acc;

void sae_eval_init(sae_eval_acc *a, int d, int M);
void sae_eval_free(sae_eval_acc *a);
/* Encodes and decodes a batch of raw rows and accumulates the metrics. */
void sae_eval_batch(sae_eval_acc *a, const sae_model *m, const float *x, int64_t n);
typedef struct {
    int64_t tokens;
    double fvu, mse, l0, cos, dead_frac;
    double recovered;          /* planted-concept stores: fraction of true directions found; NaN otherwise */
} sae_eval_result;
sae_eval_result sae_eval_finish(const sae_eval_acc *a);
/* Adds tokens, fvu, mse, l0, cos, dead_frac (and recovered when measured) to the JSON object o (a cJSON *): the
 * one writer of musae.json's final_metrics, metrics.jsonl's eval lines and `musae evaluate`'s line. An undefined
 * number (an FVU of constant rows) is null; nothing is written as a -1 placeholder. */
struct cJSON;
void sae_eval_to_json(struct cJSON *o, const sae_eval_result *e);
/* Fraction of truth directions [G, d] whose best cosine with a decoder row exceeds thr. */
double sae_recovered_fraction(const sae_model *m, const float *truth, int64_t G, double thr);

/* Prints a checkpoint folder for `musae info`: shapes, k, layer, model, scale, training and final metrics. */
void sae_describe(const char *dir, FILE *out);

/* ---- checkpoints ------------------------------------------------------------------------------------------ */
/* What a run warned about, kept for musae.json's "warnings" (sae_warn in sae/train.h logs and adds). */
#define SAE_MAX_WARNINGS 4
#define SAE_WARNING_LEN 400
typedef struct {
    int n;
    char text[SAE_MAX_WARNINGS][SAE_WARNING_LEN];
} sae_warnings;

typedef struct {
    int layer;
    char model[256];
    char acts[4096];        /* the store trained on */
    double val_fraction;
    uint64_t split_seed, data_seed;
    int has_eval;
    sae_eval_result eval;
    const char *device;     /* where the training steps ran: "cpu" or "cuda" (NULL: not recorded) */
    const char *precision;  /* the trainer's arithmetic: "f32" or "bf16" (NULL: not recorded) */
    int64_t train_rows;     /* rows of the training split (0: not recorded) */
    double epochs;          /* tokens seen / train_rows */
    const char *tokens_rule, *warmup_rule; /* how the run length and warmup were chosen ("--tokens", ...) */
    double dead_frac;       /* latents dead at the end (< 0: not recorded), measured as dead_measured says */
    const char *dead_measured;
    sae_warnings warnings;
} sae_meta;

/* Writes sae.safetensors, cfg.json and musae.json into dir (created), each atomically. */
void sae_save(const char *dir, const sae_model *m, const sae_trainer *t, const sae_meta *meta);
/* Loads a checkpoint folder (musae's or sparsify's); NULL-free: returns 0, or -1 with a reason in err. */
int sae_load(const char *dir, sae_model *m, char *err, size_t errlen);
/* The exact training state: weights, moments, counters and a JSON blob (the run's own) in one file,
 * written atomically. */
void sae_state_save(const char *path, const sae_trainer *t, const char *run_json);
/* Loads into an initialized trainer with the same config (a latent shard reads its rows of the ordinary
 * layout); returns the malloc'd run JSON. sae_state_save needs the ordinary layout (sae_dist_full). */
char *sae_state_load(const char *path, sae_trainer *t);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_H */
