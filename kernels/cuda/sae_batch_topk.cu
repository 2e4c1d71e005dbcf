/* Batch-top-k on the GPU: the `total` largest positive entries of pre [N, M] as CSR, as sae_cpu_batch_topk.
 *
 * The threshold is found by a radix select on the float bits (positive floats order like their bits) in
 * three digits of 11, 11 and 10 bits: each digit is one pass over pre with a shared-memory histogram per
 * block added into a global one (integer atomics: the counts, and so the result, do not depend on timing),
 * then a one-block kernel picks the digit. All state stays on the device: no host synchronisation.
 * Entries above the threshold are all taken; entries equal to it are taken in row-major order until the
 * count is exactly `total` (a row takes clamp(take_equal − equal entries in earlier rows, 0, its own)).
 * Rows are then filled in latent order by an ordered block scan. */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

constexpr int BT_BINS = 2048;        // 11-bit digits
constexpr int BT_THREADS = 256;
constexpr int BT_ITEMS = 8;          // consecutive entries per thread in the row kernels

enum { BT_NONE = 0, BT_ALL = 1, BT_SELECT = 2 };

struct BtState {
    unsigned long long hist[BT_BINS];
    uint32_t prefix, mask;  // selected high bits so far
    int mode;               // BT_NONE: total == 0; BT_ALL: every positive entry; BT_SELECT: threshold below
    int64_t need;           // entries still to take at or below the current prefix
    uint32_t thr;           // BT_SELECT: the threshold's bits
    int64_t take_equal;     // entries equal to thr to take
    uint32_t min_bits;      // BT_ALL: the smallest positive value's bits
};

// digit d covers bits [shift, shift + width)
__host__ __device__ constexpr int bt_shift(int d) { return d == 0 ? 21 : d == 1 ? 10 : 0; }
__host__ __device__ constexpr int bt_width(int d) { return d == 2 ? 10 : 11; }

__global__ void batch_topk_init_kernel(BtState *st) {
    for (int i = threadIdx.x; i < BT_BINS; i += blockDim.x) st->hist[i] = 0;
    if (threadIdx.x == 0) {
        st->prefix = st->mask = 0;
        st->mode = BT_SELECT;
        st->need = 0;
        st->thr = 0;
        st->take_equal = 0;
        st->min_bits = 0xffffffffu;
    }
}

__global__ void __launch_bounds__(BT_THREADS) batch_topk_hist_kernel(const float *pre, int64_t n, int digit, BtState *st) {
    __shared__ unsigned int h[BT_BINS];
    if (st->mode != BT_SELECT) return; // uniform: decided by the previous pick
    const uint32_t prefix = st->prefix, mask = st->mask;
    const int shift = bt_shift(digit), bins = 1 << bt_width(digit);
    for (int i = threadIdx.x; i < bins; i += blockDim.x) h[i] = 0;
    __syncthreads();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = pre[i];
        if (!(v > 0.0f)) continue;
        const uint32_t b = __float_as_uint(v);
        if ((b & mask) == prefix) atomicAdd(&h[(b >> shift) & (uint32_t)(bins - 1)], 1u);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < bins; i += blockDim.x)
        if (h[i]) atomicAdd(&st->hist[i], (unsigned long long)h[i]);
}

// One warp: the bin (from the top) holding the need-th entry; updates prefix/need and clears the histogram.
__global__ void batch_topk_pick_kernel(BtState *st, int digit, int64_t total) {
    const int lane = threadIdx.x;
    const int bins = 1 << bt_width(digit), per = bins / 32, shift = bt_shift(digit);
    if (digit == 0) { // decide the mode from the count of positive entries
        unsigned long long s = 0;
        for (int i = lane; i < bins; i += 32) s += st->hist[i];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) {
            st->mode = total == 0 ? BT_NONE : (int64_t)s <= total ? BT_ALL : BT_SELECT;
            st->need = total;
        }
        __syncwarp();
    }
    if (st->mode == BT_SELECT) {
        const int top = bins - 1 - per * lane; // lane l: bins top .. top - per + 1
        unsigned long long s = 0;
        for (int j = 0; j < per; j++) s += st->hist[top - j];
        unsigned long long incl = s;
        for (int o = 1; o < 32; o <<= 1) {
            unsigned long long t = __shfl_up_sync(0xffffffffu, incl, o);
            if (lane >= o) incl += t;
        }
        const int64_t need = st->need;
        const unsigned ball = __ballot_sync(0xffffffffu, (int64_t)incl >= need);
        if (lane == __ffs(ball) - 1) {
            unsigned long long acc = incl - s;
            for (int j = 0; j < per; j++) {
                const unsigned long long h = st->hist[top - j];
                if ((int64_t)(acc + h) >= need) {
                    st->prefix |= (uint32_t)(top - j) << shift;
                    st->mask |= (uint32_t)(bins - 1) << shift;
                    st->need = need - (int64_t)acc;
                    if (digit == 2) {
                        st->thr = st->prefix;
                        st->take_equal = st->need;
                    }
                    break;
                }
                acc += h;
            }
        }
        __syncwarp();
    }
    for (int i = lane; i < BT_BINS; i += 32) st->hist[i] = 0;
}

