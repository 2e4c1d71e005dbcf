/* SAE optimizer on the GPU, as sae_cpu_adam / sae_cpu_adam_decoder / sae_cpu_normalize_rows.
 *
 * Adam is elementwise with the CPU's operations rounded one at a time (__fadd_rn & co. keep nvcc from fusing
 * them into FMAs; sqrt and division are IEEE by default), and the same float constants computed the same way on
 * the host: the GPU step is bit-identical to the CPU's. The decoder step is one block per row holding the row's
 * w, g, m, v in registers (8 consecutive columns per thread): one read and one write of each array, the two
 * row sums (<g, w> and ‖w‖²) by a fixed tree. An optional bf16 shadow of the new weights is written in the
 * same pass, for the next step's GEMM (W_enc) or gathers (W_dec). */
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

struct AdamConsts {
    float b1c, b2c;   // 1 − β1, 1 − β2
    float beta2;
    float step_size;  // lr / (1 − β1^t)
    float bc2_sqrt;   // √(1 − β2^t)
    float eps;
};

// Exactly kernels/cpu/sae_adam.c's consts(): the bias corrections in double, as torch computes them.
AdamConsts adam_consts(const sae_adam_hparams *h) {
    MUSAE_ASSERT(h->t >= 1, "Adam step %lld (counts from 1)", (long long)h->t);
    const double bc1 = 1.0 - pow((double)h->beta1, (double)h->t), bc2 = 1.0 - pow((double)h->beta2, (double)h->t);
    AdamConsts c = {1.0f - h->beta1, 1.0f - h->beta2, h->beta2, (float)(h->lr / bc1), (float)sqrt(bc2), h->eps};
    return c;
}

// m += (1−β1)(g − m); v = β2 v + (1−β2) g g; p −= step · m / (√v / √bc2 + eps), each operation rounded.
__device__ __forceinline__ void adam_elem(float &p, float g, float &m, float &v, const AdamConsts &c) {
    m = __fadd_rn(m, __fmul_rn(c.b1c, __fsub_rn(g, m)));
    v = __fadd_rn(__fmul_rn(c.beta2, v), __fmul_rn(__fmul_rn(c.b2c, g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), c.bc2_sqrt), c.eps);
    p = __fsub_rn(p, __fmul_rn(c.step_size, __fdiv_rn(m, denom)));
}

__global__ void adam_kernel(float *p, const float *g, float *m, float *v, int64_t n, AdamConsts c, uint16_t *p16) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float pp = p[i], mm = m[i], vv = v[i];
        adam_elem(pp, g[i], mm, vv, c);
        p[i] = pp, m[i] = mm, v[i] = vv;
        if (p16) p16[i] = musae_f32_to_bf16(pp);
    }
}

// Four elements per thread with 16-byte accesses (all pointers 16-byte aligned, n % 4 == 0).
__global__ void adam_vec4_kernel(float4 *p, const float4 *g, float4 *m, float4 *v, int64_t n4, AdamConsts c,
                                 uint2 *p16) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
        float4 pp = p[i], mm = m[i], vv = v[i];
        const float4 gg = g[i];
        adam_elem(pp.x, gg.x, mm.x, vv.x, c);
        adam_elem(pp.y, gg.y, mm.y, vv.y, c);
        adam_elem(pp.z, gg.z, mm.z, vv.z, c);
        adam_elem(pp.w, gg.w, mm.w, vv.w, c);
        p[i] = pp, m[i] = mm, v[i] = vv;
        if (p16)
            p16[i] = make_uint2((uint32_t)musae_f32_to_bf16(pp.x) | (uint32_t)musae_f32_to_bf16(pp.y) << 16,
                                (uint32_t)musae_f32_to_bf16(pp.z) | (uint32_t)musae_f32_to_bf16(pp.w) << 16);
    }
}

