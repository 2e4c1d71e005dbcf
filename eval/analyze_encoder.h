/* The row encoder of `musae analyze` (eval/analyze.c): the codes of a block of store rows with the SAE as trained,
 * on the GPU (--device cuda, sae/sae_gpu_infer.h), through a screen and f32 rescore (top-k and batch-top-k SAEs
 * on CPUs with AMX or AVX2, eval/analyze_encode.h) or through sae_model_infer's sgemm; without a screen a
 * batch-top-k SAE goes in pieces bounded by its [rows, M] pre-activation buffer, its inference threshold applied on
 * the host. */
#ifndef MUSAE_ANALYZE_ENCODER_H
#define MUSAE_ANALYZE_ENCODER_H

#include <stdint.h>

#include "eval/analyze_encode.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codes of up to `rows` rows at once, with the buffers they need. */
typedef struct {
    const sae_model *m;
    sae_codes codes;             /* the last run's codes: ptr [rows + 1], idx/val grown as needed */
    float *xc, *pre;             /* [rows, d] centred rows; [pre_rows, M] pre-activations (batch-top-k only) */
    int64_t pre_rows;            /* rows per sae_model_infer call (batch-top-k: bounded by the [rows, M] buffer) */
    void *gpu;                   /* sae_gpu_encoder when the rows are encoded on the GPU (--device cuda), else NULL */
    analyze_screen *screen;      /* the screen + f32 rescore (eval/analyze_encode.h), else NULL: sgemm */
} analyze_encoder;

/* An encoder of m for blocks of at most `rows` rows; on_gpu: on the current CUDA device (CUDA builds only). */
void analyze_encoder_init(analyze_encoder *e, const sae_model *m, int64_t rows, int on_gpu);
/* Encodes n <= rows rows of x into e->codes (in pieces of e->pre_rows for batch-top-k, whose threshold rule makes
 * pieces independent). */
void analyze_encoder_run(analyze_encoder *e, const float *x, int64_t n);
void analyze_encoder_free(analyze_encoder *e);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_ENCODER_H */
