/* step_ops->attention on the GPU: split-KV decode attention (split_kv.cuh, as attention.cu's decode path) for
 * one causal query per row at the device position. The launch is sized for t_max once: `units` key splits per
 * head, chosen from t_max; each split reads the key count len = *pos + 1 on the device and owns
 * [u·ceil(len/units), ...) ∩ [0, len), so at short lengths the surplus splits find no keys, write an empty
 * partial (m = -inf, l = 0) and the combine weighs them by 0. Every key up to the query's own position is
 * visible, so there is no mask. Numerics as attention.cu: fp32 scores, expf, fp32 accumulators. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/split_kv.cuh"
#include "kernels/cuda/step_ops_cuda.cuh"

#define SDEC_MAX_DH 128

typedef struct {
    int64_t H, D;
    int64_t q_sb, k_sb, k_st, v_sb, v_st, o_sb;
    float scale;
} sdec_args;

// ---- CUDA kernels

/* Phase 1: block (x, h, b), warp w = key unit u = x·4 + w of head h, row b; the key count is read on the
 * device, so the same launch serves every position. */
template <int DMAX>
static __global__ void __launch_bounds__(SKV_WARPS * WARP_SIZE)
    step_attn_split_kernel(float *__restrict__ part, const float *__restrict__ q, const float *__restrict__ k,
                           const float *__restrict__ v, sdec_args a, const int64_t *__restrict__ pos) {
    constexpr int C = DMAX / WARP_SIZE;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t units = (int64_t)gridDim.x * SKV_WARPS, u = (int64_t)blockIdx.x * SKV_WARPS + warp;
    const int64_t len = *pos + 1, kpu = (len + units - 1) / units;
    const int64_t j0 = u * kpu, j1 = (j0 + kpu < len ? j0 + kpu : len);
    const float *kb = k + b * a.k_sb + h * a.D;
    const float *vb = v + b * a.v_sb + h * a.D;

    float qv[C], o[C];
    skv_start<C>(qv, o, q + b * a.q_sb + h * a.D, a.D, lane);
    float m = -INFINITY, l = 0.0f;
    for (int64_t jb = j0; jb < j1; jb += SKV_G) {
        float s[SKV_G];
        skv_scores<C>(s, qv, kb, jb, j1, a.k_st, a.D, lane);
#pragma unroll
        for (int g = 0; g < SKV_G; g++) s[g] = jb + g < j1 ? s[g] * a.scale : -INFINITY;
        skv_fold<C>(s, m, l, o, vb, jb, a.v_st, a.D, lane);
    }
    skv_write_partial<C>(part + ((b * a.H + h) * units + u) * (a.D + 2), o, m, l, a.D, lane);
}

/* Phase 2 (split_kv.cuh): block (h, b) merges the units of one head. */
static __global__ void __launch_bounds__(128)
    step_attn_combine_kernel(float *out, const float *__restrict__ part, sdec_args a, int units) {
    __shared__ float w[SKV_MAX_UNITS];
    __shared__ float scratch[32];
    skv_combine(out, part, a.H, a.D, a.o_sb, units, w, scratch);
}

// ---- kernel launchers

/* Splits per head, sized for t_max (split_kv.cuh's rule). */
static int step_units(const musae_attn_params *p, int64_t t_max, int sm_count) {
    return skv_units(p->batch * p->heads, t_max, sm_count);
}

size_t step_attention_workspace(const musae_attn_params *p, int64_t t_max, int sm_count) {
    return (size_t)(p->batch * p->heads * step_units(p, t_max, sm_count) * (p->dh + 2)) * sizeof(float);
}

template <int DMAX>
static void step_attn_launch(float *out, const float *q, const float *k, const float *v, const sdec_args &a,
                             int64_t batch, int units, float *part, const int64_t *pos, cudaStream_t stream) {
    dim3 grid1((unsigned)(units / SKV_WARPS), (unsigned)a.H, (unsigned)batch);
    step_attn_split_kernel<DMAX><<<grid1, SKV_WARPS * WARP_SIZE, 0, stream>>>(part, q, k, v, a, pos);
    CUDA_LAUNCH_CHECK();
    dim3 grid2((unsigned)a.H, (unsigned)batch);
    step_attn_combine_kernel<<<grid2, 128, 0, stream>>>(out, part, a, units);
    CUDA_LAUNCH_CHECK();
}

void step_attention_cuda(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                         int64_t t_max, const int64_t *pos, int sm_count, void *workspace, size_t workspace_bytes,
                         cudaStream_t stream) {
    MUSAE_ASSERT(p->tq == 1 && p->batch >= 1 && p->batch <= 65535 && p->heads >= 1 && p->heads <= 65535 &&
                 p->dh >= 1 && p->dh <= SDEC_MAX_DH && t_max >= 1,
                 "step attention: batch %lld heads %lld tq %lld dh %lld t_max %lld", (long long)p->batch,
                 (long long)p->heads, (long long)p->tq, (long long)p->dh, (long long)t_max);
    MUSAE_ASSERT(out != k && out != v, "step attention: out must not alias k or v");
    const int units = step_units(p, t_max, sm_count);
    const size_t need = step_attention_workspace(p, t_max, sm_count);
    MUSAE_ASSERT(workspace && workspace_bytes >= need, "step attention: workspace %zu bytes, need %zu", workspace_bytes,
                 need);
    sdec_args a;
    a.H = p->heads, a.D = p->dh, a.q_sb = p->q_sb, a.k_sb = p->k_sb, a.k_st = p->k_st, a.v_sb = p->v_sb;
    a.v_st = p->v_st, a.o_sb = p->o_sb, a.scale = p->scale;
    float *part = (float *)workspace;
    if (p->dh <= 32) step_attn_launch<32>(out, q, k, v, a, p->batch, units, part, pos, stream);
    else if (p->dh <= 64) step_attn_launch<64>(out, q, k, v, a, p->batch, units, part, pos, stream);
    else step_attn_launch<128>(out, q, k, v, a, p->batch, units, part, pos, stream);
}