__device__ __forceinline__ bool bt_above(uint32_t b, int mode, uint32_t thr) {
    return mode == BT_ALL || (mode == BT_SELECT && b > thr);
}

// Per row: entries above the threshold and equal to it (and, taking everything, the smallest value).
__global__ void __launch_bounds__(BT_THREADS) batch_topk_count_kernel(const float *pre, int64_t M, BtState *st,
                                                                      int64_t *row_gt, int64_t *row_eq) {
    __shared__ int64_t red[33];
    const int mode = st->mode;
    const uint32_t thr = st->thr;
    const float *r = pre + (int64_t)blockIdx.x * M;
    int64_t gt = 0, eq = 0;
    uint32_t mn = 0xffffffffu;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
        const float v = r[j];
        if (!(v > 0.0f)) continue;
        const uint32_t b = __float_as_uint(v);
        if (bt_above(b, mode, thr)) {
            gt++;
            mn = b < mn ? b : mn;
        } else if (mode == BT_SELECT && b == thr) {
            eq++;
        }
    }
    gt = sae_block_sum(gt, red);
    eq = sae_block_sum(eq, red);
    if (mode == BT_ALL && mn != 0xffffffffu) atomicMin(&st->min_bits, mn); // min is exact in any order
    if (threadIdx.x == 0) {
        row_gt[blockIdx.x] = gt;
        row_eq[blockIdx.x] = eq;
    }
}

// take[n] = clamp(take_equal − eq_before[n], 0, row_eq[n]); cnt[n] = row_gt[n] + take[n].
__global__ void batch_topk_take_kernel(const BtState *st, int64_t N, const int64_t *row_gt, const int64_t *row_eq,
                                       const int64_t *eq_before, int64_t *take, int64_t *cnt) {
    const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    int64_t t = st->take_equal - eq_before[n];
    t = t < 0 ? 0 : t > row_eq[n] ? row_eq[n] : t;
    take[n] = t;
    cnt[n] = row_gt[n] + t;
}

// Row fill in latent order: each thread owns BT_ITEMS consecutive entries of a 2048-wide slab; two ordered
// block scans give each equal entry its rank in the row and each selected entry its output position.
__global__ void __launch_bounds__(BT_THREADS) batch_topk_fill_kernel(const float *pre, int64_t M, const BtState *st,
                                                                     const int64_t *take, const int64_t *ptr,
                                                                     int32_t *idx, float *val) {
    typedef cub::BlockScan<int, BT_THREADS> Scan;
    __shared__ typename Scan::TempStorage ts;
    const int mode = st->mode;
    const uint32_t thr = st->thr;
    const int64_t n = blockIdx.x;
    const float *r = pre + n * M;
    const int64_t my_take = take[n];
    int64_t out = ptr[n], eq_seen = 0;
    for (int64_t s0 = 0; s0 < M; s0 += (int64_t)BT_THREADS * BT_ITEMS) {
        float v[BT_ITEMS];
        int eqf = 0;
        const int64_t j0 = s0 + (int64_t)threadIdx.x * BT_ITEMS;
#pragma unroll
        for (int u = 0; u < BT_ITEMS; u++) {
            v[u] = j0 + u < M ? r[j0 + u] : 0.0f;
            eqf += v[u] > 0.0f && mode == BT_SELECT && __float_as_uint(v[u]) == thr;
        }
        int eq_pre, eq_tot;
        Scan(ts).ExclusiveSum(eqf, eq_pre, eq_tot);
        __syncthreads(); // ts is reused by the next scan
        int rank = (int)(eq_seen + eq_pre), self = 0;
        bool sel[BT_ITEMS];
#pragma unroll
        for (int u = 0; u < BT_ITEMS; u++) {
            const bool pos = v[u] > 0.0f;
            const uint32_t b = __float_as_uint(v[u]);
            bool s = pos && bt_above(b, mode, thr);
            if (pos && mode == BT_SELECT && b == thr) s = rank++ < my_take;
            sel[u] = s;
            self += s;
        }
        int sel_pre, sel_tot;
        Scan(ts).ExclusiveSum(self, sel_pre, sel_tot);
        __syncthreads();
        int64_t at = out + sel_pre;
#pragma unroll
        for (int u = 0; u < BT_ITEMS; u++)
            if (sel[u]) {
                idx[at] = (int32_t)(j0 + u);
                val[at++] = v[u];
            }
        out += sel_tot;
        eq_seen += eq_tot;
    }
}

