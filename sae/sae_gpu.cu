/* The SAE trainer on one GPU and the streaming feed behind it (sae/sae_gpu.h).
 *
 * A step is sae_trainer_step (sae/sae.c) op for op, with the kernels of kernels/cuda/sae_cuda.cuh. What the
 * CPU step decides on the host from data, the GPU step decides on the device, so nothing is read back:
 *  - the dead mask and n_dead come from the counters on the device (dead_kernel);
 *  - AuxK always runs with the configured k_aux (when α > 0 and k_aux > 0): with n_dead < k_aux at most n_dead
 *    latents per row can be selected anyway, so the selection equals the CPU's top-min(n_dead, k_aux); with no
 *    dead latent the aux codes are empty and the CPU's "no AuxK" follows from a zero coefficient;
 *  - the AuxK coefficient α·min(n_dead/k_aux, 1) depends on n_dead, so the loss kernel runs with coefficient 0
 *    (it still returns the raw AuxK sum) and aux_grad_kernel writes g_ehat with the device coefficient, in the
 *    CPU's exact arithmetic;
 *  - the batch-top-k threshold EMA and the statistics are updated by one single-thread kernel at the end.
 * The lr schedule, Adam's t, the scale and the counters step/tokens are host values (they depend on no data).
 *
 * Memory: the parameters, gradients and both moments are each one allocation in sae_params' layout
 * (W_enc, b_enc, W_dec, b_dec), so load/store are four copies. */
#include "sae/sae_gpu.h"

#include <math.h>
#include <string.h>

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "host/dist/nccl.h"
#include "sae/sae_dist.h"
#include "sae/sae_feed.h"

namespace {

// Device scalars of a step: written by the ops, read by the tail kernel.
struct GpuScalars {
    double tv, fvu, aux, threshold;
    float min_sel;
    unsigned long long n_dead;
};

// What a step reports (copied to pinned host memory).
struct StatsRec {
    double fvu, aux;
    long long nnz, n_dead;
};

// dead[i] = since_fired[i] > dead_tokens; *n_dead += the count (zeroed before). Integer sums: deterministic.
__global__ void dead_kernel(const int64_t *since_fired, int64_t M, int64_t dead_tokens, uint8_t *dead,
                            unsigned long long *n_dead) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int is_dead = i < M && since_fired[i] > dead_tokens;
    if (i < M) dead[i] = (uint8_t)is_dead;
    const int c = __syncthreads_count(is_dead);
    if (threadIdx.x == 0 && c) atomicAdd(n_dead, (unsigned long long)c);
}

// g_ehat = ascale·(ê − (x − x̂)) with the CPU's coefficient and rounding (sae_trainer_step, sae_cpu_loss_grad):
//   aux_scale = min(n_dead / k_aux, 1), coef = (float)(α·aux_scale), ascale = (float)(2·coef / tv).
__global__ void aux_grad_kernel(const float *x, const float *xhat, const float *ehat, int64_t n, const GpuScalars *s,
                                float alpha, int k_aux, float *g_ehat, uint16_t *ge16) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const double aux_scale = fmin((double)s->n_dead / (double)k_aux, 1.0);
    const float coef = (float)((double)alpha * aux_scale);
    const float ascale = (float)(2.0 * (double)coef / s->tv);
    const float e = __fsub_rn(x[i], xhat[i]);
    const float g = __fmul_rn(ascale, __fsub_rn(ehat[i], e));
    g_ehat[i] = g;
    if (ge16) ge16[i] = musae_f32_to_bf16(g);
}

__global__ void add_tokens_kernel(int64_t *since_fired, int64_t M, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < M) since_fired[i] += n;
}

// A latent fired when it holds an entry of this batch's codes (values are strictly positive). Several entries
// of one latent store the same 0: the result does not depend on their order. Grid sized by the capacity; the
// entries past ptr[n_rows] are not this batch's.
__global__ void fired_kernel(const int64_t *ptr, const int32_t *idx, int64_t n_rows, int64_t cap, int64_t *since_fired) {
    const int64_t nnz = ptr[n_rows];
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < nnz && e < cap;
         e += (int64_t)gridDim.x * blockDim.x)
        since_fired[idx[e]] = 0;
}

// The step's tail: the batch-top-k threshold EMA (dictionary_learning's inference threshold, training scale;
// only when something was selected) and the statistics record.
__global__ void tail_kernel(GpuScalars *s, const int64_t *nnz_ptr, int first, int batch_topk, StatsRec *rec) {
    const long long nnz = (long long)*nnz_ptr;
    if (batch_topk && nnz > 0)
        s->threshold = first ? (double)s->min_sel : 0.999 * s->threshold + 0.001 * (double)s->min_sel;
    rec->fvu = s->fvu;
    rec->aux = s->aux;
    rec->nnz = nnz;
    rec->n_dead = (long long)s->n_dead;
}

