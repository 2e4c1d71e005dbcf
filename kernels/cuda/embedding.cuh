/* Row gather from an embedding table: out[r,:] (+)= table[ids[r], :] for r < n. ids (int64) live on the
 * device; an id outside [0, rows) stops the kernel with a message and a trap, which the next CUDA call
 * reports (the always-on equivalent of the CPU's assert). */
#ifndef MUSAE_EMBEDDING_CUH
#define MUSAE_EMBEDDING_CUH

#include <cuda_runtime.h>
#include <stdint.h>

void embedding_cuda(float *out, const float *table, int64_t rows, int64_t dim, const int64_t *ids, int64_t n,
                    int accumulate, cudaStream_t stream);

#endif /* MUSAE_EMBEDDING_CUH */
