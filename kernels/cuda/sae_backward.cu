/* SAE sparse backward on the GPU, as sae_cpu_backward: O(N·(k + k_aux)·d) work, deterministic, no atomics in
 * the result path.
 *
 *  1. keys: every entry slot of codes and aux gets its latent as the key (unused slots past ptr[N] get M, which
 *     sorts last), its slot number as the value, and its token row (binary search in ptr).
 *  2. a stable CUB radix sort by latent (only the bits that M needs): entries of a latent end up contiguous,
 *     main entries by token, then aux entries by token — the CPU's order.
 *  3. segments: latent i owns sorted entries [seg[i], seg[i+1]) (binary search); it is cut into
 *     nch = max(1, ⌈count/chunk⌉) work items, and latents with nch > 1 get nch partial slots (two scans).
 *  4. one block per work item: the latent's decoder row is staged in shared memory; entries are taken a warp
 *     each (a warp computes dz = <g[n], W_dec[i]> with a fixed tree), then every thread adds a·g[n] and
 *     dz·xc[n] into the 8 or 16 columns it owns, in entry order. A single-chunk latent writes dW_dec[i],
 *     dW_enc[i], db_enc[i] (zeros when it has no entry); a multi-chunk latent writes partial rows that
 *  5. a second kernel sums in chunk order.
 *  6. db_dec = Σ_n g_xhat[n] − Σ_i db_enc[i]·W_enc[i]: partial column sums over fixed chunks of rows and of
 *     latents (rows with db_enc = 0 skipped, as the CPU), then one pass adds the partials in order.
 * The gathered rows of g and xc (2 per entry) dominate the traffic; act_t = bf16 halves it. */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

constexpr int BWD_META = 16;           // entries per step (warps of the largest block)
constexpr int BWD_CHUNK_MIN = 256;     // entries per work item
constexpr size_t BWD_PARTIAL_BUDGET = (size_t)256 << 20;  // partial-row slots, at most this many bytes

// ---- 1-3: keys, sort, segments ---------------------------------------------------------------------------------
__device__ __forceinline__ int64_t row_of(const int64_t *ptr, int64_t N, int64_t e) { // largest n with ptr[n] <= e
    int64_t lo = 0, hi = N - 1;
    while (lo < hi) {
        const int64_t mid = (lo + hi + 1) >> 1;
        if (ptr[mid] <= e) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

__global__ void backward_keys_kernel(const int64_t *ptr_m, const int32_t *idx_m, int64_t cap_m, const int64_t *ptr_a,
                                     const int32_t *idx_a, int64_t cap_a, int64_t N, int32_t M, int32_t *keys,
                                     int32_t *ids, int32_t *rowof) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= cap_m + cap_a) return;
    const bool is_aux = e >= cap_m;
    const int64_t le = is_aux ? e - cap_m : e;
    const int64_t *ptr = is_aux ? ptr_a : ptr_m;
    int32_t key = M, row = 0;
    if (le < ptr[N]) {
        key = (is_aux ? idx_a : idx_m)[le];
        row = (int32_t)row_of(ptr, N, le);
    }
    keys[e] = key;
    ids[e] = (int32_t)e;
    rowof[e] = row;
}

__device__ __forceinline__ int32_t lower_bound_i32(const int32_t *a, int32_t n, int32_t x) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        const int32_t mid = (lo + hi) >> 1;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// i in [0, M]: seg[i]; for i < M the latent's item count and partial-slot count (0 for single-chunk latents).
__global__ void backward_segments_kernel(const int32_t *sorted_keys, int32_t E, int32_t M, int32_t chunk, int32_t *seg,
                                         int32_t *items, int32_t *slots) {
    const int32_t i = (int32_t)((int64_t)blockIdx.x * blockDim.x + threadIdx.x);
    if (i > M) return;
    const int32_t s = lower_bound_i32(sorted_keys, E, i);
    seg[i] = s;
    if (i == M) {
        items[M] = 0;
        slots[M] = 0;
        return;
    }
    const int32_t cnt = lower_bound_i32(sorted_keys, E, i + 1) - s;
    const int32_t nch = cnt <= chunk ? 1 : (cnt + chunk - 1) / chunk;
    items[i] = nch;
    slots[i] = nch > 1 ? nch : 0;
}