// One row per block; thread t owns columns [8t, 8t + 8). MODE 0: normalise only; MODE 1: decoder Adam step.
template <int MODE>
__global__ void __launch_bounds__(1024) adam_decoder_rows_kernel(float *W, float *G, float *Mo, float *V, int64_t d,
                                                                 AdamConsts c, uint16_t *W16) {
    __shared__ float red[33];
    const int64_t o = (int64_t)blockIdx.x * d, c0 = (int64_t)threadIdx.x * 8;
    float w[8], g[8], m[8], v[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const bool in = c0 + j < d;
        w[j] = in ? W[o + c0 + j] : 0.0f;
        if (MODE == 1) {
            g[j] = in ? G[o + c0 + j] : 0.0f;
            m[j] = in ? Mo[o + c0 + j] : 0.0f;
            v[j] = in ? V[o + c0 + j] : 0.0f;
        }
    }
    if (MODE == 1) {
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; j++) s += g[j] * w[j];
        const float par = sae_block_sum(s, red);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            g[j] = __fsub_rn(g[j], __fmul_rn(par, w[j]));
            adam_elem(w[j], g[j], m[j], v[j], c);
        }
    }
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) s += c0 + j < d ? w[j] * w[j] : 0.0f; // padding columns ran Adam on zeros
    const float norm = sqrtf(sae_block_sum(s, red));
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (c0 + j >= d) continue;
        const float wn = norm > 0.0f ? __fdiv_rn(w[j], norm) : w[j];
        W[o + c0 + j] = wn;
        if (W16) W16[o + c0 + j] = musae_f32_to_bf16(wn);
        if (MODE == 1) {
            G[o + c0 + j] = g[j];
            Mo[o + c0 + j] = m[j];
            V[o + c0 + j] = v[j];
        }
    }
}

unsigned grid_for(int64_t n, int threads) {
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    int64_t b = CEIL_DIV(n, threads), cap = (int64_t)sms * 16;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

int rows_threads(int64_t d) {
    MUSAE_ASSERT(d >= 1 && d <= SAE_CUDA_D_MAX, "d = %lld: the row kernels take 1..%d columns", (long long)d,
                 SAE_CUDA_D_MAX);
    int64_t t = CEIL_DIV(CEIL_DIV(d, 8), 32) * 32;
    return (int)t;
}

}  // namespace

void sae_cuda_adam(float *p, const float *g, float *m, float *v, int64_t n, const sae_adam_hparams *h, uint16_t *p_bf16,
                   cudaStream_t stream) {
    MUSAE_ASSERT(n >= 0, "n %lld", (long long)n);
    const AdamConsts c = adam_consts(h);
    if (n == 0) return;
    const bool vec = n % 4 == 0 && sae_aligned16(p) && sae_aligned16(g) && sae_aligned16(m) && sae_aligned16(v) &&
                     (!p_bf16 || ((uintptr_t)p_bf16 & 7u) == 0);
    if (vec) {
        adam_vec4_kernel<<<grid_for(n / 4, 256), 256, 0, stream>>>((float4 *)p, (const float4 *)g, (float4 *)m,
                                                                   (float4 *)v, n / 4, c, (uint2 *)p_bf16);
    } else {
        adam_kernel<<<grid_for(n, 256), 256, 0, stream>>>(p, g, m, v, n, c, p_bf16);
    }
    CUDA_LAUNCH_CHECK();
}

void sae_cuda_adam_decoder(float *W_dec, float *g, float *m, float *v, int64_t M, int64_t d, const sae_adam_hparams *h,
                           uint16_t *W_dec_bf16, cudaStream_t stream) {
    MUSAE_ASSERT(M >= 0 && M < INT32_MAX, "M %lld", (long long)M);
    const AdamConsts c = adam_consts(h);
    if (M == 0) return;
    adam_decoder_rows_kernel<1><<<(unsigned)M, rows_threads(d), 0, stream>>>(W_dec, g, m, v, d, c, W_dec_bf16);
    CUDA_LAUNCH_CHECK();
}

void sae_cuda_normalize_rows(float *W, int64_t M, int64_t d, cudaStream_t stream) {
    MUSAE_ASSERT(M >= 0 && M < INT32_MAX, "M %lld", (long long)M);
    if (M == 0) return;
    const AdamConsts c = {};
    adam_decoder_rows_kernel<0><<<(unsigned)M, rows_threads(d), 0, stream>>>(W, nullptr, nullptr, nullptr, d, c, nullptr);
    CUDA_LAUNCH_CHECK();
}
