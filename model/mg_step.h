/* One MusicGen decoding step that stays on the device (kernels/step_ops.h + the ops.h table + mg_linear):
 * embeddings at the device position, every layer with its K/V appended at that position, steering ADD and READ
 * capture hooks, the final norm and heads, then the fused CFG + warpers + draw + delay pattern that writes the
 * next step's input ids and the code sequence, and the step counter's increment. Nothing in a step depends on
 * host values that change between steps, so on CUDA one step is captured as a graph and replayed
 * (model/generate.c); on the CPU the same calls run directly.
 *
 * The step is mg_forward's t = 1 incremental call (model/musicgen.c) op for op: on the CPU table its logits
 * are the same bits, so mg_generate's codes do not depend on which loop ran (tests/test_step). */
#ifndef MUSAE_MG_STEP_H
#define MUSAE_MG_STEP_H

#include <stdint.h>

#include "kernels/step_ops.h"
#include "model/delay.h"
#include "model/musicgen.h"
#include "model/sampling.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A hook as the step runs it: the branch's rows [r0, r0 + n_rows), the ADD coefficients on the device, a
 * READ's ring on the device and its host staging. */
typedef struct {
    const mg_hook *h;
    int64_t r0, n_rows;
    float *alpha;          /* ADD: device [n_rows], scale · item_scale[item] */
    float *ring;           /* READ: device [slots, n_rows, H] */
    float *stage[2];       /* READ: host (page-locked on CUDA) [slots, n_rows, H], alternating chunks */
} mg_step_hook;

typedef struct {
    const musae_step_ops *so;
    mg_state st;           /* caches, activations, logits and text: an incremental state, t_call = 1 */
    int64_t B, rows;       /* items; forward rows (2B with CFG) */
    int cfg;
    mg_delay_plan plan;
    musae_sample_params sp;
    int64_t *pos;          /* device [1]: the position the next step feeds */
    int64_t *ids;          /* device [K, rows]: the next step's input tokens */
    float *kv_new;         /* device [rows, 2H]: one step's K/V before the append */
    int64_t *seq;          /* device [B, K, L]: the delayed sequence, BOS where nothing is generated */
    int64_t *tok;          /* device [B, K]: the last step's tokens (before the delay pattern) */
    float *scores;         /* device [B, K, V] with CFG; without, the logits are the scores */
    mg_step_hook *hooks;
    int n_hooks;
    int64_t slots;         /* READ ring slots = steps per downloaded chunk */
    void *ev[2];           /* the chunk downloads into stage[0] / stage[1] */
    int64_t pend_s0[2], pend_n[2]; /* steps a staged chunk holds (n = 0: none pending) */
    int64_t chunks;
} mg_step;

/* Whether the step can run these hooks (ADD and READ; SET needs the host loop). */
int mg_step_supports(const mg_hook *hooks, int n_hooks);
/* Prepares B items for plan.steps steps: uploads the text (may be NULL: unconditional), BOS inputs, position 0.
 * cfg: rows [B, 2B) are the unconditional branch. hooks must outlive the step; READ hooks are gathered every
 * `slots` steps. */
void mg_step_init(mg_step *s, const mg_model *m, const musae_step_ops *so, int64_t B, int cfg, const float *text_states,
                  const float *text_mask, int64_t S, const mg_delay_plan *plan, const mg_sampler *sampler, float guidance,
                  const mg_hook *hooks, int n_hooks, int64_t slots);
/* Queues one step (no host synchronization). */
void mg_step_run(const mg_model *m, mg_step *s);
/* After step `step` (0-based): when a ring chunk is complete (or last), queues its download and scatters the
 * chunk downloaded before it into the READ hooks' host dst. */
void mg_step_after(const mg_model *m, mg_step *s, int64_t step, int last);
void mg_step_free(mg_step *s, const mg_model *m);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_MG_STEP_H */
