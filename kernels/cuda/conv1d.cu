/* Conv1d: bias/accumulate initialization, then either the direct kernel or padded copy + grouped GEMMs.
 * Rounding order follows kernels/cpu/conv1d.c: out starts as bias (or out + bias when accumulating), and the
 * tap products are added to it. */
#include "kernels/cuda/conv1d.cuh"
#include "kernels/cuda/cuda_utils.cuh"

// ---- CUDA kernels
// Row i of the padded input (counted from the first padding row) as a row of x, or -1 for a zero row.
static __device__ __forceinline__ int64_t padded_row(int64_t i, int64_t t_in, int pad_left, int reflect) {
    const int64_t r = i - pad_left;
    if (r >= 0 && r < t_in) return r;
    if (!reflect) return -1;
    return r < 0 ? -r : 2 * (t_in - 1) - r;
}

// out[t, o] = accumulate ? out + bias : bias (or 0 without bias).
static __global__ void conv1d_init_kernel(float *out, const float *bias, int64_t n, int64_t co, int accumulate) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float b = bias ? bias[i % co] : 0.0f;
        out[i] = accumulate ? out[i] + b : b;
    }
}

static __global__ void conv1d_pad_kernel(float *xp, const float *x, int64_t tp, int64_t t_in, int64_t ci,
                                         int pad_left, int reflect) {
    const int64_t n = tp * ci, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int64_t row = i / ci, c = i % ci;
        const int64_t r = padded_row(row, t_in, pad_left, reflect);
        xp[i] = r < 0 ? 0.0f : x[r * ci + c];
    }
}

// One thread per output element; c_in·k is small, so the whole receptive field is a short loop.
static __global__ void conv1d_direct_kernel(float *out, const float *__restrict__ x, const float *__restrict__ w,
                                            musae_conv1d_params p) {
    const int64_t n = p.t_out * p.c_out, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += stride) {
        const int64_t t = idx / p.c_out, o = idx % p.c_out;
        float s = 0.0f;
        for (int j = 0; j < p.k; j++) {
            const int64_t r = padded_row(t * p.stride + (int64_t)j * p.dilation, p.t_in, p.pad_left, p.reflect);
            if (r < 0) continue;
            const float *wr = w + (o * p.k + j) * p.c_in, *xr = x + r * p.c_in;
            for (int64_t i = 0; i < p.c_in; i++) s = fmaf(wr[i], xr[i], s);
        }
        out[idx] += s;
    }
}

// ---- kernel launchers
static bool conv1d_direct(const musae_conv1d_params *p) { return p->c_in * p->k <= CONV1D_DIRECT_MAX_CK; }

size_t conv1d_scratch_bytes(const musae_conv1d_params *p) {
    if (conv1d_direct(p)) return 0;
    return (size_t)((p->t_in + p->pad_left + p->pad_right) * p->c_in) * sizeof(float);
}

void conv1d_cuda(musae_lt *lt, float *out, const float *x, const float *w, const float *bias,
                 const musae_conv1d_params *p, void *scratch, size_t scratch_bytes, cudaStream_t stream) {
    const int64_t ci = p->c_in, co = p->c_out, s = p->stride;
    MUSAE_ASSERT(p->t_in > 0 && ci > 0 && co > 0 && p->k > 0 && s > 0 && p->dilation > 0 && p->pad_left >= 0 &&
                     p->pad_right >= 0 && p->t_out >= 0,
                 "conv1d: bad parameters t_in %lld c_in %lld c_out %lld k %d stride %d dilation %d pad %d/%d",
                 (long long)p->t_in, (long long)ci, (long long)co, p->k, p->stride, p->dilation, p->pad_left,
                 p->pad_right);
    const int64_t keff = (int64_t)(p->k - 1) * p->dilation + 1, tp = p->t_in + p->pad_left + p->pad_right;
    MUSAE_ASSERT(tp >= keff && p->t_out <= (tp - keff) / s + 1,
                 "conv1d: %lld output rows need more than the %lld padded input rows (k_eff %lld, stride %lld)",
                 (long long)p->t_out, (long long)tp, (long long)keff, (long long)s);
    MUSAE_ASSERT(!p->reflect || (p->pad_left < p->t_in && p->pad_right < p->t_in),
                 "conv1d: reflect padding %d/%d needs more than %lld input rows", p->pad_left, p->pad_right,
                 (long long)p->t_in);
    if (p->t_out == 0) return;
    MUSAE_ASSERT(out && x && w && out != x, "conv1d: NULL pointer or out aliasing x");
    const int block = 256;
    if (bias || !p->accumulate) {
        conv1d_init_kernel<<<grid_for(p->t_out * co, block), block, 0, stream>>>(out, bias, p->t_out * co, co,
                                                                                 p->accumulate);
        CUDA_LAUNCH_CHECK();
    }
    if (conv1d_direct(p)) {
        conv1d_direct_kernel<<<grid_for(p->t_out * co, block), block, 0, stream>>>(out, x, w, *p);
        CUDA_LAUNCH_CHECK();
        return;
    }
    MUSAE_ASSERT(scratch && scratch_bytes >= conv1d_scratch_bytes(p), "conv1d: scratch %zu bytes, need %zu",
                 scratch_bytes, conv1d_scratch_bytes(p));
    float *xp = (float *)scratch;
    conv1d_pad_kernel<<<grid_for(tp * ci, block), block, 0, stream>>>(xp, x, tp, p->t_in, ci, p->pad_left, p->reflect);
    CUDA_LAUNCH_CHECK();
    const int64_t k = p->k, d = p->dilation, g = d == 1 ? (s < k ? s : k) : 1; /* taps per GEMM (row length <= lda) */
    for (int64_t j0 = 0; j0 < k; j0 += g) {
        const int64_t nj = k - j0 < g ? k - j0 : g;
        matmul_lt(lt, CUDA_R_32F, 0, 1, p->t_out, co, nj * ci, 1.0f, xp + j0 * d * ci, s * ci, w + j0 * ci, k * ci,
                  1.0f, out, co, stream);
    }
}