__global__ void batch_topk_min_kernel(const BtState *st, float *min_sel) {
    float m = 0.0f;
    if (st->mode == BT_SELECT) m = __uint_as_float(st->thr); // take_equal >= 1: one selected entry equals thr
    else if (st->mode == BT_ALL && st->min_bits != 0xffffffffu) m = __uint_as_float(st->min_bits);
    *min_sel = m;
}

struct BtLayout {
    BtState *st;
    int64_t *row_gt, *row_eq, *eq_before, *take, *cnt;
    void *cub;
    size_t cub_bytes;
    size_t bytes;
};

BtLayout bt_layout(void *base, int64_t N) {
    sae_carver c = {(char *)base, 0};
    BtLayout l;
    l.st = SAE_CARVE(&c, BtState, 1);
    l.row_gt = SAE_CARVE(&c, int64_t, N + 1);
    l.row_eq = SAE_CARVE(&c, int64_t, N + 1);
    l.eq_before = SAE_CARVE(&c, int64_t, N + 1);
    l.take = SAE_CARVE(&c, int64_t, N + 1);
    l.cnt = SAE_CARVE(&c, int64_t, N + 1);
    size_t a = 0, b = 0;
    CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, a, (const int64_t *)nullptr, (int64_t *)nullptr, (int)(N + 1)));
    CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, b, (const int64_t *)nullptr, (int64_t *)nullptr, (int)(N + 1)));
    l.cub_bytes = a > b ? a : b;
    l.cub = sae_carve(&c, l.cub_bytes);
    l.bytes = c.used;
    return l;
}

}  // namespace

size_t sae_cuda_batch_topk_scratch_bytes(int64_t N, int64_t M) { return bt_layout(nullptr, N).bytes; }

void sae_cuda_batch_topk(const float *pre, int64_t N, int64_t M, int64_t total, sae_codes *codes, float *min_sel,
                         void *scratch, cudaStream_t stream) {
    MUSAE_ASSERT(N >= 1 && M >= 1 && N < INT32_MAX && M < INT32_MAX, "N %lld M %lld", (long long)N, (long long)M);
    MUSAE_ASSERT(total >= 0 && codes->cap >= total, "codes hold %lld entries, need %lld", (long long)codes->cap,
                 (long long)total);
    MUSAE_ASSERT(scratch, "batch-top-k needs scratch");
    const BtLayout l = bt_layout(scratch, N);
    const int64_t n = N * M;
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    int64_t blocks = CEIL_DIV(n, BT_THREADS);
    if (blocks > (int64_t)sms * 8) blocks = (int64_t)sms * 8;

    batch_topk_init_kernel<<<1, 256, 0, stream>>>(l.st);
    CUDA_LAUNCH_CHECK();
    for (int d = 0; d < 3; d++) {
        batch_topk_hist_kernel<<<(unsigned)blocks, BT_THREADS, 0, stream>>>(pre, n, d, l.st);
        CUDA_LAUNCH_CHECK();
        batch_topk_pick_kernel<<<1, 32, 0, stream>>>(l.st, d, total);
        CUDA_LAUNCH_CHECK();
    }
    batch_topk_count_kernel<<<(unsigned)N, BT_THREADS, 0, stream>>>(pre, M, l.st, l.row_gt, l.row_eq);
    CUDA_LAUNCH_CHECK();
    size_t b = l.cub_bytes;
    CUDA_CHECK(cub::DeviceScan::ExclusiveSum(l.cub, b, l.row_eq, l.eq_before, (int)N, stream));
    batch_topk_take_kernel<<<(unsigned)CEIL_DIV(N, 256), 256, 0, stream>>>(l.st, N, l.row_gt, l.row_eq, l.eq_before,
                                                                          l.take, l.cnt);
    CUDA_LAUNCH_CHECK();
    codes->n_rows = N;
    CUDA_CHECK(cudaMemsetAsync(codes->ptr, 0, sizeof(int64_t), stream));
    b = l.cub_bytes;
    CUDA_CHECK(cub::DeviceScan::InclusiveSum(l.cub, b, l.cnt, codes->ptr + 1, (int)N, stream));
    batch_topk_fill_kernel<<<(unsigned)N, BT_THREADS, 0, stream>>>(pre, M, l.st, l.take, codes->ptr, codes->idx,
                                                                   codes->val);
    CUDA_LAUNCH_CHECK();
    if (min_sel) {
        batch_topk_min_kernel<<<1, 1, 0, stream>>>(l.st, min_sel);
        CUDA_LAUNCH_CHECK();
    }
}
