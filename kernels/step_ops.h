/* The decode-step op table: what a whole MusicGen decoding step needs beyond kernels/ops.h so that it stays on
 * the device and its launches are the same every step (model/mg_step.h). The step index lives in a
 * device-resident int64 (`pos`: the sequence position the step feeds, = the number of positions already
 * cached); ops that depend on it read it on the device instead of taking it as an argument, so one step can
 * be captured once as a CUDA graph and replayed. A step ends with `advance`.
 *
 * The CPU table (kernels/cpu/step_*.c, one op per file) is the reference; the CUDA table
 * (kernels/cuda/step_*.cu) must agree with it op by op (tests/test_step_gpu): bitwise for the copies, the
 * embedding sum, the steering add and the sampler (tokens identical: kernels/sample_rule.h), by the sum(K)
 * rule of tests/test_ops_gpu for attention. Pointers are on the table's device unless called host. */
#ifndef MUSAE_STEP_OPS_H
#define MUSAE_STEP_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The fused CFG + warpers + draw + delay pattern of one step (model/sampling.h states the rule).
 * Rows of the logits: item b's conditional row is b, its unconditional row B + b (cfg only). */
typedef struct {
    int64_t B, K, V;      /* items, codebooks, codes per codebook (BOS = V); V <= MUSAE_SAMPLE_VMAX */
    int64_t rows;         /* rows of the forward: B, or 2B with cfg */
    int cfg;              /* scores = uncond + (cond - uncond) · guidance */
    float guidance;
    int greedy;           /* first argmax; the warpers below are ignored */
    float temperature;    /* > 0 */
    int top_k;            /* 0 = off */
    float top_p;          /* (0, 1], 1 = off */
    uint64_t seed;
    int same_draws;       /* every item draws from Philox stream 0, not stream b (model/sampling.h) */
    int delayed;          /* the delay plan (model/delay.h) */
    int64_t max_length;   /* sequence positions L = steps + 1 */
} musae_sample_params;

#define MUSAE_SAMPLE_VMAX 2048 /* the GPU sampler sorts a row in 32 KB of shared memory */

typedef struct musae_step_ops {
    const char *name;

    /* x[r, :] = Σ_k table[k·n_ids + ids[k·rows + r], :] (k ascending, fp32 adds in that order), then
     * + pos_table[*pos, :]: the token embeddings and the sinusoidal position of the step (ids in [0, n_ids)). */
    void (*embed)(float *x, const float *table, int64_t K, int64_t n_ids, int64_t dim, const int64_t *ids,
                  int64_t rows, const float *pos_table, const int64_t *pos);
    /* cache[r·row_stride + (*pos)·width + i] = src[r·width + i]: one step's K/V rows into the cache. */
    void (*kv_append)(float *cache, const float *src, int64_t rows, int64_t width, int64_t row_stride,
                      const int64_t *pos);
    /* ops.h attention of one causal query per batch row at position *pos over the keys [0, *pos]: p gives
     * batch, heads, dh, strides and scale (tq must be 1; tk, q_pos0, causal, bias and key_mask are ignored).
     * t_max bounds *pos + 1 (the launch is sized for it). */
    void (*attention)(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                      int64_t t_max, const int64_t *pos);
    /* x[r, :] += alpha[r] · v[r mod n_vec, :] for r < rows when p0 <= *pos < p1 (steering ADD; v [n_vec, dim]:
     * one vector for every row, or one per batch item): alpha[r]·v[..][i] is rounded before the add, as
     * ops->add_rows. */
    void (*add_rows_at)(float *x, const float *v, int64_t n_vec, const float *alpha, int64_t rows, int64_t dim,
                        int64_t p0, int64_t p1, const int64_t *pos);
    /* ring[((*pos) mod slots)·rows·dim + r·dim + i] = x[r·dim + i]: READ capture into a device ring. */
    void (*capture)(float *ring, const float *x, int64_t rows, int64_t dim, int64_t slots, const int64_t *pos);
    /* From logits [rows, K, V]: scores [B, K, V] (CFG applied; written only when scores != NULL), the tokens
     * tok [B, K], and for position j = *pos + 1: seq[(b·K + k)·max_length + j] and the next step's input
     * ids[k·rows + r] (r = b and, with cfg, B + b) both get the token where the delay pattern frees (k, j),
     * else BOS = V. The draw of (b, k) is Philox(seed, stream b, counter *pos·ceil(K/4) + k/4) word k mod 4. */
    void (*sample)(const float *logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                   const musae_sample_params *p, const int64_t *pos);
    /* *pos += 1 */
    void (*advance)(int64_t *pos);

    /* Host staging for downloads that overlap the work: page-locked on CUDA. download_async queues a copy
     * after the work already queued; an event recorded after it tells when the host buffer is filled. */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    void (*download_async)(void *host_dst, const void *src, size_t bytes);
    void *(*event_new)(void);
    void (*event_record)(void *e);
    void (*event_sync)(void *e);
    void (*event_free)(void *e);

    /* Graph capture of the ops queued between begin and end (the ops.h table's ops included: same stream).
     * NULL where the device has no graphs (the CPU). Nothing may allocate or synchronize while capturing. */
    void (*graph_begin)(void);
    void *(*graph_end)(void);
    void (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);
} musae_step_ops;

/* The CPU reference table (always present). */
const musae_step_ops *musae_step_ops_cpu(void);
/* The CUDA table, or NULL without CUDA or a usable device. */
const musae_step_ops *musae_step_ops_cuda(void);
/* The step table on the same device as ops, or NULL when that backend has none. */
const musae_step_ops *musae_step_ops_for(const musae_ops *ops);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STEP_OPS_H */
