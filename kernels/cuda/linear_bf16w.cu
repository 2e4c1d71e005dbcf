/* bf16-weight linear layer: GEMV for decode-sized m, cuBLASLt bf16 GEMM otherwise.
 *
 * GEMV: one warp per output column n streams weight row w[n, :] (k bf16) with 16-byte loads, 8 weights per
 * lane per step, and multiplies it into all m (<= 8) rows of x at once, so each weight byte crosses HBM
 * exactly once per call: at decode batch sizes the layer is bound by the weight bytes, and this is the kernel
 * that has to run near the HBM roofline. x (m·k fp32, at most 8 rows) is re-read by every warp but stays in
 * L1/L2. Epilogue in the CPU's order: v = x·wᵀ; v += beta·y (beta != 0 only: y may be uninitialized); v +=
 * bias. */
#include "host/core/dtype.h"
#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/linear_bf16w.cuh"

static const int k_block = 256; /* 8 warps, one output column each per iteration */

// ---- CUDA kernels
// Two bf16 packed in a 32-bit word, element 0 in the low half (little endian); bf16 -> f32 is a shift.
static __device__ __forceinline__ float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
static __device__ __forceinline__ float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

// MT: compile-time row capacity (1, 2, 4 or 8), m <= MT rows are live. VEC: 16-byte path (k % 8 == 0 and
// w, x 16-byte aligned, so every row start is aligned too).
template <int MT, bool VEC>
static __global__ void __launch_bounds__(256)
    linear_bf16w_gemv_kernel(float *__restrict__ y, const float *__restrict__ x, const uint16_t *__restrict__ w,
                             const float *__restrict__ bias, int m, int64_t n, int64_t k, float beta) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int64_t warps = (int64_t)gridDim.x * (k_block / WARP_SIZE);
    for (int64_t col = (int64_t)blockIdx.x * (k_block / WARP_SIZE) + threadIdx.x / WARP_SIZE; col < n; col += warps) {
        const uint16_t *wr = w + col * k;
        float acc[MT];
#pragma unroll
        for (int r = 0; r < MT; r++) acc[r] = 0.0f;
        if (VEC) {
#pragma unroll 4
            for (int64_t kk = (int64_t)lane * 8; kk < k; kk += WARP_SIZE * 8) {
                const uint4 wv = *reinterpret_cast<const uint4 *>(wr + kk);
                const float wf[8] = {bf16_lo(wv.x), bf16_hi(wv.x), bf16_lo(wv.y), bf16_hi(wv.y),
                                     bf16_lo(wv.z), bf16_hi(wv.z), bf16_lo(wv.w), bf16_hi(wv.w)};
#pragma unroll
                for (int r = 0; r < MT; r++) {
                    if (r < m) {
                        const float4 x0 = *reinterpret_cast<const float4 *>(x + r * k + kk);
                        const float4 x1 = *reinterpret_cast<const float4 *>(x + r * k + kk + 4);
                        float a = acc[r];
                        a = fmaf(x0.x, wf[0], a), a = fmaf(x0.y, wf[1], a), a = fmaf(x0.z, wf[2], a);
                        a = fmaf(x0.w, wf[3], a), a = fmaf(x1.x, wf[4], a), a = fmaf(x1.y, wf[5], a);
                        a = fmaf(x1.z, wf[6], a), a = fmaf(x1.w, wf[7], a);
                        acc[r] = a;
                    }
                }
            }
        } else {
            for (int64_t kk = lane; kk < k; kk += WARP_SIZE) {
                const float wf = __uint_as_float((uint32_t)wr[kk] << 16);
#pragma unroll
                for (int r = 0; r < MT; r++)
                    if (r < m) acc[r] = fmaf(x[r * k + kk], wf, acc[r]);
            }
        }
#pragma unroll
        for (int r = 0; r < MT; r++) acc[r] = warp_sum(acc[r]);
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < MT; r++) {
                if (r < m) {
                    float v = acc[r];
                    if (beta != 0.0f) v = v + beta * y[r * n + col];
                    if (bias) v = v + bias[col];
                    y[r * n + col] = v;
                }
            }
        }
    }
}

// ---- kernel launchers
template <int MT>
static void gemv_launch(float *y, const float *x, const uint16_t *w, const float *bias, int64_t m, int64_t n,
                        int64_t k, float beta, cudaStream_t stream) {
    const unsigned grid = grid_for(n, k_block / WARP_SIZE);
    if (k % 8 == 0 && is_aligned16(x) && is_aligned16(w)) {
        linear_bf16w_gemv_kernel<MT, true><<<grid, k_block, 0, stream>>>(y, x, w, bias, (int)m, n, k, beta);
    } else {
        linear_bf16w_gemv_kernel<MT, false><<<grid, k_block, 0, stream>>>(y, x, w, bias, (int)m, n, k, beta);
    }
    CUDA_LAUNCH_CHECK();
}

size_t linear_bf16w_scratch_bytes(int64_t m, int64_t k) {
    return m <= LINEAR_BF16W_GEMV_MAX_M ? 0 : (size_t)(m * k) * sizeof(uint16_t);
}

void linear_bf16w_cuda(musae_lt *lt, float *y, const float *x, const uint16_t *w, const float *bias, int64_t m,
                       int64_t n, int64_t k, float beta, void *scratch, size_t scratch_bytes, cudaStream_t stream) {
    MUSAE_ASSERT(m >= 0 && n >= 0 && k >= 0, "linear_bf16w dims %lld x %lld x %lld", (long long)m, (long long)n,
                 (long long)k);
    if (m == 0 || n == 0) return;
    MUSAE_ASSERT(y && x && w, "linear_bf16w: NULL pointer");
    if (m <= LINEAR_BF16W_GEMV_MAX_M) {
        if (m == 1) gemv_launch<1>(y, x, w, bias, m, n, k, beta, stream);
        else if (m == 2) gemv_launch<2>(y, x, w, bias, m, n, k, beta, stream);
        else if (m <= 4) gemv_launch<4>(y, x, w, bias, m, n, k, beta, stream);
        else gemv_launch<8>(y, x, w, bias, m, n, k, beta, stream);
        return;
    }
    const size_t need = linear_bf16w_scratch_bytes(m, k);
    MUSAE_ASSERT(scratch && scratch_bytes >= need, "linear_bf16w: scratch %zu bytes, need %zu", scratch_bytes, need);
    uint16_t *xb = (uint16_t *)scratch;
    f32_to_bf16_cuda(xb, x, m * k, stream);
    matmul_lt(lt, CUDA_R_16BF, 0, 1, m, n, k, 1.0f, xb, k, w, k, beta, y, n, stream);
    if (bias) add_rows_cuda(y, bias, 1.0f, m, n, stream);
}
