/* ConvTranspose1d: the full output row q·s + r is Σ_{u < J} x[q - u] · W[:, :, r + u·s] (J = k / s), so
 * each (phase r, tap u) pair is a GEMM over the input rows q - u that exist, into the phase's output rows. */
#include "kernels/cuda/conv_transpose1d.cuh"
#include "kernels/cuda/cuda_utils.cuh"

// ---- CUDA kernels
static __global__ void convt1d_bias_kernel(float *out, const float *bias, int64_t n, int64_t co) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = bias ? bias[i % co] : 0.0f;
}

// ---- kernel launchers
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void conv_transpose1d_cuda(musae_lt *lt, float *out, const float *x, const float *w, const float *bias,
                           const musae_convt1d_params *p, cudaStream_t stream) {
    const int64_t ci = p->c_in, co = p->c_out, s = p->stride, k = p->k;
    MUSAE_ASSERT(p->t_in > 0 && ci > 0 && co > 0 && s > 0 && k > 0 && k % s == 0 && p->crop_left >= 0 &&
                     p->t_out >= 0,
                 "conv_transpose1d: bad parameters t_in %lld c_in %lld c_out %lld k %lld stride %lld crop %d",
                 (long long)p->t_in, (long long)ci, (long long)co, (long long)k, (long long)s, p->crop_left);
    const int64_t J = k / s, full = (p->t_in - 1) * s + k;
    MUSAE_ASSERT(p->crop_left + p->t_out <= full, "conv_transpose1d: rows %d..%lld past the full output of %lld",
                 p->crop_left, (long long)(p->crop_left + p->t_out), (long long)full);
    if (p->t_out == 0) return;
    MUSAE_ASSERT(out && x && w && out != x, "conv_transpose1d: NULL pointer or out aliasing x");
    const int block = 256;
    convt1d_bias_kernel<<<grid_for(p->t_out * co, block), block, 0, stream>>>(out, bias, p->t_out * co, co);
    CUDA_LAUNCH_CHECK();
    for (int64_t r = 0; r < s; r++) {
        /* output rows of this phase: row q·s + r - crop_left in [0, t_out) */
        const int64_t q_lo = floor_div(p->crop_left - r + s - 1, s);
        const int64_t q_hi = floor_div(p->t_out - 1 + p->crop_left - r, s); /* inclusive */
        for (int64_t m = 0; m < J; m++) {
            const int64_t u = J - 1 - m; /* the tap r + u·s reads x[q - u] */
            const int64_t a = q_lo > u ? q_lo : u, b = q_hi < p->t_in - 1 + u ? q_hi : p->t_in - 1 + u;
            if (a > b) continue;
            matmul_lt(lt, CUDA_R_32F, 0, 1, b - a + 1, co, ci, 1.0f, x + (a - u) * ci, ci, w + (r * co * J + m) * ci,
                      J * ci, 1.0f, out + (a * s + r - p->crop_left) * co, s * co, stream);
        }
    }
}
