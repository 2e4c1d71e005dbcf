/* An SAE's encoder for inference on one GPU (sae/sae_gpu_infer.cu; CUDA builds only): `musae analyze --device
 * cuda` encodes its row blocks here and folds the codes into the same host statistics as the CPU path.
 *
 * The rows are encoded as sae_model_infer does on the CPU: xc = x − b_dec, pre = ReLU(W_enc xc + b_enc) with
 * cuBLAS fp32 (pedantic, no TF32: kernels/cuda/sae_cuda.cuh's MUSAE_F32 mode), and the per-row top-k by
 * sae_cuda_encode's fused path (ties to the lower latent, rows sorted by value descending), brought back as
 * host CSR codes. A batch-top-k SAE gets its [n, M] pre-activations back instead (`pre`), for the host's
 * threshold rule (sae_model_threshold_codes), so both devices select by one piece of code. The selection
 * equals the CPU's wherever pre-activations are separated by more than fp32 summation-order noise. */
#ifndef MUSAE_SAE_GPU_INFER_H
#define MUSAE_SAE_GPU_INFER_H

#include <stdint.h>

#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sae_gpu_encoder sae_gpu_encoder; /* opaque: the weights, buffers, stream and cuBLAS handle */

/* Uploads m's encoder (W_enc, b_enc, b_dec) to the current device, with buffers for up to `rows` rows. */
sae_gpu_encoder *sae_gpu_encoder_init(const sae_model *m, int64_t rows);
/* Encodes host rows x [n, d] (n <= rows). Top-k SAE: codes (host; ptr holds n + 1, idx/val grown with realloc,
 * cap follows) receives the codes and pre is unused. Batch-top-k SAE: pre (host, [n, M]) receives
 * ReLU(W_enc xc + b_enc) and codes is untouched. Waits for the GPU. */
void sae_gpu_encoder_run(sae_gpu_encoder *e, const float *x, int64_t n, sae_codes *codes, float *pre);
void sae_gpu_encoder_free(sae_gpu_encoder *e);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_GPU_INFER_H */
