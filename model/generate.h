/* Autoregressive MusicGen generation, as HF MusicgenForConditionalGeneration.generate does it:
 *   sequence position 0 holds BOS for every codebook; step s (0 .. N-1) feeds position s to the decoder
 *   (K/V cached) and chooses position s + 1 of every codebook from the last logits; positions the delay
 *   pattern does not free are overwritten with BOS (model/delay.h). After N steps, frame t of codebook k
 *   is read from its delayed position.
 *   With text and guidance > 1 the decoder runs [cond; uncond] rows in one batch (uncond rows skip
 *   cross-attention) and the scores are uncond + (cond - uncond) · guidance, before any warper.
 *   Token choice and its randomness: model/sampling.h.
 *
 * Two loops compute the same codes (tests/test_step):
 *   device loop (model/mg_step.h): the whole step stays on the device (the ops table's step table,
 *     kernels/step_ops.h); on CUDA the step is captured once as a CUDA graph after a warm-up step and
 *     replayed; the host only downloads the codes at the end, READ captures in chunks, and the scores when
 *     on_step is set.
 *   host loop: a forward per step, logits downloaded, CFG and sampling on the host. Used when the ops table has
 *     no step table, when a hook is SET (the step runs ADD and READ only), or when asked for. */
#ifndef MUSAE_GENERATE_H
#define MUSAE_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "model/delay.h"
#include "model/musicgen.h"
#include "model/sampling.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Conditioning for the B items: host states [B, S, H] (after enc_to_dec_proj, times the mask) and mask
 * [B, S] (1 = real token). states == NULL: unconditional generation. */
typedef struct {
    const float *states;
    const float *mask;
    int64_t S;
} mg_text;

typedef enum {
    MG_LOOP_AUTO = 0,  /* the device loop (graph where the device has graphs) when it can run, else the host loop */
    MG_LOOP_HOST,      /* the host loop */
    MG_LOOP_DEVICE,    /* the device loop without graphs (plain calls every step) */
    MG_LOOP_GRAPH,     /* the device loop with graph replay where the device has graphs */
} mg_gen_loop;

typedef struct {
    int64_t steps;      /* forward steps, HF's max_new_tokens (mg_delay_plan_frames(K, F).steps for F frames) */
    float guidance;     /* classifier-free guidance scale, applied when > 1 and text is given */
    mg_sampler sampler;
    int progress;       /* report progress (a bar on a TTY, log lines otherwise) */
    mg_gen_loop loop;   /* which loop runs (0 = automatic); DEVICE/GRAPH fail when the device loop cannot run */
} mg_gen_params;

/* The loop mg_generate runs for these parameters and hooks (never AUTO), and why in words. */
mg_gen_loop mg_gen_loop_for(const mg_model *m, const mg_gen_params *p, const mg_hook *hooks, int n_hooks,
                            const char **why);

/* Called after every step with the scores the tokens were chosen from (host [B, K, V], after CFG, before
 * warpers) and the chosen tokens [B, K] (before the delay pattern overwrites any with BOS). */
typedef void (*mg_step_fn)(void *ctx, int64_t step, const float *scores, const int64_t *tokens);

/* Whether F frames fit the model's positions; 0, or -1 with a one-line reason in err. */
int mg_check_frames(const mg_model *m, int64_t frames, char *err, size_t errlen);

/* Generates for B items; codes receives [B, K, F] with F = mg_delay_plan_steps(K, p->steps).frames, which
 * is returned. hooks (may be NULL) run at every step; their positions are sequence positions. */
int64_t mg_generate(const mg_model *m, int64_t B, const mg_text *text, const mg_gen_params *p, const mg_hook *hooks,
                    int n_hooks, mg_step_fn on_step, void *ctx, int64_t *codes);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_GENERATE_H */