// Data parallel: fmask[i] = 1 for the latents selected in this rank's rows (summed over ranks afterwards).
__global__ void fired_mask_kernel(const int64_t *ptr, const int32_t *idx, int64_t n_rows, int64_t cap, float *fmask) {
    const int64_t nnz = ptr[n_rows];
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < nnz && e < cap;
         e += (int64_t)gridDim.x * blockDim.x)
        fmask[idx[e]] = 1.0f;
}

// since_fired += n (the global batch), 0 where any rank's rows selected the latent.
__global__ void counters_from_mask_kernel(int64_t *since_fired, const float *fmask, int64_t M, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < M) since_fired[i] = fmask[i] > 0.0f ? 0 : since_fired[i] + n;
}

// Data parallel: this rank's FVU and AuxK sums (already divided by the global tv) and entry count, as floats
// for the all-reduce (statistics only: the gradients never pass through them).
__global__ void local_stats_kernel(const GpuScalars *s, const int64_t *nnz_ptr, float *st) {
    st[0] = (float)s->fvu;
    st[1] = (float)s->aux;
    st[2] = (float)*nnz_ptr; // exact below 2^24 entries per batch (asserted at set-up)
}

// The tail of a data-parallel step: statistics from the summed floats (no threshold: batch-top-k is refused).
__global__ void dist_tail_kernel(const GpuScalars *s, const float *st, StatsRec *rec) {
    rec->fvu = st[0];
    rec->aux = st[1];
    rec->nnz = (long long)st[2];
    rec->n_dead = (long long)s->n_dead;
}

unsigned blocks_for(int64_t n, int threads) { return (unsigned)CEIL_DIV(n, (int64_t)threads); }

bool same_config(const sae_config *a, const sae_config *b) {
    return a->d == b->d && a->M == b->M && a->k == b->k && a->batch_topk == b->batch_topk && a->k_aux == b->k_aux &&
           a->auxk_alpha == b->auxk_alpha && a->dead_tokens == b->dead_tokens && a->lr == b->lr &&
           a->warmup_steps == b->warmup_steps && a->total_steps == b->total_steps && a->decay_frac == b->decay_frac &&
           a->beta1 == b->beta1 && a->beta2 == b->beta2 && a->eps == b->eps;
}

}  // namespace

struct sae_gpu_trainer {
    sae_config cfg;
    int64_t batch, d, M, numel;
    musae_dtype prec;
    int aux_on; // α > 0 and k_aux > 0: the AuxK path runs every step
    cudaStream_t stream;
    int own_stream;
    cublasHandle_t blas;
    size_t bytes;
    // fp32 masters, gradients, moments: [numel] each, sae_params layout
    float *p, *gr, *m, *v;
    // bf16 shadows (MUSAE_BF16 only)
    uint16_t *We16, *Wd16, *xc16, *gx16, *ge16;
    // per-batch buffers [batch, d]; pre [batch, M] for batch-top-k
    float *x_in, *x, *xc, *xhat, *ehat, *g_xhat, *g_ehat, *pre;
    int64_t *since_fired;
    uint8_t *dead;
    sae_codes codes, aux;
    void *scratch;
    size_t scratch_bytes, enc_scratch_bytes;
    GpuScalars *sc;
    StatsRec *rec_dev, *rec_host; // [SAE_GPU_STATS_RING]; rec_host pinned
    int64_t rec_n[SAE_GPU_STATS_RING];
    cudaEvent_t rec_ev[SAE_GPU_STATS_RING], in_ev;
    // data parallel (sae_gpu_trainer_set_data_parallel): the communicator, this rank, fired mask [M], stats [3]
    musae_nccl *nccl;
    int rank, world;
    float *fmask, *dstats;
    // host counters
    float scale;
    int64_t step, tokens;
};

static void *dalloc(sae_gpu_trainer *g, size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    g->bytes += bytes;
    return p;
}

static float *W_enc(float *base, int64_t) { return base; }
static float *b_enc(float *base, int64_t Md) { return base + Md; }
static float *W_dec(float *base, int64_t Md, int64_t M) { return base + Md + M; }
static float *b_dec(float *base, int64_t Md, int64_t M) { return base + 2 * Md + M; }

