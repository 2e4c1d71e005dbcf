/* SAE loss on the GPU: the total variance (FVU denominator), and FVU + AuxK with their gradients, as
 * sae_cpu_total_variance / sae_cpu_loss_grad.
 *
 * Sums are in double and in a fixed order: a block per row reduces the row with a fixed tree, then one block
 * sums the row results (each thread a fixed stride of rows, then a tree). The gradients are elementwise with
 * the CPU's operations rounded one by one (__fsub_rn, __fmul_rn): bit-identical to the CPU. */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

constexpr int LOSS_THREADS = 256;
constexpr int FINAL_THREADS = 1024;

// Column sums of x over a chunk of rows: part[r][j] = Σ_{rows of chunk r} x[n][j] (double).
__global__ void loss_colsum_kernel(const float *x, int64_t N, int64_t d, int64_t rows_per, double *part) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    const int64_t r = blockIdx.y, n0 = r * rows_per, n1 = n0 + rows_per < N ? n0 + rows_per : N;
    double s = 0;
    for (int64_t n = n0; n < n1; n++) s += x[n * d + j];
    part[r * d + j] = s;
}

__global__ void loss_mean_kernel(const double *part, int64_t R, int64_t N, int64_t d, double *mean) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    double s = 0;
    for (int64_t r = 0; r < R; r++) s += part[r * d + j];
    mean[j] = s / (double)N;
}

__global__ void __launch_bounds__(LOSS_THREADS) loss_rowvar_kernel(const float *x, const double *mean, int64_t d,
                                                                   double *row) {
    __shared__ double red[33];
    const float *xr = x + (int64_t)blockIdx.x * d;
    double s = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        const double c = xr[j] - mean[j];
        s += c * c;
    }
    s = sae_block_sum(s, red);
    if (threadIdx.x == 0) row[blockIdx.x] = s;
}

// out[0] = Σ a[n] / *div (and out2[0] = Σ b[n] / *div when b), one block, fixed order.
__global__ void __launch_bounds__(FINAL_THREADS) loss_final_kernel(const double *a, const double *b, int64_t N,
                                                                    const double *div, double *out, double *out2) {
    __shared__ double red[33];
    double sa = 0, sb = 0;
    for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
        sa += a[n];
        if (b) sb += b[n];
    }
    sa = sae_block_sum(sa, red);
    if (b) sb = sae_block_sum(sb, red);
    if (threadIdx.x == 0) {
        const double q = div ? *div : 1.0;
        out[0] = sa / q;
        if (out2) out2[0] = b ? sb / q : 0.0;
    }
}

template <bool AUX>
__global__ void __launch_bounds__(LOSS_THREADS) loss_grad_row_kernel(const float *x, const float *xhat,
                                                                     const float *ehat, int64_t d, const double *tv,
                                                                     float aux_coef, float *g_xhat, float *g_ehat,
                                                                     uint16_t *gx16, uint16_t *ge16, double *row_l2,
                                                                     double *row_aux) {
    __shared__ double red[33];
    const double t = *tv;
    const float gscale = (float)(-2.0 / t), ascale = (float)(2.0 * (double)aux_coef / t);
    const int64_t o = (int64_t)blockIdx.x * d;
    double s = 0, a = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        const float e = __fsub_rn(x[o + j], xhat[o + j]);
        s += (double)e * (double)e; // exact product: contraction cannot change it
        const float g = __fmul_rn(gscale, e);
        g_xhat[o + j] = g;
        if (gx16) gx16[o + j] = musae_f32_to_bf16(g);
        if (AUX) {
            const float r = __fsub_rn(ehat[o + j], e);
            a += (double)r * (double)r;
            const float ga = __fmul_rn(ascale, r);
            g_ehat[o + j] = ga;
            if (ge16) ge16[o + j] = musae_f32_to_bf16(ga);
        }
    }
    s = sae_block_sum(s, red);
    if (AUX) a = sae_block_sum(a, red);
    if (threadIdx.x == 0) {
        row_l2[blockIdx.x] = s;
        if (AUX) row_aux[blockIdx.x] = a;
    }
}

