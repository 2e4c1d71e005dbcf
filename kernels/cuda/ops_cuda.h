/* The CUDA op table (kernels/ops.h) and the few knobs around it. C-callable; only for builds with CUDA
 * (the CPU-only build has musae_ops_cuda() returning NULL from kernels/ops_cuda_none.c).
 *
 * Every op of the table is queued on one non-blocking stream (musae_cuda_stream()) in call order; alloc,
 * free, upload and download synchronize that stream (upload/download return with the host buffer free to
 * reuse / filled, like the CPU table's memcpy), copy and the compute ops do not. Ops that need temporary
 * device memory (bf16 GEMM activations, decode-attention partials, conv1d padding) take it from one scratch
 * buffer that grows on demand; before capturing a CUDA graph, run the step once (or call
 * musae_cuda_reserve_scratch) so the capture never allocates. Single host thread, current device. */
#ifndef MUSAE_OPS_CUDA_H
#define MUSAE_OPS_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The table, initialized on first call (stream, cuBLASLt handle and workspace on the current device); NULL
 * when no CUDA device is usable (musae_cuda_device_count() in kernels/cuda/cuda_device.h says why). */
const musae_ops *musae_ops_cuda(void);

/* The stream every op of the table runs on (for events, graph capture, and kernels outside the table). */
cudaStream_t musae_cuda_stream(void);
int musae_cuda_sm_count(void);
size_t musae_cuda_l2_bytes(void);

/* Grows the shared scratch buffer to at least `bytes` now (never shrinks). */
void musae_cuda_reserve_scratch(size_t bytes);

/* Test hook: force the attention path (0 automatic, 1 prefill kernel, 2 split-KV decode kernel, which needs
 * tq == 1) and the decode key units per head (0 automatic). Applies to later attention calls. */
void musae_cuda_attention_force(int path, int units);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_OPS_CUDA_H */
