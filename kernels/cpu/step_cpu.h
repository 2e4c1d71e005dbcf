/* CPU reference implementations of kernels/step_ops.h, one op per file in kernels/cpu/step_*.c. Declared here
 * so tests can call an op directly (the reference side of tests/test_step_gpu). */
#ifndef MUSAE_STEP_CPU_H
#define MUSAE_STEP_CPU_H

#include "kernels/step_ops.h"

void cpu_step_embed(float *x, const float *table, int64_t K, int64_t n_ids, int64_t dim, const int64_t *ids,
                    int64_t rows, const float *pos_table, const int64_t *pos);
void cpu_step_kv_append(float *cache, const float *src, int64_t rows, int64_t width, int64_t row_stride,
                        const int64_t *pos);
void cpu_step_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                        int64_t t_max, const int64_t *pos);
void cpu_step_add_rows_at(float *x, const float *v, int64_t n_vec, const float *alpha, int64_t rows, int64_t dim,
                          int64_t p0, int64_t p1, const int64_t *pos);
void cpu_step_capture(float *ring, const float *x, int64_t rows, int64_t dim, int64_t slots, const int64_t *pos);
void cpu_step_sample(const float *logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                     const musae_sample_params *p, const int64_t *pos);
/* One row's token from its scores [V] (after CFG) with the uniform u, as the CUDA kernel computes it;
 * work holds V uint64 keys and V doubles. */
int64_t cpu_step_sample_row(const float *scores, int64_t V, const musae_sample_params *p, float u, uint64_t *keys,
                            double *prob);

#endif /* MUSAE_STEP_CPU_H */
