/* Distributed SAE training over host/dist (MPI on the CPU): data-parallel and latent-sharded steps.
 *
 * Both modes train on the same global batch as one process: every rank reads the whole batch from the same
 * stream, so `mpirun -np P` reaches the weights of one rank up to fp32 summation order (tests/test_sae_dist.c).
 *
 *   SAE_DIST_DATA    every rank holds all the weights and takes rows [r·N/P, (r+1)·N/P) of the batch.
 *   SAE_DIST_LATENT  rank r holds latents [r·M/P, (r+1)·M/P) of W_enc, b_enc, W_dec, their Adam moments and dead
 *                    counters; b_dec is replicated; every rank sees all N rows.
 *
 * The step, phase by phase (a GPU trainer mirrors these; collectives in brackets):
 *   1 prepare   xs = s·x, xc = xs − b_dec for the rows this rank sees; dead latents from the counters
 *               [latent: n_dead all-reduced]
 *   2 encode    local pre-activations → per-row top-k and top-k_aux among dead latents (batch-top-k: the local
 *               top N·k of the rank's [rows, latents] block)
 *   3 select    latent, per row: candidates (value, global latent) [all-gathered]; the global per-row top-k by
 *               sae_cpu_encode's order (larger value, then lower latent); each rank keeps its own latents.
 *               batch-top-k, both modes: candidates (value, global row, global latent) [all-gathered]; the
 *               global top N·k by sae_cpu_batch_topk's order (larger value, then lower row, then lower latent).
 *               AuxK the same way with k_aux.
 *   4 decode    x̂ and ê from own entries [latent: partial sums all-reduced; b_dec added by rank 0 only]
 *   5 loss      data: FVU's denominator is the global batch's Σ‖x − mean‖² [Σx, then the squares, all-reduced];
 *               per-row gradients; [fvu and aux all-reduced]
 *   6 backward  sparse, local: own rows (data) or own latents (latent)
 *   7 reduce    data: [every gradient all-reduced]; latent: db_dec = Σ_n g_xhat[n] − [Σ_i db_enc[i]·W_enc[i]]
 *   8 update    Adam + the decoder constraint on the local weights; replicated weights see identical gradients
 *   9 counters  latents selected anywhere reset their dead counters [data: fired mask all-reduced (max)];
 *               stats of the global batch [nnz all-reduced]
 * Every decision that picks a collective (batch-top-k, AuxK active) depends only on global values, so all ranks
 * make the same calls in the same order. */
#ifndef MUSAE_SAE_DIST_H
#define MUSAE_SAE_DIST_H

#include "host/dist/dist.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SAE_DIST_NONE = 0, SAE_DIST_DATA = 1, SAE_DIST_LATENT = 2 } sae_dist_mode;

/* Rank r's share [*lo, *hi) of n items split over P ranks: [floor(r·n/P), floor((r+1)·n/P)). */
void sae_dist_slice(int64_t n, int r, int P, int64_t *lo, int64_t *hi);

/* A trainer for one rank of d->world (mode NONE or a single rank: the ordinary trainer). The latent mode needs
 * M >= world; the caller checks it and the batch size for a user-facing message. */
void sae_dist_trainer_init(sae_trainer *t, const sae_config *cfg, int64_t batch, const musae_dist *d,
                           sae_dist_mode mode);
/* One step on the whole global batch x [n, d] (every rank passes the same rows). sae_trainer_step calls it. */
void sae_dist_step(sae_trainer *t, const float *x, int64_t n, sae_step_stats *out);
void sae_dist_bufs_free(struct sae_dist_bufs *b);
/* Pieces of the step shared by sae_trainer_step (sae.c) and sae_dist_step: rows [r0, r0 + n) of the raw batch
 * scaled into t->x and centred on b_dec into t->xc; the latents [0, m) held here marked in t->dead when they have
 * not fired for more than dead_tokens, and their count. */
void sae_step_load_rows(sae_trainer *t, const float *x_raw, int64_t r0, int64_t n);
int64_t sae_step_mark_dead(sae_trainer *t, int64_t m);

/* The trainer in the ordinary (unsharded) layout on rank 0, for checkpoints and resume states. Collective:
 * every rank calls it at the same point. Returns t itself when it is not sharded, else fills tmp (weights,
 * moments, dead counters, counters; no batch buffers) from all shards; NULL on ranks other than 0. Replicated
 * data-parallel weights are checked to agree across ranks (a hash, all-reduced min and max).
 * sae_dist_full_free(tmp) releases what was gathered into tmp (nothing when t was returned). */
const sae_trainer *sae_dist_full(const sae_trainer *t, sae_trainer *tmp);
void sae_dist_full_free(sae_trainer *tmp);

/* ---- the pure selections of phase 3 (tests/test_sae_dist.c checks them against the one-process ops) ---- */

/* A candidate: a value at (row of the global batch, global latent). val <= 0 marks padding. */
typedef struct {
    float val;
    int32_t row, idx;
} sae_cand;

/* cand [P, N, kc] (each rank's block of N rows of kc candidates, as all-gathered). For every row, the best k
 * candidates with val > 0 in sae_cpu_encode's order (larger value, ties to the lower latent), best first, as CSR
 * codes with global latents (out->cap >= N·k). */
void sae_dist_merge_rows(const sae_cand *cand, int P, int64_t N, int64_t kc, int k, sae_codes *out);

/* sel[i] = 1 for the `total` best of cand[0, n) with val > 0 in sae_cpu_batch_topk's order (larger value, ties
 * to the lower row, then the lower latent), else 0. Returns the smallest selected value (0 if none). */
float sae_dist_select_batch(const sae_cand *cand, int64_t n, int64_t total, uint8_t *sel);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_DIST_H */
