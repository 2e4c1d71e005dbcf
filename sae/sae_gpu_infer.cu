/* The inference encoder on one GPU (sae/sae_gpu_infer.h): sae_cuda_center and sae_cuda_encode on one stream,
 * the codes (or a batch-top-k SAE's pre-activations) copied back per call. */
#include "sae/sae_gpu_infer.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"

struct sae_gpu_encoder {
    int64_t d, M, rows;
    int k, batch_topk;
    cudaStream_t stream;
    cublasHandle_t blas;
    float *W_enc, *b_enc, *b_dec; /* [M, d], [M], [d] */
    float *x, *xc;                /* [rows, d] */
    float *pre;                   /* [rows, M], batch-top-k only */
    sae_codes codes;              /* device CSR, cap rows·k (top-k only) */
    void *scratch;
    size_t scratch_bytes;
};

static void *dalloc(size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}

static void upload(float *dst, const float *src, int64_t n) {
    CUDA_CHECK(cudaMemcpy(dst, src, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice));
}

sae_gpu_encoder *sae_gpu_encoder_init(const sae_model *m, int64_t rows) {
    MUSAE_ASSERT(rows > 0 && m->k >= 0 && m->k <= SAE_CUDA_K_MAX, "rows %lld, k %d (at most %d on the GPU)",
                 (long long)rows, m->k, (int)SAE_CUDA_K_MAX);
    MUSAE_ASSERT(rows * (int64_t)m->k < INT32_MAX, "%lld rows × k %d entries exceed 2^31", (long long)rows, m->k);
    sae_gpu_encoder *e = (sae_gpu_encoder *)musae_xcalloc(1, sizeof *e);
    e->d = m->d;
    e->M = m->M;
    e->rows = rows;
    e->k = m->k;
    e->batch_topk = m->batch_topk;
    CUDA_CHECK(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&e->blas));
    CUBLAS_CHECK(cublasSetStream(e->blas, e->stream));
    const int64_t d = e->d, M = e->M;
    e->W_enc = (float *)dalloc(sizeof(float) * (size_t)(M * d));
    e->b_enc = (float *)dalloc(sizeof(float) * (size_t)M);
    e->b_dec = (float *)dalloc(sizeof(float) * (size_t)d);
    upload(e->W_enc, m->p.W_enc, M * d);
    upload(e->b_enc, m->p.b_enc, M);
    upload(e->b_dec, m->p.b_dec, d);
    e->x = (float *)dalloc(sizeof(float) * (size_t)(rows * d));
    e->xc = (float *)dalloc(sizeof(float) * (size_t)(rows * d));
    const int k_sel = e->batch_topk ? 0 : e->k; /* batch-top-k: nothing per row, the host applies the threshold */
    if (e->batch_topk) e->pre = (float *)dalloc(sizeof(float) * (size_t)rows * (size_t)M);
    const int64_t cap = rows * k_sel;
    e->codes.n_rows = rows;
    e->codes.cap = cap;
    e->codes.ptr = (int64_t *)dalloc(sizeof(int64_t) * (size_t)(rows + 1));
    e->codes.idx = (int32_t *)dalloc(sizeof(int32_t) * (size_t)(cap + 1));
    e->codes.val = (float *)dalloc(sizeof(float) * (size_t)(cap + 1));
    e->scratch_bytes = sae_cuda_encode_scratch_bytes(rows, M, k_sel, 0);
    e->scratch = dalloc(e->scratch_bytes);
    return e;
}

void sae_gpu_encoder_run(sae_gpu_encoder *e, const float *x, int64_t n, sae_codes *codes, float *pre) {
    MUSAE_ASSERT(n >= 0 && n <= e->rows, "%lld rows for an encoder of %lld", (long long)n, (long long)e->rows);
    const int64_t d = e->d, M = e->M;
    if (n == 0) {
        if (!e->batch_topk) codes->ptr[0] = 0, codes->n_rows = 0;
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(e->x, x, sizeof(float) * (size_t)(n * d), cudaMemcpyHostToDevice, e->stream));
    sae_cuda_center(e->x, 1.0f, e->b_dec, n, d, NULL, e->xc, NULL, e->stream);
    sae_codes c = e->codes;
    c.n_rows = n;
    c.cap = e->batch_topk ? 0 : n * e->k;
    sae_cuda_encode(e->blas, MUSAE_F32, e->xc, e->W_enc, e->b_enc, n, d, M, e->batch_topk ? 0 : e->k, NULL, 0, &c,
                    NULL, e->pre, e->scratch, e->scratch_bytes, e->stream);
    if (e->batch_topk) {
        MUSAE_ASSERT(pre, "a batch-top-k SAE's encode needs the host [n, M] buffer");
        CUDA_CHECK(cudaMemcpyAsync(pre, e->pre, sizeof(float) * (size_t)(n * M), cudaMemcpyDeviceToHost, e->stream));
        CUDA_CHECK(cudaStreamSynchronize(e->stream));
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(codes->ptr, c.ptr, sizeof(int64_t) * (size_t)(n + 1), cudaMemcpyDeviceToHost, e->stream));
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    const int64_t nnz = codes->ptr[n];
    MUSAE_ASSERT(codes->ptr[0] == 0 && nnz >= 0 && nnz <= n * e->k, "GPU codes: %lld entries for %lld rows",
                 (long long)nnz, (long long)n);
    if (nnz > codes->cap) {
        codes->cap = nnz;
        codes->idx = (int32_t *)musae_xrealloc(codes->idx, sizeof(int32_t) * (size_t)(nnz + 1));
        codes->val = (float *)musae_xrealloc(codes->val, sizeof(float) * (size_t)(nnz + 1));
    }
    CUDA_CHECK(cudaMemcpyAsync(codes->idx, c.idx, sizeof(int32_t) * (size_t)nnz, cudaMemcpyDeviceToHost, e->stream));
    CUDA_CHECK(cudaMemcpyAsync(codes->val, c.val, sizeof(float) * (size_t)nnz, cudaMemcpyDeviceToHost, e->stream));
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    codes->n_rows = n;
}

void sae_gpu_encoder_free(sae_gpu_encoder *e) {
    if (!e) return;
    void *p[] = {e->W_enc, e->b_enc, e->b_dec, e->x, e->xc, e->pre, e->codes.ptr, e->codes.idx, e->codes.val, e->scratch};
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i]) CUDA_CHECK(cudaFree(p[i]));
    CUBLAS_CHECK(cublasDestroy(e->blas));
    CUDA_CHECK(cudaStreamDestroy(e->stream));
    free(e);
}
