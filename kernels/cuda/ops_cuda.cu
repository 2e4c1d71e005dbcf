/* The CUDA op table: memory on one stream, cuBLASLt GEMMs, and the hand-written kernels of kernels/cuda/
 * (one op per file, each with a launcher taking a stream). This file only routes: it owns the stream, the
 * cuBLASLt context and the scratch buffer, and passes them to the launchers. */
#include <string.h>

#include "kernels/cuda/attention.cuh"          // defines: attention_cuda, attention_plan
#include "kernels/cuda/conv1d.cuh"             // defines: conv1d_cuda
#include "kernels/cuda/conv_transpose1d.cuh"   // defines: conv_transpose1d_cuda
#include "kernels/cuda/convert.cuh"            // defines: f32_to_bf16_cuda
#include "kernels/cuda/cuda_device.h"          // defines: musae_cuda_device_count
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/elementwise.cuh"        // defines: gelu/gelu_tanh/relu/elu/tanh/add/mul/add_rows_cuda
#include "kernels/cuda/embedding.cuh"          // defines: embedding_cuda
#include "kernels/cuda/layernorm.cuh"          // defines: layernorm_cuda, add_layernorm_cuda
#include "kernels/cuda/linear_bf16w.cuh"       // defines: linear_bf16w_cuda
#include "kernels/cuda/lstm.cuh"               // defines: lstm_cuda
#include "kernels/cuda/matmul.cuh"             // defines: gemm_cuda, linear_cuda
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/rmsnorm.cuh"            // defines: rmsnorm_cuda
#include "kernels/cuda/l2_normalize.cuh"       // defines: l2_normalize_cuda

static struct {
    int state; /* 0 not tried, 1 ready, -1 no device */
    cudaStream_t stream;
    musae_lt *lt;
    int sm_count;
    size_t l2_bytes;
    void *scratch;
    size_t scratch_bytes;
    attn_force attn;
} g;

static void *scratch_get(size_t bytes) {
    if (bytes == 0) return NULL;
    if (bytes > g.scratch_bytes) {
        /* queued kernels may still read the old buffer: drain the stream before freeing it */
        CUDA_CHECK(cudaStreamSynchronize(g.stream));
        if (g.scratch) CUDA_CHECK(cudaFree(g.scratch));
        g.scratch = NULL;
        const size_t grown = bytes + bytes / 2; /* headroom so a slowly growing KV length re-allocates rarely */
        cudaError_t e = cudaMalloc(&g.scratch, grown);
        if (e != cudaSuccess) musae_fail("out of GPU memory for %zu bytes of scratch: %s", grown, cudaGetErrorString(e));
        g.scratch_bytes = grown;
    }
    return g.scratch;
}

// ---- memory
static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) musae_fail("out of GPU memory allocating %zu bytes: %s", bytes, cudaGetErrorString(e));
    return p;
}
static void cu_free(void *p) {
    if (!p) return;
    CUDA_CHECK(cudaStreamSynchronize(g.stream)); /* queued ops may still use it */
    CUDA_CHECK(cudaFree(p));
}
static void cu_upload(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, g.stream));
    CUDA_CHECK(cudaStreamSynchronize(g.stream)); /* the host buffer is free to reuse on return */
}
static void cu_download(void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, g.stream));
    CUDA_CHECK(cudaStreamSynchronize(g.stream));
}
static void cu_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g.stream));
}
static void cu_sync(void) { CUDA_CHECK(cudaStreamSynchronize(g.stream)); }

