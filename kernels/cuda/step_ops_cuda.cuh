/* Launchers of the CUDA step ops (kernels/step_ops.h), one op per file (kernels/cuda/step_*.cu), each queued on
 * the given stream; kernels/cuda/step_ops_cuda.cu routes the table to them on the ops table's stream. Every
 * launch's arguments are fixed for a generation (positions come from the device counter `pos`), so a captured
 * graph replays them unchanged. */
#ifndef MUSAE_STEP_OPS_CUDA_CUH
#define MUSAE_STEP_OPS_CUDA_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "kernels/step_ops.h"

void step_embed_cuda(float *x, const float *table, int64_t K, int64_t n_ids, int64_t dim, const int64_t *ids,
                     int64_t rows, const float *pos_table, const int64_t *pos, cudaStream_t stream);
void step_kv_append_cuda(float *cache, const float *src, int64_t rows, int64_t width, int64_t row_stride,
                         const int64_t *pos, cudaStream_t stream);
/* Workspace bytes step_attention_cuda needs for these params and t_max. */
size_t step_attention_workspace(const musae_attn_params *p, int64_t t_max, int sm_count);
void step_attention_cuda(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                         int64_t t_max, const int64_t *pos, int sm_count, void *workspace, size_t workspace_bytes,
                         cudaStream_t stream);
void step_add_rows_cuda(float *x, const float *v, int64_t n_vec, const float *alpha, int64_t rows, int64_t dim,
                        int64_t p0, int64_t p1, const int64_t *pos, cudaStream_t stream);
void step_capture_cuda(float *ring, const float *x, int64_t rows, int64_t dim, int64_t slots, const int64_t *pos,
                       cudaStream_t stream);
void step_sample_cuda(const float *logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                      const musae_sample_params *p, const int64_t *pos, cudaStream_t stream);

#endif /* MUSAE_STEP_OPS_CUDA_CUH */