// ---- 4: one work item (latent, chunk) per block ----------------------------------------------------------------
struct BwdArgs {
    const int32_t *ids, *rowof;       // sorted slot numbers; row of each slot
    const float *val_m, *val_a;
    int64_t cap_m;
    const int32_t *seg, *item_start, *slot_start;
    int32_t M, chunk;
    const float *W_dec;
    int64_t d;
    float *dW_dec, *dW_enc, *db_enc;
    float *part_dwd, *part_dwe, *part_db;
};

template <typename T, int NV, bool AL>
__global__ void __launch_bounds__(512) backward_latent_kernel(BwdArgs a, const T *g_xhat, const T *g_ehat, const T *xc) {
    extern __shared__ __align__(16) float bw_w[]; // W_dec[i], d floats
    __shared__ int32_t s_row[BWD_META];
    __shared__ int32_t s_aux[BWD_META];
    __shared__ float s_a[BWD_META], s_dz[BWD_META];
    const int32_t b = (int32_t)blockIdx.x;
    if (b >= a.item_start[a.M]) return; // the grid is an upper bound on the item count (uniform exit)
    int32_t lo = 0, hi = a.M - 1;       // latent: the largest i with item_start[i] <= b
    while (lo < hi) {
        const int32_t mid = (lo + hi + 1) >> 1;
        if (a.item_start[mid] <= b) lo = mid;
        else hi = mid - 1;
    }
    const int32_t i = lo, chunk_no = b - a.item_start[i];
    const int32_t nch = a.item_start[i + 1] - a.item_start[i];
    const int32_t s0 = a.seg[i] + chunk_no * a.chunk, s1 = min(s0 + a.chunk, a.seg[i + 1]);
    const int64_t d = a.d;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;

    if (s1 > s0)
        for (int64_t c = threadIdx.x; c < d; c += blockDim.x) bw_w[c] = a.W_dec[(int64_t)i * d + c];
    __syncthreads();

    float acc_d[NV][8], acc_e[NV][8];
#pragma unroll
    for (int v = 0; v < NV; v++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc_d[v][j] = acc_e[v][j] = 0.0f;
    float db = 0.0f;

    for (int32_t p0 = s0; p0 < s1; p0 += nwarps) {
        const int nb = s1 - p0 < nwarps ? s1 - p0 : nwarps;
        if (warp < nb) { // dz for entry p0 + warp
            const int32_t id = a.ids[p0 + warp];
            const int32_t row = a.rowof[id];
            const bool aux = id >= a.cap_m;
            const T *g = (aux ? g_ehat : g_xhat) + (int64_t)row * d;
            float part = 0.0f;
            for (int64_t c = (int64_t)lane * 8; c < d; c += 256) {
                float gv[8];
                sae_load8<AL>(g + c, d - c, gv);
#pragma unroll
                for (int j = 0; j < 8; j++)
                    if (AL || c + j < d) part += gv[j] * bw_w[c + j];
            }
            part = sae_warp_sum(part);
            if (lane == 0) {
                s_row[warp] = row;
                s_aux[warp] = aux;
                s_a[warp] = aux ? a.val_a[id - a.cap_m] : a.val_m[id];
                s_dz[warp] = part;
            }
        }
        __syncthreads();
#pragma unroll 2
        for (int q = 0; q < nb; q++) { // accumulate in entry order
            const int64_t row = s_row[q];
            const float av = s_a[q], dz = s_dz[q];
            const T *g = (s_aux[q] ? g_ehat : g_xhat) + row * d, *x = xc + row * d;
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int64_t c = ((int64_t)threadIdx.x + (int64_t)v * blockDim.x) * 8;
                if (c < d) {
                    float gv[8], xv[8];
                    sae_load8<AL>(g + c, d - c, gv);
                    sae_load8<AL>(x + c, d - c, xv);
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        acc_d[v][j] += av * gv[j];
                        acc_e[v][j] += dz * xv[j];
                    }
                }
            }
            db += dz;
        }
        __syncthreads(); // the meta arrays are rewritten by the next step
    }

    float *od, *oe, *ob;
    if (nch == 1) {
        od = a.dW_dec + (int64_t)i * d, oe = a.dW_enc + (int64_t)i * d, ob = a.db_enc + i;
    } else {
        const int64_t slot = (int64_t)a.slot_start[i] + chunk_no;
        od = a.part_dwd + slot * d, oe = a.part_dwe + slot * d, ob = a.part_db + slot;
    }
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int64_t c = ((int64_t)threadIdx.x + (int64_t)v * blockDim.x) * 8;
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (c + j < d) {
                od[c + j] = acc_d[v][j];
                oe[c + j] = acc_e[v][j];
            }
    }
    if (threadIdx.x == 0) *ob = db;
}