// ---- compute
static void cu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                    int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    gemm_cuda(g.lt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, g.stream);
}
static void cu_linear(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
                      float beta) {
    linear_cuda(g.lt, y, x, w, bias, m, n, k, beta, g.stream);
}
static void cu_layernorm(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim,
                         float eps) {
    layernorm_cuda(out, x, w, b, rows, dim, eps, g.stream);
}
static void cu_add_layernorm(float *x, const float *res, float *out, const float *w, const float *b, int64_t rows,
                             int64_t dim, float eps) {
    add_layernorm_cuda(x, res, out, w, b, rows, dim, eps, g.stream);
}
static void cu_rmsnorm(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps) {
    rmsnorm_cuda(out, x, w, rows, dim, eps, g.stream);
}
static void cu_gelu(float *out, const float *x, int64_t n) { gelu_cuda(out, x, n, g.stream); }
static void cu_gelu_tanh(float *out, const float *x, int64_t n) { gelu_tanh_cuda(out, x, n, g.stream); }
static void cu_relu(float *out, const float *x, int64_t n) { relu_cuda(out, x, n, g.stream); }
static void cu_elu(float *out, const float *x, int64_t n) { elu_cuda(out, x, n, g.stream); }
static void cu_tanh(float *out, const float *x, int64_t n) { tanh_cuda(out, x, n, g.stream); }
static void cu_l2_normalize(float *out, const float *x, int64_t rows, int64_t dim) {
    l2_normalize_cuda(out, x, rows, dim, g.stream);
}
static void cu_add(float *out, const float *a, const float *b, int64_t n) { add_cuda(out, a, b, n, g.stream); }
static void cu_mul(float *out, const float *a, const float *b, int64_t n) { mul_cuda(out, a, b, n, g.stream); }
static void cu_embedding(float *out, const float *table, int64_t rows, int64_t dim, const int64_t *ids, int64_t n,
                         int accumulate) {
    embedding_cuda(out, table, rows, dim, ids, n, accumulate, g.stream);
}
static void cu_add_rows(float *x, const float *v, float alpha, int64_t rows, int64_t dim) {
    add_rows_cuda(x, v, alpha, rows, dim, g.stream);
}
static void cu_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p) {
    const attn_plan pl = attention_plan(p, g.sm_count, g.attn);
    void *ws = scratch_get(pl.workspace_bytes);
    attention_cuda(out, q, k, v, p, g.sm_count, g.attn, ws, pl.workspace_bytes, g.stream);
}
static void cu_conv1d(float *out, const float *x, const float *w, const float *bias, const musae_conv1d_params *p) {
    const size_t need = conv1d_scratch_bytes(p);
    conv1d_cuda(g.lt, out, x, w, bias, p, scratch_get(need), need, g.stream);
    if (p->elu) elu_cuda(out, out, p->t_out * p->c_out, g.stream);
}
static void cu_conv_transpose1d(float *out, const float *x, const float *w, const float *bias,
                                const musae_convt1d_params *p) {
    conv_transpose1d_cuda(g.lt, out, x, w, bias, p, g.stream);
}
static void cu_lstm(float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
                    const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work) {
    lstm_cuda(g.lt, out, x, t, d_in, hidden, w_ih, w_hh, b_ih, b_hh, h, c, work, g.stream);
}
static void cu_linear_bf16w(float *y, const float *x, const uint16_t *w, const float *bias, int64_t m, int64_t n,
                            int64_t k, float beta) {
    const size_t need = linear_bf16w_scratch_bytes(m, k);
    linear_bf16w_cuda(g.lt, y, x, w, bias, m, n, k, beta, scratch_get(need), need, g.stream);
}
static void cu_f32_to_bf16(uint16_t *out, const float *x, int64_t n) { f32_to_bf16_cuda(out, x, n, g.stream); }

static const musae_ops k_cuda = {
    .name = "cuda",
    .device = MUSAE_DEVICE_CUDA,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .sync = cu_sync,
    .gemm = cu_gemm,
    .linear = cu_linear,
    .layernorm = cu_layernorm,
    .rmsnorm = cu_rmsnorm,
    .gelu = cu_gelu,
    .gelu_tanh = cu_gelu_tanh,
    .relu = cu_relu,
    .add = cu_add,
    .mul = cu_mul,
    .embedding = cu_embedding,
    .add_rows = cu_add_rows,
    .attention = cu_attention,
    .elu = cu_elu,
    .conv1d = cu_conv1d,
    .conv_transpose1d = cu_conv_transpose1d,
    .lstm = cu_lstm,
    .add_layernorm = cu_add_layernorm,
    .linear_bf16w = cu_linear_bf16w,
    .f32_to_bf16 = cu_f32_to_bf16,
    .tanh = cu_tanh,
    .l2_normalize = cu_l2_normalize,
};

// ---- setup and knobs
static int ensure_init(void) {
    if (g.state != 0) return g.state > 0;
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) {
        g.state = -1;
        return 0;
    }
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&g.sm_count, cudaDevAttrMultiProcessorCount, dev));
    int l2 = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    g.l2_bytes = (size_t)l2;
    CUDA_CHECK(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
    g.lt = matmul_lt_create();
    g.state = 1;
    return 1;
}

extern "C" const musae_ops *musae_ops_cuda(void) { return ensure_init() ? &k_cuda : NULL; }

extern "C" cudaStream_t musae_cuda_stream(void) {
    MUSAE_ASSERT(ensure_init(), "musae_cuda_stream: no usable CUDA device");
    return g.stream;
}
extern "C" int musae_cuda_sm_count(void) { return ensure_init() ? g.sm_count : 0; }
extern "C" size_t musae_cuda_l2_bytes(void) { return ensure_init() ? g.l2_bytes : 0; }
extern "C" void musae_cuda_reserve_scratch(size_t bytes) {
    MUSAE_ASSERT(ensure_init(), "musae_cuda_reserve_scratch: no usable CUDA device");
    (void)scratch_get(bytes);
}
extern "C" void musae_cuda_attention_force(int path, int units) {
    MUSAE_ASSERT(path >= 0 && path <= 2 && units >= 0, "attention_force: path %d units %d", path, units);
    g.attn.path = (attn_path)path;
    g.attn.units = units;
}
