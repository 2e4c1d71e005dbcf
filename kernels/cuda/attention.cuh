/* Scaled dot-product attention on the GPU with the exact semantics of kernels/cpu/attention.c (see
 * musae_attn_params in kernels/ops.h): masked scores get -FLT_MAX added, so a fully masked row is a uniform
 * average over all tk keys, as HF computes it.
 *
 * Two kernels, dispatched by shape:
 *   prefill (tq > 1): tiles of 64 queries × 32 keys in shared memory, one thread per query row, online
 *     softmax over chunks of 16 keys, fp32 throughout. Causal attention without a key mask skips key tiles
 *     past the block's last visible key (those rows can never be fully masked, so skipping is exact).
 *   decode (tq == 1): flash-decoding. The keys are split into units of one warp each (4 per block, many
 *     blocks per head); each warp keeps its own (max, sum, unnormalized output) and a combine kernel merges
 *     the units of a head. Units are chosen so that batch·heads·units fills the GPU with >= 32 keys per warp.
 * Limits (asserted): dh <= 128 (MusicGen and T5 use 64), batch and heads <= 65535; out must not alias k or v.
 * tests/test_ops_gpu forces each path (and 1 vs many decode units) through attention_force. */
#ifndef MUSAE_ATTENTION_CUH
#define MUSAE_ATTENTION_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "kernels/ops.h"

#define ATTENTION_MAX_DH 128

typedef enum { ATTN_PATH_AUTO = 0, ATTN_PATH_PREFILL = 1, ATTN_PATH_DECODE = 2 } attn_path;

typedef struct {
    attn_path path; /* AUTO: decode when tq == 1, else prefill; DECODE needs tq == 1 */
    int units;      /* decode only: key splits per head (rounded up to a multiple of 4); 0 = automatic */
} attn_force;

/* What a call will run (path, decode units) and the workspace it needs, for sizing before the call. */
typedef struct {
    attn_path path;
    int units;
    size_t workspace_bytes;
} attn_plan;

attn_plan attention_plan(const musae_attn_params *p, int sm_count, attn_force force);

void attention_cuda(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                    int sm_count, attn_force force, void *workspace, size_t workspace_bytes, cudaStream_t stream);

#endif /* MUSAE_ATTENTION_CUH */
