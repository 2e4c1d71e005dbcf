/* Internal to capture.c and capture_check.c: the store checks of a capture that continues a store. */
#ifndef MUSAE_CAPTURE_INT_H
#define MUSAE_CAPTURE_INT_H

#include <stddef.h>

#include "eval/capture.h"

/* /capture/params of a store, f32 [P_N]: what the clips were cut with, so a resume with other settings is refused
 * instead of mixing two clip grids in one store. */
enum { P_CLIP_SAMPLES, P_MIN_SAMPLES, P_CAPTIONS, P_RATE, P_N };

/* "2,6,12" */
void capture_layers_str(const int *l, int n, char *out, size_t cap);

/* Refuses (musae_fail, naming `out` and what differs) to continue the store `out` with this run: another model,
 * other layers, d_model or dtype, clips cut otherwise than params [P_N], or rows computed with other CPU
 * arithmetic than arith (cpu_gemm_arith(); NULL: this run is not on the CPU in fp32, no check). */
void capture_check_resumable(const char *out, const char *model_id, const capture_opts *o, int d_model,
                             const float *params, const char *arith);

/* capture_check_resumable for each shard of a sharded store (capture_shards_begin's check; arg: the struct). */
typedef struct {
    const char *model_id;
    const capture_opts *o;
    int d_model;
    const float *params;
    const char *arith;
} capture_resume_check;
void capture_check_shard(const char *shard, void *arg);

#endif /* MUSAE_CAPTURE_INT_H */
