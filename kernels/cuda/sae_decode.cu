/* SAE sparse decoder on the GPU: out[n] = Σ val·W_dec[idx] (+ b_dec), as sae_cpu_decode.
 *
 * One block per token row; thread t owns the 8 columns [8t, 8t+8) (and 8·(t + blockDim) onwards when d > 2048),
 * so each gathered decoder row is read as one coalesced 16-byte (bf16) or 32-byte (fp32) vector per thread.
 * Entries are taken four at a time (indices and values first, then the four row vectors, then the sums), so
 * four gathers are in flight per thread. The sum runs in CSR order with separately rounded multiply and add
 * (__fmul_rn / __fadd_rn), the CPU's arithmetic: with fp32 weights the result is bit-identical to it. */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

constexpr int DEC_UNROLL = 4;

template <typename T, int NV, bool AL>
__global__ void __launch_bounds__(512) decode_rows_kernel(const int64_t *ptr, const int32_t *idx, const float *val,
                                                          const T *W, const float *b_dec, int64_t d, float *out) {
    const int64_t n = blockIdx.x;
    const int64_t e0 = ptr[n], e1 = ptr[n + 1];
    float acc[NV][8];
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int64_t c = ((int64_t)threadIdx.x + (int64_t)v * blockDim.x) * 8;
#pragma unroll
        for (int j = 0; j < 8; j++) acc[v][j] = b_dec && c + j < d ? b_dec[c + j] : 0.0f;
    }
    for (int64_t e = e0; e < e1; e += DEC_UNROLL) {
        const int cnt = e1 - e < DEC_UNROLL ? (int)(e1 - e) : DEC_UNROLL;
        int32_t ii[DEC_UNROLL];
        float aa[DEC_UNROLL];
#pragma unroll
        for (int u = 0; u < DEC_UNROLL; u++) {
            ii[u] = u < cnt ? __ldg(idx + e + u) : 0;
            aa[u] = u < cnt ? __ldg(val + e + u) : 0.0f;
        }
        float w[DEC_UNROLL][NV][8];
#pragma unroll
        for (int u = 0; u < DEC_UNROLL; u++)
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int64_t c = ((int64_t)threadIdx.x + (int64_t)v * blockDim.x) * 8;
                if (u < cnt && c < d) sae_load8<AL>(W + (int64_t)ii[u] * d + c, d - c, w[u][v]);
            }
#pragma unroll
        for (int u = 0; u < DEC_UNROLL; u++)
            if (u < cnt)
#pragma unroll
                for (int v = 0; v < NV; v++)
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[v][j] = __fadd_rn(acc[v][j], __fmul_rn(aa[u], w[u][v][j]));
    }
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int64_t c = ((int64_t)threadIdx.x + (int64_t)v * blockDim.x) * 8;
        float *o = out + n * d + c;
        if (AL && c < d) { // d % 8 == 0: the whole vector is in range
            reinterpret_cast<float4 *>(o)[0] = make_float4(acc[v][0], acc[v][1], acc[v][2], acc[v][3]);
            reinterpret_cast<float4 *>(o)[1] = make_float4(acc[v][4], acc[v][5], acc[v][6], acc[v][7]);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++)
                if (c + j < d) o[j] = acc[v][j];
        }
    }
}

template <typename T>
void decode_launch(const sae_codes *c, const T *W, const float *b_dec, int64_t d, float *out, cudaStream_t stream) {
    const sae_row_shape s = sae_row_shape_for(d);
    const bool al = d % 8 == 0 && sae_aligned16(W) && sae_aligned16(out);
    const unsigned grid = (unsigned)c->n_rows;
#define DEC_GO(NV, AL) \
    decode_rows_kernel<T, NV, AL><<<grid, s.threads, 0, stream>>>(c->ptr, c->idx, c->val, W, b_dec, d, out)
    if (s.nv == 1) {
        if (al) DEC_GO(1, true);
        else DEC_GO(1, false);
    } else {
        if (al) DEC_GO(2, true);
        else DEC_GO(2, false);
    }
#undef DEC_GO
    CUDA_LAUNCH_CHECK();
}

}  // namespace

void sae_cuda_decode(const sae_codes *codes, musae_dtype w_t, const void *W_dec, const float *b_dec, int64_t d,
                     float *out, cudaStream_t stream) {
    MUSAE_ASSERT(w_t == MUSAE_F32 || w_t == MUSAE_BF16, "decoder weight dtype %s", musae_dtype_name(w_t));
    MUSAE_ASSERT(codes->n_rows >= 0 && codes->n_rows < INT32_MAX, "rows %lld", (long long)codes->n_rows);
    if (codes->n_rows == 0) return;
    if (w_t == MUSAE_F32) decode_launch(codes, (const float *)W_dec, b_dec, d, out, stream);
    else decode_launch(codes, (const uint16_t *)W_dec, b_dec, d, out, stream);
}