// ---- 5: multi-chunk latents: sum the partial rows in chunk order -----------------------------------------------
__global__ void backward_reduce_kernel(const int32_t *item_start, const int32_t *slot_start, int64_t d,
                                       const float *part_dwd, const float *part_dwe, const float *part_db,
                                       float *dW_dec, float *dW_enc, float *db_enc) {
    const int32_t i = blockIdx.x;
    const int32_t nch = item_start[i + 1] - item_start[i];
    if (nch <= 1) return;
    const int64_t s0 = slot_start[i];
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        float sd = 0.0f, se = 0.0f;
        for (int32_t t = 0; t < nch; t++) {
            sd += part_dwd[(s0 + t) * d + c];
            se += part_dwe[(s0 + t) * d + c];
        }
        dW_dec[(int64_t)i * d + c] = sd;
        dW_enc[(int64_t)i * d + c] = se;
    }
    if (threadIdx.x == 0) {
        float sb = 0.0f;
        for (int32_t t = 0; t < nch; t++) sb += part_db[s0 + t];
        db_enc[i] = sb;
    }
}

// ---- 6: db_dec ---------------------------------------------------------------------------------------------------
// part[r][j] = Σ_{n in chunk r} w_n·A[n][j] (w = 1 when wts is NULL; rows with w_n = 0 skipped).
template <typename T>
__global__ void backward_colsum_kernel(const T *A, const float *wts, int64_t rows, int64_t d, int64_t per, float *part) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    const int64_t r = blockIdx.y, n0 = r * per, n1 = n0 + per < rows ? n0 + per : rows;
    float s = 0.0f;
    for (int64_t n = n0; n < n1; n++) {
        float v;
        if constexpr (sizeof(T) == 2) v = musae_bf16_to_f32((uint16_t)A[n * d + j]);
        else v = (float)A[n * d + j];
        if (wts) {
            const float w = wts[n];
            if (w == 0.0f) continue;
            s += w * v;
        } else {
            s += v;
        }
    }
    part[r * d + j] = s;
}

__global__ void backward_bdec_kernel(const float *p1, int64_t R1, const float *p2, int64_t R2, int64_t d, float *db_dec) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t r = 0; r < R1; r++) s1 += p1[r * d + j];
    for (int64_t r = 0; r < R2; r++) s2 += p2[r * d + j];
    db_dec[j] = s1 - s2;
}

// ---- host side ---------------------------------------------------------------------------------------------------
struct BwdLayout {
    int32_t *keys_in, *keys_out, *ids_in, *ids_out, *rowof;
    int32_t *seg, *items, *slots, *item_start, *slot_start;
    float *part_dwd, *part_dwe, *part_db;
    float *cs_g, *cs_w;     // db_dec partials [R1, d], [R2, d]
    int64_t R1, per1, R2, per2;
    void *cub;
    size_t cub_bytes;
    int32_t chunk;
    int64_t n_slots, max_items;
    size_t bytes;
};

int64_t bwd_rows_per(int64_t rows) { return rows > 1024 * 64 ? CEIL_DIV(rows, 1024) : 64; }

