/* The CUDA step table (kernels/step_ops.h): routes the ops of kernels/cuda/step_*.cu onto the ops table's one
 * stream (musae_cuda_stream), so step ops and ops.h ops queue in call order and one stream capture records a
 * whole decoding step. Owns the step counter's kernel, the decode-attention workspace (grown only outside a
 * capture: the warm-up step sizes it), page-locked staging, events and graphs. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/step_ops_cuda.cuh"

static struct {
    void *ws;
    size_t ws_bytes;
    int capturing;
} g;

static cudaStream_t st(void) { return musae_cuda_stream(); }

// ---- CUDA kernels
static __global__ void step_advance_kernel(int64_t *pos) { *pos += 1; }

// ---- table entries
static void cu_embed(float *x, const float *table, int64_t K, int64_t n_ids, int64_t dim, const int64_t *ids,
                     int64_t rows, const float *pos_table, const int64_t *pos) {
    step_embed_cuda(x, table, K, n_ids, dim, ids, rows, pos_table, pos, st());
}
static void cu_kv_append(float *cache, const float *src, int64_t rows, int64_t width, int64_t row_stride,
                         const int64_t *pos) {
    step_kv_append_cuda(cache, src, rows, width, row_stride, pos, st());
}
static void cu_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                         int64_t t_max, const int64_t *pos) {
    const int sms = musae_cuda_sm_count();
    const size_t need = step_attention_workspace(p, t_max, sms);
    if (need > g.ws_bytes) {
        /* a capture must not allocate (and the old buffer may still be read by queued work) */
        MUSAE_ASSERT(!g.capturing, "step attention workspace grows during a graph capture (%zu > %zu bytes): run one "
                     "step before capturing", need, g.ws_bytes);
        CUDA_CHECK(cudaStreamSynchronize(st()));
        if (g.ws) CUDA_CHECK(cudaFree(g.ws));
        g.ws = NULL;
        cudaError_t e = cudaMalloc(&g.ws, need);
        if (e != cudaSuccess) musae_fail("out of GPU memory for %zu bytes of attention workspace: %s", need,
                                         cudaGetErrorString(e));
        g.ws_bytes = need;
    }
    step_attention_cuda(out, q, k, v, p, t_max, pos, sms, g.ws, g.ws_bytes, st());
}
static void cu_add_rows_at(float *x, const float *v, int64_t n_vec, const float *alpha, int64_t rows, int64_t dim,
                           int64_t p0, int64_t p1, const int64_t *pos) {
    step_add_rows_cuda(x, v, n_vec, alpha, rows, dim, p0, p1, pos, st());
}
static void cu_capture(float *ring, const float *x, int64_t rows, int64_t dim, int64_t slots, const int64_t *pos) {
    step_capture_cuda(ring, x, rows, dim, slots, pos, st());
}
static void cu_sample(const float *logits, float *scores, int64_t *tok, int64_t *seq, int64_t *ids,
                      const musae_sample_params *p, const int64_t *pos) {
    step_sample_cuda(logits, scores, tok, seq, ids, p, pos, st());
}
static void cu_advance(int64_t *pos) {
    step_advance_kernel<<<1, 1, 0, st()>>>(pos);
    CUDA_LAUNCH_CHECK();
}

static void *cu_host_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) musae_fail("out of page-locked host memory for %zu bytes: %s", bytes, cudaGetErrorString(e));
    return p;
}
static void cu_host_free(void *p) {
    if (p) CUDA_CHECK(cudaFreeHost(p));
}
static void cu_download_async(void *host_dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, st()));
}
static void *cu_event_new(void) {
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return (void *)e;
}
static void cu_event_record(void *e) { CUDA_CHECK(cudaEventRecord((cudaEvent_t)e, st())); }
static void cu_event_sync(void *e) { CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)e)); }
static void cu_event_free(void *e) { CUDA_CHECK(cudaEventDestroy((cudaEvent_t)e)); }

/* Thread-local capture: a stray synchronizing call from this thread during the capture is an error (caught
 * by CUDA_CHECK) instead of silently breaking the graph. */
static void cu_graph_begin(void) {
    MUSAE_ASSERT(!g.capturing, "graph capture already running");
    CUDA_CHECK(cudaStreamBeginCapture(st(), cudaStreamCaptureModeThreadLocal));
    g.capturing = 1;
}
static void *cu_graph_end(void) {
    cudaGraph_t graph;
    CUDA_CHECK(cudaStreamEndCapture(st(), &graph));
    g.capturing = 0;
    cudaGraphExec_t exec;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph));
    return (void *)exec;
}
static void cu_graph_launch(void *graph) { CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, st())); }
static void cu_graph_free(void *graph) {
    CUDA_CHECK(cudaStreamSynchronize(st())); /* a queued launch may still run it */
    CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

static const musae_step_ops k_step_cuda = {
    .name = "cuda",
    .embed = cu_embed,
    .kv_append = cu_kv_append,
    .attention = cu_attention,
    .add_rows_at = cu_add_rows_at,
    .capture = cu_capture,
    .sample = cu_sample,
    .advance = cu_advance,
    .host_alloc = cu_host_alloc,
    .host_free = cu_host_free,
    .download_async = cu_download_async,
    .event_new = cu_event_new,
    .event_record = cu_event_record,
    .event_sync = cu_event_sync,
    .event_free = cu_event_free,
    .graph_begin = cu_graph_begin,
    .graph_end = cu_graph_end,
    .graph_launch = cu_graph_launch,
    .graph_free = cu_graph_free,
};

extern "C" const musae_step_ops *musae_step_ops_cuda(void) { return musae_ops_cuda() ? &k_step_cuda : NULL; }
