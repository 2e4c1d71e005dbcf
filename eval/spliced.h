/* An SAE judged inside the model: its reconstruction is spliced into MusicGen's residual stream and the
 * decoder's next-code cross-entropy is compared with the clean model and with zero-ablation (SAELens
 * evals.py / SAEBench core "CE loss score"; ../shared/reference/sae_training.md §3.4, §4.2).
 *
 * Clips come from audio exactly as in a capture (eval/capture.h: the same dataset walk, cutting, EnCodec,
 * delay pattern, unconditional unless captions are used). Per clip of F frames, T = F + K positions:
 *   clean   the teacher-forced forward; a READ hook takes x, the residual after layer L at positions
 *           1..F (the rows a capture stores: frame t at position t + 1);
 *   sae     the same forward with x replaced by x̂ = SAE(x) at those positions (a SET hook);
 *   zero    the same with x replaced by 0 at those positions (zero-ablation).
 * The BOS position 0 and the K − 1 trailing positions keep their clean residual: the SAE never saw them.
 *
 * Loss. The logits at position j for codebook k predict the token at position j + 1 of codebook k. The
 * predictions that target real codes are j = t + k for frames t = 0..F−1 (codebook k of frame t sits at
 * position t + 1 + k); every other position targets the BOS/pad id and is not scored. So each clip gives
 * exactly K·F scored predictions and
 *   CE = mean over clips, codebooks k and frames t of  −log softmax(logits[k, t + k])[codes[k, t]]   (nats),
 * every codebook weighted equally.
 *   ce_increase     = CE_sae − CE_clean
 *   loss_recovered  = (CE_zero − CE_sae) / (CE_zero − CE_clean)      1 = perfect, 0 = as bad as zeroing;
 *                     undefined (NaN, JSON null) when CE_zero <= CE_clean: zeroing the layer does not hurt
 *   kl_sae, kl_zero = mean KL(p_clean ‖ p_sae), KL(p_clean ‖ p_zero) over the same predictions
 *   kl_score        = (kl_zero − kl_sae) / kl_zero
 * and the reconstruction metrics of the spliced rows (FVU, MSE, L0, cosine, dead fraction) as `musae evaluate
 * --acts` computes them (sae/sae.h sae_eval_*). */
#ifndef MUSAE_SPLICED_H
#define MUSAE_SPLICED_H

#include <stdint.h>
#include <stdio.h>

#include "kernels/ops.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPLICED_MAX_K 16

typedef struct {
    const char *sae_dir, *model_dir;
    const char *audio;     /* a folder, list file or audio file (as musae capture), or: */
    const char *codes;     /* a codes file [B, K, F] (musae encode/generate): each item is a clip; with neither,
                            * the held-out clips of the store the SAE was trained on (musae.json data.acts and
                            * split), cut from their files and conditioned as the capture did */
    int layer;             /* -1: the checkpoint's (musae.json) */
    double clip_seconds;   /* <= 0: as the SAE's training store was cut (/capture/params), else 10 */
    double min_seconds;    /* <= 0: the store's, else clip_seconds */
    int captions;
    int64_t max_clips;     /* 0 = every clip */
    int force;             /* evaluate even if the checkpoint names another layer or model */
    const musae_ops *ops;  /* the table the model runs on (default the CPU) */
    musae_precision prec;  /* of the LM weights (default fp32) */
} spliced_opts;

void spliced_opts_defaults(spliced_opts *o);

typedef struct {
    int layer, K;
    int64_t clips, frames, predictions, files_skipped;
    double ce_clean, ce_sae, ce_zero;          /* nats per scored prediction */
    double ce_increase, loss_recovered;        /* loss_recovered is NaN when zeroing does not hurt */
    double kl_sae, kl_zero, kl_score;
    double ce_k[3][SPLICED_MAX_K];             /* per codebook: clean, sae, zero */
    sae_eval_result rec;                       /* FVU, MSE, L0, cos, dead fraction of the spliced rows */
    char model_id[512];
    char acts[4096];                           /* the store whose held-out clips were evaluated, or "" */
} spliced_result;

/* Runs the evaluation (bad input is a musae_fail with a one-line reason). */
void spliced_evaluate(const spliced_opts *o, spliced_result *r);
/* One JSON line. */
void spliced_print_json(FILE *f, const spliced_opts *o, const spliced_result *r);
/* The one-line summary for the log, in words where the JSON has null ("loss recovered: undefined (why)"). */
void spliced_summary(char *buf, size_t n, const spliced_result *r);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SPLICED_H */