BwdLayout bwd_layout(void *base, int64_t N, int64_t E, int64_t d, int64_t M) {
    BwdLayout l;
    // chunk: at least BWD_CHUNK_MIN; grown (powers of two) until the worst case of partial slots,
    // Σ_{latents with > chunk entries} ⌈count/chunk⌉ <= 2E/chunk, fits the budget
    int64_t chunk = BWD_CHUNK_MIN;
    while ((2 * E / chunk + 1) * (2 * d + 1) * (int64_t)sizeof(float) > (int64_t)BWD_PARTIAL_BUDGET && chunk < (1 << 24))
        chunk *= 2;
    l.chunk = (int32_t)chunk;
    l.n_slots = 2 * E / chunk + 1;
    l.max_items = M + CEIL_DIV(E, chunk);
    l.per1 = bwd_rows_per(N), l.R1 = CEIL_DIV(N, l.per1);
    l.per2 = bwd_rows_per(M), l.R2 = CEIL_DIV(M, l.per2);
    sae_carver c = {(char *)base, 0};
    l.keys_in = SAE_CARVE(&c, int32_t, E + 1);
    l.keys_out = SAE_CARVE(&c, int32_t, E + 1);
    l.ids_in = SAE_CARVE(&c, int32_t, E + 1);
    l.ids_out = SAE_CARVE(&c, int32_t, E + 1);
    l.rowof = SAE_CARVE(&c, int32_t, E + 1);
    l.seg = SAE_CARVE(&c, int32_t, M + 1);
    l.items = SAE_CARVE(&c, int32_t, M + 1);
    l.slots = SAE_CARVE(&c, int32_t, M + 1);
    l.item_start = SAE_CARVE(&c, int32_t, M + 1);
    l.slot_start = SAE_CARVE(&c, int32_t, M + 1);
    l.part_dwd = SAE_CARVE(&c, float, l.n_slots * d);
    l.part_dwe = SAE_CARVE(&c, float, l.n_slots * d);
    l.part_db = SAE_CARVE(&c, float, l.n_slots);
    l.cs_g = SAE_CARVE(&c, float, l.R1 * d);
    l.cs_w = SAE_CARVE(&c, float, l.R2 * d);
    size_t a = 0, b = 0;
    const int end_bit = 32 - __builtin_clz((unsigned)M); // bits of M (the sentinel)
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, a, (const int32_t *)nullptr, (int32_t *)nullptr,
                                               (const int32_t *)nullptr, (int32_t *)nullptr, (int)(E > 0 ? E : 1), 0,
                                               end_bit));
    CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, b, (const int32_t *)nullptr, (int32_t *)nullptr, (int)(M + 1)));
    l.cub_bytes = a > b ? a : b;
    l.cub = sae_carve(&c, l.cub_bytes);
    l.bytes = c.used;
    return l;
}

template <typename T>
void bwd_run(const BwdLayout &l, const sae_codes *codes, const sae_codes *aux, const T *g_xhat, const T *g_ehat,
             const T *xc, const float *W_enc, const float *W_dec, int64_t d, int64_t M, float *dW_enc, float *db_enc,
             float *dW_dec, float *db_dec, cudaStream_t stream) {
    const int64_t N = codes->n_rows, cap_m = codes->cap, cap_a = aux ? aux->cap : 0, E = cap_m + cap_a;
    const int end_bit = 32 - __builtin_clz((unsigned)M);
    if (E > 0) {
        backward_keys_kernel<<<(unsigned)CEIL_DIV(E, 256), 256, 0, stream>>>(
            codes->ptr, codes->idx, cap_m, aux ? aux->ptr : nullptr, aux ? aux->idx : nullptr, cap_a, N, (int32_t)M,
            l.keys_in, l.ids_in, l.rowof);
        CUDA_LAUNCH_CHECK();
        size_t b = l.cub_bytes;
        CUDA_CHECK(cub::DeviceRadixSort::SortPairs(l.cub, b, l.keys_in, l.keys_out, l.ids_in, l.ids_out, (int)E, 0,
                                                   end_bit, stream));
    }
    backward_segments_kernel<<<(unsigned)CEIL_DIV(M + 1, 256), 256, 0, stream>>>(l.keys_out, (int32_t)E, (int32_t)M,
                                                                                 l.chunk, l.seg, l.items, l.slots);
    CUDA_LAUNCH_CHECK();
    size_t b = l.cub_bytes;
    CUDA_CHECK(cub::DeviceScan::ExclusiveSum(l.cub, b, l.items, l.item_start, (int)(M + 1), stream));
    b = l.cub_bytes;
    CUDA_CHECK(cub::DeviceScan::ExclusiveSum(l.cub, b, l.slots, l.slot_start, (int)(M + 1), stream));

    BwdArgs a;
    a.ids = l.ids_out, a.rowof = l.rowof, a.val_m = codes->val, a.val_a = aux ? aux->val : nullptr, a.cap_m = cap_m;
    a.seg = l.seg, a.item_start = l.item_start, a.slot_start = l.slot_start, a.M = (int32_t)M, a.chunk = l.chunk;
    a.W_dec = W_dec, a.d = d, a.dW_dec = dW_dec, a.dW_enc = dW_enc, a.db_enc = db_enc;
    a.part_dwd = l.part_dwd, a.part_dwe = l.part_dwe, a.part_db = l.part_db;
    const sae_row_shape s = sae_row_shape_for(d);
    const bool al = d % 8 == 0 && sae_aligned16(g_xhat) && sae_aligned16(xc) && (!g_ehat || sae_aligned16(g_ehat));
    const size_t smem = sizeof(float) * (size_t)d;
    const unsigned grid = (unsigned)l.max_items;
#define BWD_GO(NV, AL)                                                                                              \
    do {                                                                                                            \
        CUDA_CHECK(cudaFuncSetAttribute(backward_latent_kernel<T, NV, AL>,                                          \
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));                   \
        backward_latent_kernel<T, NV, AL><<<grid, s.threads, smem, stream>>>(a, g_xhat, g_ehat, xc);               \
    } while (0)
    if (s.nv == 1) {
        if (al) BWD_GO(1, true);
        else BWD_GO(1, false);
    } else {
        if (al) BWD_GO(2, true);
        else BWD_GO(2, false);
    }
#undef BWD_GO
    CUDA_LAUNCH_CHECK();
    backward_reduce_kernel<<<(unsigned)M, 256, 0, stream>>>(l.item_start, l.slot_start, d, l.part_dwd, l.part_dwe,
                                                            l.part_db, dW_dec, dW_enc, db_enc);
    CUDA_LAUNCH_CHECK();
    backward_colsum_kernel<T><<<dim3((unsigned)CEIL_DIV(d, 256), (unsigned)l.R1), 256, 0, stream>>>(g_xhat, nullptr, N, d,
                                                                                                l.per1, l.cs_g);
    CUDA_LAUNCH_CHECK();
    backward_colsum_kernel<float><<<dim3((unsigned)CEIL_DIV(d, 256), (unsigned)l.R2), 256, 0, stream>>>(W_enc, db_enc, M, d,
                                                                                                    l.per2, l.cs_w);
    CUDA_LAUNCH_CHECK();
    backward_bdec_kernel<<<(unsigned)CEIL_DIV(d, 256), 256, 0, stream>>>(l.cs_g, l.R1, l.cs_w, l.R2, d, db_dec);
    CUDA_LAUNCH_CHECK();
}

}  // namespace

