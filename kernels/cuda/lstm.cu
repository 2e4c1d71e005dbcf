/* LSTM recurrence: one warp per hidden unit j computes the four gate rows j, H+j, 2H+j, 3H+j of W_hh·h
 * (W_hh, 16 MB at EnCodec's hidden 1024, stays in L2 across steps), adds the precomputed input part and
 * updates c[j] and h[j]. Gate math as kernels/cpu/lstm.c: σ(v) = 1 / (1 + exp(-v)), tanhf. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/lstm.cuh"

static const int k_block = 256;

// ---- CUDA kernels
static __global__ void lstm_bias_kernel(float *work, const float *b_ih, const float *b_hh, int64_t n, int64_t g4) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int64_t j = i % g4;
        work[i] += b_ih[j] + b_hh[j];
    }
}

static __device__ __forceinline__ float sigmoid_f(float v) { return 1.0f / (1.0f + expf(-v)); }

static __global__ void __launch_bounds__(256)
    lstm_step_kernel(float *__restrict__ h_out, const float *__restrict__ h_in, float *__restrict__ c,
                     const float *__restrict__ w_hh, const float *__restrict__ g_in, int64_t H) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int64_t j = (int64_t)blockIdx.x * (k_block / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    if (j >= H) return; // whole warp
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = lane; i < H; i += WARP_SIZE) {
        const float hv = h_in[i];
#pragma unroll
        for (int q = 0; q < 4; q++) acc[q] = fmaf(w_hh[(q * H + j) * H + i], hv, acc[q]);
    }
#pragma unroll
    for (int q = 0; q < 4; q++) acc[q] = warp_sum(acc[q]);
    if (lane == 0) {
        const float ig = sigmoid_f(g_in[j] + acc[0]), fg = sigmoid_f(g_in[H + j] + acc[1]);
        const float gg = tanhf(g_in[2 * H + j] + acc[2]), og = sigmoid_f(g_in[3 * H + j] + acc[3]);
        const float cj = fg * c[j] + ig * gg;
        c[j] = cj;
        h_out[j] = og * tanhf(cj);
    }
}

// ---- kernel launchers
void lstm_cuda(musae_lt *lt, float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
               const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work,
               cudaStream_t stream) {
    MUSAE_ASSERT(t >= 0 && d_in > 0 && hidden > 0 && 4 * hidden <= INT32_MAX, "lstm: t %lld d_in %lld hidden %lld",
                 (long long)t, (long long)d_in, (long long)hidden);
    MUSAE_ASSERT(out != x, "lstm: out must not alias x");
    const int64_t H = hidden, G = 4 * hidden;
    if (t == 0) return;
    MUSAE_ASSERT(out && x && w_ih && w_hh && b_ih && b_hh && h && c && work, "lstm: NULL pointer");
    matmul_lt(lt, CUDA_R_32F, 0, 1, t, G, d_in, 1.0f, x, d_in, w_ih, d_in, 0.0f, work, G, stream);
    lstm_bias_kernel<<<grid_for(t * G, k_block), k_block, 0, stream>>>(work, b_ih, b_hh, t * G, G);
    CUDA_LAUNCH_CHECK();
    const unsigned grid = (unsigned)CEIL_DIV(H, (int64_t)(k_block / WARP_SIZE));
    for (int64_t s = 0; s < t; s++) {
        const float *h_in = s == 0 ? h : out + (s - 1) * H;
        lstm_step_kernel<<<grid, k_block, 0, stream>>>(out + s * H, h_in, c, w_hh, work + s * G, H);
        CUDA_LAUNCH_CHECK();
    }
    CUDA_CHECK(cudaMemcpyAsync(h, out + (t - 1) * H, (size_t)H * sizeof(float), cudaMemcpyDeviceToDevice, stream));
}