struct TvLayout {
    double *part, *mean, *row;
    int64_t rows_per, R;
    size_t bytes;
};

TvLayout tv_layout(void *base, int64_t N, int64_t d) {
    TvLayout l;
    l.rows_per = N > 1024 * 64 ? CEIL_DIV(N, 1024) : 64;
    l.R = CEIL_DIV(N, l.rows_per);
    sae_carver c = {(char *)base, 0};
    l.part = SAE_CARVE(&c, double, l.R * d);
    l.mean = SAE_CARVE(&c, double, d);
    l.row = SAE_CARVE(&c, double, N);
    l.bytes = c.used;
    return l;
}

}  // namespace

size_t sae_cuda_total_variance_scratch_bytes(int64_t N, int64_t d) { return tv_layout(nullptr, N, d).bytes; }

void sae_cuda_total_variance(const float *x, int64_t N, int64_t d, double *tv, void *scratch, cudaStream_t stream) {
    MUSAE_ASSERT(N >= 1 && d >= 1 && N < INT32_MAX, "N %lld d %lld", (long long)N, (long long)d);
    MUSAE_ASSERT(scratch, "total variance needs scratch");
    const TvLayout l = tv_layout(scratch, N, d);
    const dim3 g((unsigned)CEIL_DIV(d, 256), (unsigned)l.R);
    loss_colsum_kernel<<<g, 256, 0, stream>>>(x, N, d, l.rows_per, l.part);
    CUDA_LAUNCH_CHECK();
    loss_mean_kernel<<<(unsigned)CEIL_DIV(d, 256), 256, 0, stream>>>(l.part, l.R, N, d, l.mean);
    CUDA_LAUNCH_CHECK();
    loss_rowvar_kernel<<<(unsigned)N, LOSS_THREADS, 0, stream>>>(x, l.mean, d, l.row);
    CUDA_LAUNCH_CHECK();
    loss_final_kernel<<<1, FINAL_THREADS, 0, stream>>>(l.row, nullptr, N, nullptr, tv, nullptr);
    CUDA_LAUNCH_CHECK();
}

size_t sae_cuda_loss_grad_scratch_bytes(int64_t N) {
    sae_carver c = {nullptr, 0};
    SAE_CARVE(&c, double, N);
    SAE_CARVE(&c, double, N);
    return c.used;
}

void sae_cuda_loss_grad(const float *x, const float *xhat, const float *ehat, int64_t N, int64_t d, const double *tv,
                        float aux_coef, float *g_xhat, float *g_ehat, uint16_t *g_xhat_bf16, uint16_t *g_ehat_bf16,
                        double *fvu, double *aux, void *scratch, cudaStream_t stream) {
    MUSAE_ASSERT(N >= 1 && d >= 1 && N < INT32_MAX, "N %lld d %lld", (long long)N, (long long)d);
    MUSAE_ASSERT(!ehat || g_ehat, "ehat without g_ehat");
    MUSAE_ASSERT(scratch && fvu, "loss needs scratch and an fvu output");
    sae_carver c = {(char *)scratch, 0};
    double *row = SAE_CARVE(&c, double, N), *arow = SAE_CARVE(&c, double, N);
    if (ehat)
        loss_grad_row_kernel<true><<<(unsigned)N, LOSS_THREADS, 0, stream>>>(x, xhat, ehat, d, tv, aux_coef, g_xhat, g_ehat,
                                                                             g_xhat_bf16, g_ehat_bf16, row, arow);
    else
        loss_grad_row_kernel<false><<<(unsigned)N, LOSS_THREADS, 0, stream>>>(x, xhat, nullptr, d, tv, aux_coef, g_xhat,
                                                                              nullptr, g_xhat_bf16, nullptr, row, arow);
    CUDA_LAUNCH_CHECK();
    loss_final_kernel<<<1, FINAL_THREADS, 0, stream>>>(row, ehat ? arow : nullptr, N, tv, fvu, aux);
    CUDA_LAUNCH_CHECK();
}
