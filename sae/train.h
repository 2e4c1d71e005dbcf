/* `musae train`: trains a grid of SAEs (layers × expansions × k) from one shuffled stream of a store, with
 * JSONL metrics, a progress bar, periodic exact-resume state, a held-out evaluation and final checkpoints.
 *
 * Output: one SAE → DIR/{sae.safetensors, cfg.json, musae.json}; a grid → DIR/layer<L>_k<K>_x<E>/...
 * DIR/metrics.jsonl gets one line per SAE per log interval and one "eval" line per SAE at the end.
 * Resume state: every SAE's DIR[/name]/state/step<S>.safetensors, then DIR/state/run.json naming step S
 * and the stream position (written last, atomically: it always names a complete set).
 * Under mpirun/srun (o->dist with world > 1) every rank trains (sae/sae_dist.h) and rank 0 alone writes metrics,
 * states and checkpoints, always in the ordinary unsharded layout; any mode resumes any mode's state.
 * device MUSAE_DEVICE_CUDA: the steps run on the GPU trainer (sae/sae_gpu.h), fed by the streaming feed; init,
 * state and checkpoints stay with the CPU trainer, so a GPU run's state resumes on the CPU and vice versa. */
#ifndef MUSAE_SAE_TRAIN_H
#define MUSAE_SAE_TRAIN_H

#include "host/core/dtype.h"
#include "host/core/tensor.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAE_GRID_MAX 16
/* Defaults chosen from the run (docs/SAE.md "Run length and schedule"): without --tokens, SAE_DEFAULT_EPOCHS
 * passes over the training split; a run repeating its data more than SAE_WARN_EPOCHS times, or a default length
 * of fewer than SAE_WARN_FEW_STEPS steps, is warned about;
 * without --warmup, min(SAE_WARMUP_MAX, SAE_WARMUP_PERCENT % of the steps); more than SAE_WARN_DEAD of the
 * latents dead at the end is warned about. */
#define SAE_DEFAULT_EPOCHS 10
#define SAE_WARN_EPOCHS 10
#define SAE_WARN_FEW_STEPS 100 /* a default run length shorter than this is warned about */
#define SAE_WARMUP_MAX 1000
#define SAE_WARMUP_PERCENT 5
#define SAE_WARN_DEAD 0.5
/* The encoder bias's lr is this times the lr: input scaling (E‖s·x‖² = d) slows the biases' Adam steps by s against
 * training on raw rows (docs/SAE.md "Why musae trails a plain reference, and the fix"). */
#define SAE_DEFAULT_BENC_LR_MULT 2.0f

typedef struct {
    const char *acts, *out;
    int n_layers, layers[SAE_GRID_MAX];
    int n_k, ks[SAE_GRID_MAX];
    int n_exp, exps[SAE_GRID_MAX];
    int64_t tokens, batch;     /* tokens 0: epochs passes over the training split */
    double epochs;             /* 0: SAE_DEFAULT_EPOCHS */
    sae_config recipe;         /* everything but d, M, k; k_aux < 0 means d/2, warmup_steps < 0 sae_default_warmup */
    double val_fraction;
    uint64_t split_seed, data_seed;
    int64_t shuffle_rows, init_rows, save_every, log_every, eval_tokens;
    int resume, keep_state, skip_nonfinite;
    const musae_dist *dist;    /* NULL: one process */
    int dist_mode;             /* sae_dist_mode for world > 1; 0 picks data-parallel */
    musae_device device;       /* where the steps run (the CLI resolves --device); CPU by default */
    musae_dtype precision;     /* the GPU trainer's MUSAE_F32 or MUSAE_BF16; the CPU trainer is f32 only */
} sae_train_opts;

void sae_train_opts_defaults(sae_train_opts *o);

/* The run as resolved from the options and the store (sae/train_plan.c). */
typedef struct {
    int64_t train_rows, total_steps;
    double epochs;               /* tokens / train_rows */
    char tokens_rule[160];       /* "--tokens", or "10 passes over the 2280 training rows (default)" */
    char warmup_rule[96];        /* "--warmup", or "min(1000, 5% of 733 steps)" */
    sae_warnings warnings;       /* about the whole run (each SAE's musae.json repeats them) */
} sae_train_plan;

/* min(SAE_WARMUP_MAX, SAE_WARMUP_PERCENT % of total_steps). */
int64_t sae_default_warmup(int64_t total_steps);
/* Fills in o->tokens (0: from o->epochs) and o->recipe.warmup_steps (< 0: sae_default_warmup), logs the
 * choices and warns about repeated data, a default run too short to train and a warmup as long as the run. */
void sae_train_plan_resolve(sae_train_opts *o, int64_t train_rows, sae_train_plan *p);
/* LOG_WARN the line and keep it in w (up to SAE_MAX_WARNINGS). */
void sae_warn(sae_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Warns when more than SAE_WARN_DEAD of an SAE's latents are dead at the end. */
void sae_check_dead(sae_warnings *w, const char *name, double dead_frac, const char *measured);
/* Dead at the end of a run: not fired in the last sae_dead_window tokens, min(dead_tokens, a quarter of the
 * tokens seen) (AuxK's rule, shortened so that a run shorter than dead_tokens can see latents die). */
int64_t sae_dead_window(const sae_trainer *t);
double sae_trainer_dead_fraction(const sae_trainer *t);
/* Why the GPU trainer cannot run these options (latent-sharded, batch-top-k data-parallel, data parallel
 * without NCCL), naming the alternative; NULL when it can. o->dist must be set. */
const char *sae_train_gpu_unsupported(const sae_train_opts *o);
/* Runs to completion (or until SIGINT/SIGTERM, after which it saves the state and returns 130). */
int sae_train_run(const sae_train_opts *o);

/* Evaluates a model on a split of a store: one pass, at most max_tokens rows (0 = all), batches of `batch`;
 * fills recovered when the store has /truth/directions. */
sae_eval_result sae_evaluate_store(const sae_model *m, musae_store *s, int layer, musae_split split,
                                   double val_fraction, uint64_t split_seed, int64_t max_tokens, int64_t batch,
                                   int skip_nonfinite);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_TRAIN_H */