size_t sae_cuda_backward_scratch_bytes(int64_t N, int64_t cap_codes, int64_t cap_aux, int64_t d, int64_t M) {
    return bwd_layout(nullptr, N, cap_codes + cap_aux, d, M).bytes;
}

void sae_cuda_backward(const sae_codes *codes, const sae_codes *aux, musae_dtype act_t, const void *g_xhat,
                       const void *g_ehat, const void *xc, const float *W_enc, const float *W_dec, int64_t d, int64_t M,
                       float *dW_enc, float *db_enc, float *dW_dec, float *db_dec, void *scratch, size_t scratch_bytes,
                       cudaStream_t stream) {
    const int64_t N = codes->n_rows;
    MUSAE_ASSERT(act_t == MUSAE_F32 || act_t == MUSAE_BF16, "activation dtype %s", musae_dtype_name(act_t));
    MUSAE_ASSERT(N >= 1 && M >= 1 && M < INT32_MAX - 1 && d >= 1, "N %lld M %lld d %lld", (long long)N, (long long)M,
                 (long long)d);
    MUSAE_ASSERT(!aux || aux->n_rows == N, "aux codes have %lld rows, codes %lld", (long long)aux->n_rows, (long long)N);
    MUSAE_ASSERT(!aux || g_ehat, "aux codes without g_ehat");
    const int64_t E = codes->cap + (aux ? aux->cap : 0);
    MUSAE_ASSERT(E < INT32_MAX && N < INT32_MAX, "%lld entry slots (int32 indices)", (long long)E);
    const BwdLayout l = bwd_layout(scratch, N, E, d, M);
    MUSAE_ASSERT(scratch && scratch_bytes >= l.bytes, "backward scratch of %zu bytes, need %zu", scratch_bytes, l.bytes);
    if (act_t == MUSAE_F32)
        bwd_run(l, codes, aux, (const float *)g_xhat, (const float *)g_ehat, (const float *)xc, W_enc, W_dec, d, M, dW_enc,
                db_enc, dW_dec, db_dec, stream);
    else
        bwd_run(l, codes, aux, (const uint16_t *)g_xhat, (const uint16_t *)g_ehat, (const uint16_t *)xc, W_enc, W_dec, d,
                M, dW_enc, db_enc, dW_dec, db_dec, stream);
}