sae_gpu_trainer *sae_gpu_trainer_init(const sae_config *cfg, int64_t batch, musae_dtype precision, void *stream) {
    MUSAE_ASSERT(cfg->d > 0 && cfg->M > 0 && cfg->k > 0 && cfg->k <= cfg->M, "d %d, M %d, k %d", cfg->d, cfg->M, cfg->k);
    MUSAE_ASSERT(cfg->k_aux >= 0 && cfg->k_aux <= cfg->M && batch > 0, "k_aux %d, batch %lld", cfg->k_aux,
                 (long long)batch);
    MUSAE_ASSERT(precision == MUSAE_F32 || precision == MUSAE_BF16, "GPU trainer precision %s (f32 or bf16)",
                 musae_dtype_name(precision));
    MUSAE_ASSERT(cfg->d <= SAE_CUDA_D_MAX, "d %d: the GPU kernels take at most %d", cfg->d, (int)SAE_CUDA_D_MAX);
    MUSAE_ASSERT(cfg->batch_topk || cfg->k <= SAE_CUDA_K_MAX, "k %d: the GPU kernels take at most %d", cfg->k,
                 (int)SAE_CUDA_K_MAX);
    sae_gpu_trainer *g = (sae_gpu_trainer *)musae_xcalloc(1, sizeof *g);
    g->cfg = *cfg;
    g->batch = batch;
    g->d = cfg->d;
    g->M = cfg->M;
    g->prec = precision;
    g->aux_on = cfg->auxk_alpha > 0 && cfg->k_aux > 0;
    MUSAE_ASSERT(!g->aux_on || cfg->k_aux <= SAE_CUDA_K_MAX, "k_aux %d: the GPU kernels take at most %d", cfg->k_aux,
                 (int)SAE_CUDA_K_MAX);
    const int64_t d = g->d, M = g->M, N = batch, Md = M * d;
    MUSAE_ASSERT(N * (cfg->k + (g->aux_on ? cfg->k_aux : 0)) < INT32_MAX, "batch %lld × (k + k_aux) entries exceeds 2^31",
                 (long long)N);
    g->numel = sae_params_numel(d, M);
    g->scale = 1.0f;
    if (stream) {
        g->stream = (cudaStream_t)stream;
    } else {
        CUDA_CHECK(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
        g->own_stream = 1;
    }
    CUBLAS_CHECK(cublasCreate(&g->blas));
    CUBLAS_CHECK(cublasSetStream(g->blas, g->stream));

    const size_t pb = sizeof(float) * (size_t)g->numel, bd = sizeof(float) * (size_t)(N * d);
    g->p = (float *)dalloc(g, pb);
    g->gr = (float *)dalloc(g, pb);
    g->m = (float *)dalloc(g, pb);
    g->v = (float *)dalloc(g, pb);
    CUDA_CHECK(cudaMemset(g->p, 0, pb));
    CUDA_CHECK(cudaMemset(g->gr, 0, pb));
    CUDA_CHECK(cudaMemset(g->m, 0, pb));
    CUDA_CHECK(cudaMemset(g->v, 0, pb));
    const bool b16 = precision == MUSAE_BF16;
    if (b16) {
        g->We16 = (uint16_t *)dalloc(g, 2 * (size_t)Md);
        g->Wd16 = (uint16_t *)dalloc(g, 2 * (size_t)Md);
        g->xc16 = (uint16_t *)dalloc(g, 2 * (size_t)(N * d));
        g->gx16 = (uint16_t *)dalloc(g, 2 * (size_t)(N * d));
        if (g->aux_on) g->ge16 = (uint16_t *)dalloc(g, 2 * (size_t)(N * d));
    }
    g->x_in = (float *)dalloc(g, bd);
    g->x = (float *)dalloc(g, bd);
    g->xc = (float *)dalloc(g, bd);
    g->xhat = (float *)dalloc(g, bd);
    g->g_xhat = (float *)dalloc(g, bd);
    if (g->aux_on) {
        g->ehat = (float *)dalloc(g, bd);
        g->g_ehat = (float *)dalloc(g, bd);
    }
    if (cfg->batch_topk) g->pre = (float *)dalloc(g, sizeof(float) * (size_t)N * (size_t)M);
    g->since_fired = (int64_t *)dalloc(g, sizeof(int64_t) * (size_t)M);
    CUDA_CHECK(cudaMemset(g->since_fired, 0, sizeof(int64_t) * (size_t)M));
    g->dead = (uint8_t *)dalloc(g, (size_t)M);
    const int64_t cap = N * cfg->k, acap = g->aux_on ? N * cfg->k_aux : 0;
    g->codes = {N, cap, (int64_t *)dalloc(g, sizeof(int64_t) * (size_t)(N + 1)),
                (int32_t *)dalloc(g, sizeof(int32_t) * (size_t)(cap + 1)), (float *)dalloc(g, sizeof(float) * (size_t)(cap + 1))};
    if (g->aux_on)
        g->aux = {N, acap, (int64_t *)dalloc(g, sizeof(int64_t) * (size_t)(N + 1)),
                  (int32_t *)dalloc(g, sizeof(int32_t) * (size_t)(acap + 1)),
                  (float *)dalloc(g, sizeof(float) * (size_t)(acap + 1))};

    // One scratch serves every op (they run one after another on one stream). The encoder is told only its own
    // recommended size: it sizes its GEMM tile to the scratch it is given (~24 MiB, to stay in L2).
    const int k_enc = cfg->batch_topk ? 0 : cfg->k, ka = g->aux_on ? cfg->k_aux : 0;
    g->enc_scratch_bytes = sae_cuda_encode_scratch_bytes(N, M, k_enc, ka);
    size_t s = g->enc_scratch_bytes;
    const size_t others[] = {sae_cuda_backward_scratch_bytes(N, cap, acap, d, M), sae_cuda_total_variance_scratch_bytes(N, d),
                             sae_cuda_loss_grad_scratch_bytes(N),
                             cfg->batch_topk ? sae_cuda_batch_topk_scratch_bytes(N, M) : (size_t)0};
    for (size_t o : others) s = o > s ? o : s;
    g->scratch_bytes = s;
    g->scratch = dalloc(g, s);
    g->sc = (GpuScalars *)dalloc(g, sizeof(GpuScalars));
    CUDA_CHECK(cudaMemset(g->sc, 0, sizeof(GpuScalars)));
    g->rec_dev = (StatsRec *)dalloc(g, sizeof(StatsRec) * SAE_GPU_STATS_RING);
    CUDA_CHECK(cudaHostAlloc((void **)&g->rec_host, sizeof(StatsRec) * SAE_GPU_STATS_RING, cudaHostAllocDefault));
    for (int i = 0; i < SAE_GPU_STATS_RING; i++) CUDA_CHECK(cudaEventCreateWithFlags(&g->rec_ev[i], cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&g->in_ev, cudaEventDisableTiming));
    if (b16) { // shadows of the zero weights, so a step before any load is well defined
        sae_cuda_to_bf16(W_enc(g->p, Md), Md, g->We16, g->stream);
        sae_cuda_to_bf16(W_dec(g->p, Md, M), Md, g->Wd16, g->stream);
    }
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    return g;
}

void sae_gpu_trainer_free(sae_gpu_trainer *g) {
    if (!g) return;
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    void *bufs[] = {g->p,      g->gr,        g->m,         g->v,        g->We16,        g->Wd16,       g->xc16,
                    g->gx16,   g->ge16,      g->x_in,      g->x,        g->xc,          g->xhat,       g->ehat,
                    g->g_xhat, g->g_ehat,    g->pre,       g->since_fired, g->dead,     g->codes.ptr,  g->codes.idx,
                    g->codes.val, g->aux.ptr, g->aux.idx,  g->aux.val,  g->scratch,     g->sc,         g->rec_dev,
                    g->fmask,  g->dstats};
    for (void *b : bufs)
        if (b) CUDA_CHECK(cudaFree(b));
    CUDA_CHECK(cudaFreeHost(g->rec_host));
    for (int i = 0; i < SAE_GPU_STATS_RING; i++) CUDA_CHECK(cudaEventDestroy(g->rec_ev[i]));
    CUDA_CHECK(cudaEventDestroy(g->in_ev));
    CUBLAS_CHECK(cublasDestroy(g->blas));
    if (g->own_stream) CUDA_CHECK(cudaStreamDestroy(g->stream));
    free(g);
}

void *sae_gpu_trainer_stream(const sae_gpu_trainer *g) { return (void *)g->stream; }
size_t sae_gpu_trainer_device_bytes(const sae_gpu_trainer *g) { return g->bytes; }
int64_t sae_gpu_trainer_steps(const sae_gpu_trainer *g) { return g->step; }
void sae_gpu_trainer_sync(sae_gpu_trainer *g) { CUDA_CHECK(cudaStreamSynchronize(g->stream)); }

void sae_gpu_trainer_load_from_cpu(sae_gpu_trainer *g, const sae_trainer *t) {
    MUSAE_ASSERT(same_config(&g->cfg, &t->cfg), "load_from_cpu: the CPU trainer has another config (d %d M %d k %d)",
                 t->cfg.d, t->cfg.M, t->cfg.k);
    const size_t pb = sizeof(float) * (size_t)g->numel;
    CUDA_CHECK(cudaStreamSynchronize(g->stream)); // no step may still read what is overwritten
    CUDA_CHECK(cudaMemcpy(g->p, t->p.base, pb, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(g->gr, t->g.base, pb, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(g->m, t->m.base, pb, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(g->v, t->v.base, pb, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(g->since_fired, t->since_fired, sizeof(int64_t) * (size_t)g->M, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(&g->sc->threshold, &t->threshold, sizeof(double), cudaMemcpyHostToDevice));
    g->scale = t->scale;
    g->step = t->step;
    g->tokens = t->tokens;
    if (g->prec == MUSAE_BF16) {
        const int64_t Md = g->M * g->d;
        sae_cuda_to_bf16(W_enc(g->p, Md), Md, g->We16, g->stream);
        sae_cuda_to_bf16(W_dec(g->p, Md, g->M), Md, g->Wd16, g->stream);
    }
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
}

void sae_gpu_trainer_store_to_cpu(sae_gpu_trainer *g, sae_trainer *t) {
    MUSAE_ASSERT(same_config(&g->cfg, &t->cfg), "store_to_cpu: the CPU trainer has another config (d %d M %d k %d)",
                 t->cfg.d, t->cfg.M, t->cfg.k);
    const size_t pb = sizeof(float) * (size_t)g->numel;
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    CUDA_CHECK(cudaMemcpy(t->p.base, g->p, pb, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(t->g.base, g->gr, pb, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(t->m.base, g->m, pb, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(t->v.base, g->v, pb, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(t->since_fired, g->since_fired, sizeof(int64_t) * (size_t)g->M, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(&t->threshold, &g->sc->threshold, sizeof(double), cudaMemcpyDeviceToHost));
    t->scale = g->scale;
    t->step = g->step;
    t->tokens = g->tokens;
}

void sae_gpu_trainer_step(sae_gpu_trainer *g, const float *x_raw, int64_t n) {
    const sae_config *c = &g->cfg;
    const int64_t d = g->d, M = g->M, Md = M * d;
    MUSAE_ASSERT(n > 0 && n <= g->batch, "batch of %lld rows (capacity %lld)", (long long)n, (long long)g->batch);
    cudaStream_t s = g->stream;
    const bool b16 = g->prec == MUSAE_BF16;
    float *We = W_enc(g->p, Md), *be = b_enc(g->p, Md), *Wd = W_dec(g->p, Md, M), *bd = b_dec(g->p, Md, M);

    // the input: device memory is read in place; host memory is copied into x_in before we return
    // data parallel: every rank holds the global batch and trains its slice [lo, hi) of the rows
    int64_t lo = 0, hi = n;
    if (g->nccl) {
        MUSAE_ASSERT(n >= g->world, "data parallel: a batch of %lld rows over %d ranks", (long long)n, g->world);
        sae_dist_slice(n, g->rank, g->world, &lo, &hi);
    }
    const int64_t nl = hi - lo;

    cudaPointerAttributes at;
    CUDA_CHECK(cudaPointerGetAttributes(&at, x_raw));
    const float *xin = x_raw;
    if (at.type != cudaMemoryTypeDevice && at.type != cudaMemoryTypeManaged) {
        CUDA_CHECK(cudaMemcpyAsync(g->x_in, x_raw, sizeof(float) * (size_t)(n * d), cudaMemcpyHostToDevice, s));
        if (at.type == cudaMemoryTypeHost) { // pinned: the copy is asynchronous, and the caller may reuse x on return
            CUDA_CHECK(cudaEventRecord(g->in_ev, s));
            CUDA_CHECK(cudaEventSynchronize(g->in_ev));
        }
        xin = g->x_in;
    }

    // dead latents from the counters before this batch (as sparsify)
    CUDA_CHECK(cudaMemsetAsync(&g->sc->n_dead, 0, sizeof(unsigned long long), s));
    dead_kernel<<<blocks_for(M, 256), 256, 0, s>>>(g->since_fired, M, c->dead_tokens, g->dead, &g->sc->n_dead);
    CUDA_LAUNCH_CHECK();

    // all n rows are centred (the total variance below is the global batch's), the rest runs on rows [lo, hi)
    sae_cuda_center(xin, g->scale, bd, n, d, g->x, g->xc, b16 ? g->xc16 : NULL, s);
    float *xl = g->x + lo * d, *xcl = g->xc + lo * d;
    const void *xc_op = b16 ? (const void *)(g->xc16 + lo * d) : (const void *)xcl;
    const void *We_op = b16 ? (const void *)g->We16 : (const void *)We;
    sae_codes *aux = g->aux_on ? &g->aux : NULL;
    g->codes.n_rows = nl;
    g->aux.n_rows = nl;
    if (c->batch_topk) {
        sae_cuda_encode(g->blas, g->prec, xc_op, We_op, be, nl, d, M, 0, g->aux_on ? g->dead : NULL,
                        g->aux_on ? c->k_aux : 0, &g->codes, aux, g->pre, g->scratch, g->scratch_bytes, s);
        sae_cuda_batch_topk(g->pre, nl, M, nl * c->k, &g->codes, &g->sc->min_sel, g->scratch, s);
    } else {
        sae_cuda_encode(g->blas, g->prec, xc_op, We_op, be, nl, d, M, c->k, g->aux_on ? g->dead : NULL,
                        g->aux_on ? c->k_aux : 0, &g->codes, aux, NULL, g->scratch, g->enc_scratch_bytes, s);
    }

    const void *Wd_op = b16 ? (const void *)g->Wd16 : (const void *)Wd;
    sae_cuda_decode(&g->codes, g->prec, Wd_op, bd, d, g->xhat, s);
    if (g->aux_on) sae_cuda_decode(&g->aux, g->prec, Wd_op, NULL, d, g->ehat, s);
    sae_cuda_total_variance(g->x, n, d, &g->sc->tv, g->scratch, s);
    sae_cuda_loss_grad(xl, g->xhat, g->aux_on ? g->ehat : NULL, nl, d, &g->sc->tv, 0.0f, g->g_xhat,
                       g->aux_on ? g->g_ehat : NULL, b16 ? g->gx16 : NULL, NULL, &g->sc->fvu, &g->sc->aux, g->scratch, s);
    if (g->aux_on) {
        aux_grad_kernel<<<blocks_for(nl * d, 256), 256, 0, s>>>(xl, g->xhat, g->ehat, nl * d, g->sc, c->auxk_alpha,
                                                                c->k_aux, g->g_ehat, b16 ? g->ge16 : NULL);
        CUDA_LAUNCH_CHECK();
    }

    float *gWe = W_enc(g->gr, Md), *gbe = b_enc(g->gr, Md), *gWd = W_dec(g->gr, Md, M), *gbd = b_dec(g->gr, Md, M);
    sae_cuda_backward(&g->codes, aux, g->prec, b16 ? (const void *)g->gx16 : (const void *)g->g_xhat,
                      g->aux_on ? (b16 ? (const void *)g->ge16 : (const void *)g->g_ehat) : NULL, xc_op, We, Wd, d, M,
                      gWe, gbe, gWd, gbd, g->scratch, g->scratch_bytes, s);

    const int64_t cap = g->codes.cap;
    const unsigned fb = (unsigned)(cap / 256 + 1 < 4096 ? cap / 256 + 1 : 4096);
#ifdef MUSAE_NCCL
    if (g->nccl) { // sum the gradients, the fired mask and the statistics over ranks, between backward and Adam
        CUDA_CHECK(cudaMemsetAsync(g->fmask, 0, sizeof(float) * (size_t)M, s));
        fired_mask_kernel<<<fb, 256, 0, s>>>(g->codes.ptr, g->codes.idx, nl, cap, g->fmask);
        CUDA_LAUNCH_CHECK();
        local_stats_kernel<<<1, 1, 0, s>>>(g->sc, g->codes.ptr + nl, g->dstats);
        CUDA_LAUNCH_CHECK();
        musae_nccl_wait_for(g->nccl, (void *)s);
        musae_nccl_group_start();
        musae_nccl_allreduce_sum_f32(g->nccl, g->gr, (size_t)g->numel);
        musae_nccl_allreduce_sum_f32(g->nccl, g->fmask, (size_t)M);
        musae_nccl_allreduce_sum_f32(g->nccl, g->dstats, 3);
        musae_nccl_group_end();
        musae_nccl_signal(g->nccl, (void *)s);
    }
#endif

    const sae_adam_hparams h = {sae_lr_at(c, g->step), c->beta1, c->beta2, c->eps, g->step + 1};
    sae_cuda_adam(We, gWe, W_enc(g->m, Md), W_enc(g->v, Md), Md, &h, b16 ? g->We16 : NULL, s);
    sae_adam_hparams hb = h;
    hb.lr = h.lr * c->benc_lr_mult;
    sae_cuda_adam(be, gbe, b_enc(g->m, Md), b_enc(g->v, Md), M, &hb, NULL, s);
    sae_cuda_adam(bd, gbd, b_dec(g->m, Md, M), b_dec(g->v, Md, M), d, &h, NULL, s);
    sae_cuda_adam_decoder(Wd, gWd, W_dec(g->m, Md, M), W_dec(g->v, Md, M), M, d, &h, b16 ? g->Wd16 : NULL, s);

    // firing: a latent fired when it was selected (with a positive value) in this batch
    const int slot = (int)(g->step % SAE_GPU_STATS_RING);
    if (g->nccl) {
        counters_from_mask_kernel<<<blocks_for(M, 256), 256, 0, s>>>(g->since_fired, g->fmask, M, n);
        CUDA_LAUNCH_CHECK();
        dist_tail_kernel<<<1, 1, 0, s>>>(g->sc, g->dstats, g->rec_dev + slot);
        CUDA_LAUNCH_CHECK();
    } else {
        add_tokens_kernel<<<blocks_for(M, 256), 256, 0, s>>>(g->since_fired, M, n);
        CUDA_LAUNCH_CHECK();
        fired_kernel<<<fb, 256, 0, s>>>(g->codes.ptr, g->codes.idx, n, cap, g->since_fired);
        CUDA_LAUNCH_CHECK();
        tail_kernel<<<1, 1, 0, s>>>(g->sc, g->codes.ptr + n, g->step == 0, c->batch_topk, g->rec_dev + slot);
        CUDA_LAUNCH_CHECK();
    }
    CUDA_CHECK(cudaMemcpyAsync(g->rec_host + slot, g->rec_dev + slot, sizeof(StatsRec), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaEventRecord(g->rec_ev[slot], s));
    g->rec_n[slot] = n;
    g->step++;
    g->tokens += n;
}

int sae_gpu_trainer_stats(sae_gpu_trainer *g, int64_t step, sae_step_stats *out) {
    // slot step % RING is next written by step + RING, which is enqueued only once g->step > step + RING
    if (step < 0 || step >= g->step || g->step - step > SAE_GPU_STATS_RING) return -1;
    const int slot = (int)(step % SAE_GPU_STATS_RING);
    CUDA_CHECK(cudaEventSynchronize(g->rec_ev[slot]));
    const StatsRec r = g->rec_host[slot];
    const sae_config *c = &g->cfg;
    const int use_aux = g->aux_on && r.n_dead > 0;
    const double aux_scale = use_aux ? fmin((double)r.n_dead / c->k_aux, 1.0) : 0.0;
    out->fvu = r.fvu;
    out->auxk = aux_scale * r.aux;
    out->loss = r.fvu + c->auxk_alpha * out->auxk;
    out->l0 = (double)r.nnz / (double)g->rec_n[slot];
    out->dead_frac = (double)r.n_dead / (double)g->M;
    return 0;
}

void sae_gpu_trainer_set_data_parallel(sae_gpu_trainer *g, musae_nccl *nccl, int rank, int world) {
#ifdef MUSAE_NCCL
    MUSAE_ASSERT(nccl && world >= 1 && rank >= 0 && rank < world, "rank %d of %d", rank, world);
    MUSAE_ASSERT(!g->cfg.batch_topk, "data-parallel GPU training takes per-row top-k only (batch-top-k: one GPU)");
    MUSAE_ASSERT(g->batch * g->cfg.k < (1 << 24), "data parallel: %lld entries per batch do not count exactly in fp32",
                 (long long)(g->batch * g->cfg.k));
    g->nccl = nccl;
    g->rank = rank;
    g->world = world;
    if (!g->fmask) g->fmask = (float *)dalloc(g, sizeof(float) * (size_t)g->M);
    if (!g->dstats) g->dstats = (float *)dalloc(g, sizeof(float) * 4);
#else
    (void)g, (void)nccl, (void)rank, (void)world;
    musae_fail("data-parallel GPU training needs NCCL: this musae was built without it (MUSAE_NCCL)");
#endif
}

/* ---- the feed ------------------------------------------------------------------------------------------------ */

namespace {

void *pinned_alloc(size_t bytes, void *) {
    void *p = NULL;
    CUDA_CHECK(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault));
    return p;
}
void pinned_free(void *p, void *) { CUDA_CHECK(cudaFreeHost(p)); }

struct ReleaseArg {
    sae_feed *feed;
    int slot;
};
// A CUDA host function: runs on the driver's thread once the copy out of the slot is done. No CUDA calls here.
void CUDART_CB release_slot(void *arg) {
    const ReleaseArg *a = (const ReleaseArg *)arg;
    sae_feed_release(a->feed, a->slot);
}

enum { FEED_SLOTS = 2, DEV_BUFS = 2 };

}  // namespace

struct sae_gpu_feed {
    sae_feed *host;
    cudaStream_t compute, copy;
    int n_layers, d, ended;
    int64_t batch, batches;
    float *dev[DEV_BUFS];  // [n_layers, batch, d] each
    cudaEvent_t copied[DEV_BUFS], consumed[DEV_BUFS], wait0[DEV_BUFS], wait1[DEV_BUFS];
    int consumed_pending[DEV_BUFS], timing_pending[DEV_BUFS];
    ReleaseArg rel[FEED_SLOTS];
    double gpu_wait_ms;
};

sae_gpu_feed *sae_gpu_feed_open(musae_stream *st, int n_layers, int d, int64_t batch, int64_t total_rows,
                                void *compute_stream) {
    sae_gpu_feed *f = (sae_gpu_feed *)musae_xcalloc(1, sizeof *f);
    f->compute = (cudaStream_t)compute_stream;
    f->n_layers = n_layers;
    f->d = d;
    f->batch = batch;
    CUDA_CHECK(cudaStreamCreateWithFlags(&f->copy, cudaStreamNonBlocking));
    for (int b = 0; b < DEV_BUFS; b++) {
        CUDA_CHECK(cudaMalloc(&f->dev[b], sizeof(float) * (size_t)n_layers * (size_t)batch * (size_t)d));
        CUDA_CHECK(cudaEventCreateWithFlags(&f->copied[b], cudaEventDisableTiming));
        CUDA_CHECK(cudaEventCreateWithFlags(&f->consumed[b], cudaEventDisableTiming));
        CUDA_CHECK(cudaEventCreate(&f->wait0[b]));
        CUDA_CHECK(cudaEventCreate(&f->wait1[b]));
    }
    const sae_feed_allocator pinned = {pinned_alloc, pinned_free, NULL};
    f->host = sae_feed_open(st, n_layers, d, batch, total_rows, FEED_SLOTS, &pinned);
    for (int s = 0; s < FEED_SLOTS; s++) f->rel[s] = {f->host, s};
    return f;
}

// Adds the compute stream's stall on device buffer b's last batch (its events are complete or waited for).
static void feed_take_timing(sae_gpu_feed *f, int b) {
    if (!f->timing_pending[b]) return;
    CUDA_CHECK(cudaEventSynchronize(f->wait1[b]));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, f->wait0[b], f->wait1[b]));
    f->gpu_wait_ms += ms;
    f->timing_pending[b] = 0;
}

int64_t sae_gpu_feed_next(sae_gpu_feed *f, const float **dev, musae_stream_pos *pos) {
    if (f->ended) return 0;
    // everything enqueued on the compute stream since the last call used the previous batch's device buffer
    if (f->batches > 0) {
        const int prev = (int)((f->batches - 1) % DEV_BUFS);
        CUDA_CHECK(cudaEventRecord(f->consumed[prev], f->compute));
        f->consumed_pending[prev] = 1;
    }
    sae_feed_batch hb;
    if (!sae_feed_next(f->host, &hb)) {
        f->ended = 1;
        if (pos) *pos = hb.pos;
        return 0;
    }
    const int b = (int)(f->batches % DEV_BUFS);
    const size_t bytes = sizeof(float) * (size_t)hb.rows * (size_t)f->d;
    // the buffer's previous batch (two back) must be done on the compute stream before it is overwritten
    if (f->consumed_pending[b]) CUDA_CHECK(cudaStreamWaitEvent(f->copy, f->consumed[b], 0));
    for (int l = 0; l < f->n_layers; l++)
        CUDA_CHECK(cudaMemcpyAsync(f->dev[b] + (size_t)l * (size_t)f->batch * (size_t)f->d, hb.x[l], bytes,
                                   cudaMemcpyHostToDevice, f->copy));
    CUDA_CHECK(cudaEventRecord(f->copied[b], f->copy));
    // the pinned slot goes back to the reader thread once the copy out of it has finished
    CUDA_CHECK(cudaLaunchHostFunc(f->copy, release_slot, &f->rel[hb.slot]));
    // the compute stream waits for the copy; the wait is bracketed by timed events (stall = wait1 − wait0)
    feed_take_timing(f, b);
    CUDA_CHECK(cudaEventRecord(f->wait0[b], f->compute));
    CUDA_CHECK(cudaStreamWaitEvent(f->compute, f->copied[b], 0));
    CUDA_CHECK(cudaEventRecord(f->wait1[b], f->compute));
    f->timing_pending[b] = 1;
    for (int l = 0; l < f->n_layers; l++) dev[l] = f->dev[b] + (size_t)l * (size_t)f->batch * (size_t)f->d;
    if (pos) *pos = hb.pos;
    f->batches++;
    return hb.rows;
}

sae_gpu_feed_stats sae_gpu_feed_get_stats(sae_gpu_feed *f) {
    CUDA_CHECK(cudaStreamSynchronize(f->compute));
    for (int b = 0; b < DEV_BUFS; b++) feed_take_timing(f, b);
    sae_gpu_feed_stats s;
    s.batches = f->batches;
    s.gpu_wait_s = f->gpu_wait_ms * 1e-3;
    s.host_wait_s = sae_feed_wait_seconds(f->host);
    s.read_s = sae_feed_read_seconds(f->host);
    return s;
}

void sae_gpu_feed_close(sae_gpu_feed *f) {
    if (!f) return;
    // no copy or host callback may still touch a slot or a buffer being freed
    CUDA_CHECK(cudaStreamSynchronize(f->copy));
    CUDA_CHECK(cudaStreamSynchronize(f->compute));
    sae_feed_close(f->host);
    for (int b = 0; b < DEV_BUFS; b++) {
        CUDA_CHECK(cudaFree(f->dev[b]));
        CUDA_CHECK(cudaEventDestroy(f->copied[b]));
        CUDA_CHECK(cudaEventDestroy(f->consumed[b]));
        CUDA_CHECK(cudaEventDestroy(f->wait0[b]));
        CUDA_CHECK(cudaEventDestroy(f->wait1[b]));
    }
    CUDA_CHECK(cudaStreamDestroy(f->copy));
    free(f);
}
