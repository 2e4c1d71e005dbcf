/* SAE encoder on the GPU: GEMM + bias + ReLU + per-row top-k (and the dead-latent top-k_aux), as sae_cpu_encode.
 *
 * Design. The GEMM is cuBLAS (GemmEx: bf16 operands, fp32 accumulation and output; on sm_90 it dispatches to
 * the library's wgmma kernels, which a hand-written mma.sync kernel would not match without a GPU to tune
 * on). It runs over tiles of R rows × C latents (C = 2048, or 8192 with long AuxK lists; R sized to the
 * scratch, ~24 MiB, so a tile stays in L2 between the GEMM that writes it and the merge kernel that reads
 * it), and the merge kernel folds each tile into per-row running lists at once: the [N, M] pre-activations
 * never exist.
 *
 * Selection keys. A candidate (value v > 0, latent j) is the 64-bit key (bits(v) << 32) | (0xffffffff − j):
 * positive floats order like their bit patterns, so keys order exactly like "larger value, then lower
 * latent", the CPU's tie rule, and every key in a row is unique. A row's running list is its best keys so
 * far, sorted descending; theta is its k-th key once full (0 before), and only keys above theta are kept.
 *
 * Merge kernel, one block of 128 threads per row:
 *   - scan the row's slice of the tile in slabs of 512 latents: add the bias, ReLU, build keys, append those
 *     above theta to a shared candidate buffer (warp ballots; positions from per-warp counts, one barrier
 *     per slab, so the buffer order is deterministic too);
 *   - when the buffer could overflow, and at the end: if it holds more than k keys, a radix select (8-bit
 *     digits from the top, stopping as soon as the k-th key's bucket is taken whole) keeps its best k; the
 *     survivors are bitonic-sorted and merged with the list by rank (each key's rank = its index in its own
 *     sorted array + the number of keys above it in the other, by binary search);
 *   - the list goes back to scratch for the next latent tile; a last kernel writes the CSR codes.
 * After the first tile a row's theta is high and few keys pass it, so later tiles cost little beyond the scan.
 * The unfused path (pre given) runs the same kernel once over the full [N, M] GEMM output, in place. */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

constexpr int ENC_THREADS = 128;
constexpr int ENC_WARPS = ENC_THREADS / 32;
constexpr int ENC_SLAB = ENC_THREADS * 4;  // latents scanned per step
constexpr int ENC_CAND_MIN = 2048;         // candidate buffer (keys); a power of two >= ENC_SLAB
constexpr int64_t ENC_TILE_COLS = 2048;    // latents per GEMM tile
constexpr size_t ENC_TILE_BYTES = (size_t)24 << 20;  // default tile budget (fits the H100's 50 MB L2 with room)

__device__ __forceinline__ uint64_t enc_key(float v, int64_t j) {
    return ((uint64_t)__float_as_uint(v) << 32) | (uint64_t)(0xffffffffu - (uint32_t)j);
}
__device__ __forceinline__ float enc_key_val(uint64_t key) { return __uint_as_float((uint32_t)(key >> 32)); }
__device__ __forceinline__ int32_t enc_key_idx(uint64_t key) { return (int32_t)(0xffffffffu - (uint32_t)key); }

// Shared-memory scalars of the merge kernel.
struct EncShared {
    int hist[256];
    int sel[3];                   // radix select: bin, keys above it, keys in it
    int tmp;                      // compaction counter
    int wc[2][2][ENC_WARPS];      // per-warp appends of a slab: [slab parity][list][warp]
};

// One running list. Every field is uniform across the block (updated identically after barriers).
struct TopList {
    uint64_t *L, *Lalt, *C;  // shared: the list (sorted descending), a same-size spare, the candidate buffer
    int k, cap;              // list capacity, candidate capacity (a power of two >= pow2ceil(k))
    int cnt;                 // keys in L
    uint64_t theta;          // candidates must exceed this
};

__device__ __forceinline__ int pow2ceil_dev(int x) { return x <= 1 ? 1 : 1 << (32 - __clz(x - 1)); }

// Number of keys in a[0..n) (sorted descending) greater than x.
__device__ __forceinline__ int count_greater(const uint64_t *a, int n, uint64_t x) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (a[mid] > x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// The key K such that exactly k of the n unique keys are >= K (n > k >= 1). Radix select on 8-bit digits
// from the top; a digit's bucket that is taken whole ends the search (usually after 3-4 digits).
__device__ uint64_t block_select_kth(const uint64_t *keys, int n, int k, EncShared &sh) {
    uint64_t prefix = 0, mask = 0;
    int need = k;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) sh.hist[i] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const uint64_t key = keys[i];
            if ((key & mask) == prefix) atomicAdd(&sh.hist[(int)((key >> shift) & 255u)], 1);
        }
        __syncthreads();
        if (threadIdx.x < 32) { // lane l scans bins 255-8l .. 248-8l; the first lane whose running count
            const int lane = threadIdx.x, top = 255 - 8 * lane; // reaches `need` holds the k-th key's bin
            int s = 0;
#pragma unroll
            for (int j = 0; j < 8; j++) s += sh.hist[top - j];
            int incl = s;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                int t = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += t;
            }
            const unsigned ball = __ballot_sync(0xffffffffu, incl >= need);
            if (lane == __ffs(ball) - 1) {
                int acc = incl - s;
                for (int j = 0; j < 8; j++) {
                    const int h = sh.hist[top - j];
                    if (acc + h >= need) {
                        sh.sel[0] = top - j;
                        sh.sel[1] = acc;
                        sh.sel[2] = h;
                        break;
                    }
                    acc += h;
                }
            }
        }
        __syncthreads();
        const int bin = sh.sel[0], above = sh.sel[1], inbin = sh.sel[2];
        prefix |= (uint64_t)bin << shift;
        mask |= (uint64_t)255u << shift;
        need -= above;
        if (inbin == need) break; // every key of the bucket is selected: K = prefix (lower digits 0)
    }
    // sel[] is rewritten only after two more barriers of a later call, and hist[] was last read by warp 0
    // before the barrier above: no trailing barrier needed.
    return prefix;
}

// Descending bitonic sort of a[0..P), P a power of two (padding keys are 0 and sink to the end).
__device__ void bitonic_sort_desc(uint64_t *a, int P) {
    for (int size = 2; size <= P; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < (P >> 1); i += blockDim.x) {
                const int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
                const bool desc = (lo & size) == 0;
                const uint64_t x = a[lo], y = a[hi];
                if ((x < y) == desc) {
                    a[lo] = y;
                    a[hi] = x;
                }
            }
            __syncthreads();
        }
}

// Fold the q candidates C[0..q) (written before the last barrier, all > theta) into the list.
__device__ void list_merge(TopList &t, int q, EncShared &sh) {
    uint64_t *C = t.C;
    if (q > t.k) { // keep the candidates' own best k: the merged top-k is among them and the list
        const uint64_t kth = block_select_kth(C, q, t.k, sh);
        if (threadIdx.x == 0) sh.tmp = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < q; i += blockDim.x) {
            const uint64_t key = C[i];
            if (key >= kth) t.Lalt[atomicAdd(&sh.tmp, 1)] = key; // exactly k of them; order fixed by the sort
        }
        __syncthreads();
        for (int i = threadIdx.x; i < t.k; i += blockDim.x) C[i] = t.Lalt[i];
        q = t.k;
    }
    const int P = pow2ceil_dev(q);
    for (int i = q + threadIdx.x; i < P; i += blockDim.x) C[i] = 0;
    __syncthreads();
    bitonic_sort_desc(C, P);
    // ranks in the union (keys are unique, so the ranks are a permutation); keep those below k
    for (int i = threadIdx.x; i < t.cnt; i += blockDim.x) {
        const uint64_t key = t.L[i];
        const int r = i + count_greater(C, q, key);
        if (r < t.k) t.Lalt[r] = key;
    }
    for (int j = threadIdx.x; j < q; j += blockDim.x) {
        const uint64_t key = C[j];
        const int r = j + count_greater(t.L, t.cnt, key);
        if (r < t.k) t.Lalt[r] = key;
    }
    __syncthreads();
    uint64_t *old = t.L;
    t.L = t.Lalt;
    t.Lalt = old;
    t.cnt = min(t.k, t.cnt + q);
    t.theta = t.cnt == t.k ? t.L[t.k - 1] : 0;
    __syncthreads(); // all have read theta and C before the next slab writes C or a merge writes Lalt
}

// The launch's per-row state: sorted keys [rows, k] and counts [rows].
__device__ void list_load(TopList &t, const uint64_t *keys, const int64_t *cnt, int64_t row, int first) {
    t.cnt = first || t.k == 0 ? 0 : (int)cnt[row];
    for (int i = threadIdx.x; i < t.cnt; i += blockDim.x) t.L[i] = keys[row * t.k + i];
    t.theta = t.cnt == t.k && t.k > 0 ? keys[row * t.k + t.k - 1] : 0;
}
__device__ void list_store(const TopList &t, uint64_t *keys, int64_t *cnt, int64_t row) {
    for (int i = threadIdx.x; i < t.cnt; i += blockDim.x) keys[row * t.k + i] = t.L[i];
    if (threadIdx.x == 0) cnt[row] = t.cnt;
}

// Appends, for one list, the keys of this thread's 4 slab positions that pass `pred`; positions come from the
// per-warp counts of the slab (in wc, published before the barrier that precedes this call).
__device__ __forceinline__ void slab_append(uint64_t *C, int base, const unsigned (&mask)[4], const uint64_t (&key)[4],
                                            int lane) {
    int before = 0;
#pragma unroll
    for (int u = 0; u < 4; u++) {
        if (mask[u] >> lane & 1u) C[base + before + __popc(mask[u] & ((1u << lane) - 1u))] = key[u];
        before += __popc(mask[u]);
    }
}

struct EncArgs {
    const float *tile;     // [rows of this launch, ldt]: raw GEMM output (no bias) for latents [col0, col1)
    int64_t ldt;
    int64_t row0, col0, col1;
    int write_pre;         // unfused path: write ReLU(tile + b) back into tile (which is pre)
    const float *b_enc;
    const uint8_t *dead;
    int k, cap, ka, acap;
    uint64_t *keys, *akeys;
    int64_t *cnt, *acnt;
    int first;             // first latent tile of these rows: lists start empty
};

template <bool AUX>
__global__ void __launch_bounds__(ENC_THREADS) encode_merge_kernel(EncArgs a) {
    extern __shared__ __align__(16) unsigned char enc_smem[];
    __shared__ EncShared sh;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t row = a.row0 + blockIdx.x;
    float *trow = const_cast<float *>(a.tile) + (int64_t)blockIdx.x * a.ldt; // latent j at trow[j - col0]

    uint64_t *s = reinterpret_cast<uint64_t *>(enc_smem);
    TopList m, x;
    m.k = a.k, m.cap = a.cap, m.L = s, m.Lalt = s + a.k, m.C = s + 2 * a.k;
    x.k = a.ka, x.cap = a.acap, x.L = m.C + a.cap, x.Lalt = x.L + a.ka, x.C = x.L + 2 * a.ka;
    list_load(m, a.keys, a.cnt, row, a.first);
    if (AUX) list_load(x, a.akeys, a.acnt, row, a.first);
    int q = 0, qa = 0, par = 0;
    __syncthreads();

    for (int64_t c = a.col0; c < a.col1; c += ENC_SLAB) {
        if (q + ENC_SLAB > m.cap && m.k > 0) {
            list_merge(m, q, sh);
            q = 0;
        }
        if (AUX && qa + ENC_SLAB > x.cap) {
            list_merge(x, qa, sh);
            qa = 0;
        }
        unsigned mm[4], ma[4];
        uint64_t key[4];
        int nm = 0, na = 0;
#pragma unroll
        for (int u = 0; u < 4; u++) { // coalesced: consecutive threads read consecutive latents
            const int64_t j = c + u * ENC_THREADS + threadIdx.x;
            const bool ok = j < a.col1;
            float v = 0.0f;
            if (ok) {
                v = trow[j - a.col0] + __ldg(a.b_enc + j);
                v = v > 0.0f ? v : 0.0f; // as the CPU: NaN becomes 0
                if (a.write_pre) trow[j - a.col0] = v;
            }
            key[u] = enc_key(v, j);
            mm[u] = __ballot_sync(0xffffffffu, ok && m.k > 0 && v > 0.0f && key[u] > m.theta);
            nm += __popc(mm[u]);
            if (AUX) {
                ma[u] = __ballot_sync(0xffffffffu, ok && v > 0.0f && __ldg(a.dead + j) != 0 && key[u] > x.theta);
                na += __popc(ma[u]);
            }
        }
        if (lane == 0) {
            sh.wc[par][0][warp] = nm;
            if (AUX) sh.wc[par][1][warp] = na;
        }
        __syncthreads();
        // wc[par] is rewritten two slabs later, after another barrier: every thread has read it by then
        int bm = q, ba = qa;
#pragma unroll
        for (int w = 0; w < ENC_WARPS; w++) {
            const int cm = sh.wc[par][0][w];
            bm += w < warp ? cm : 0;
            q += cm;
            if (AUX) {
                const int ca = sh.wc[par][1][w];
                ba += w < warp ? ca : 0;
                qa += ca;
            }
        }
        if (nm) slab_append(m.C, bm, mm, key, lane);
        if (AUX && na) slab_append(x.C, ba, ma, key, lane);
        par ^= 1;
    }
    // list_merge starts with a barrier before it reads C, so the last slab's appends are visible
    if (q > 0) list_merge(m, q, sh);
    if (AUX && qa > 0) list_merge(x, qa, sh);
    if (m.k > 0) list_store(m, a.keys, a.cnt, row);
    if (AUX) list_store(x, a.akeys, a.acnt, row);
}

// CSR from the sorted lists: a warp per row.
__global__ void encode_csr_kernel(const uint64_t *keys, const int64_t *cnt, int k, int64_t N, const int64_t *ptr,
                                  int32_t *idx, float *val) {
    const int64_t n = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (n >= N) return;
    const int c = (int)cnt[n];
    const int64_t at = ptr[n];
    for (int i = threadIdx.x & 31; i < c; i += 32) {
        const uint64_t key = keys[n * k + i];
        idx[at + i] = enc_key_idx(key);
        val[at + i] = enc_key_val(key);
    }
}

// ---- host side -----------------------------------------------------------------------------------------------

struct EncLayout {
    uint64_t *keys, *akeys;
    int64_t *cnt, *acnt;
    void *cub;
    size_t cub_bytes;
    float *tile;
    size_t fixed;  // bytes before the tile
};

size_t enc_cub_bytes(int64_t N) {
    size_t b = 0;
    CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, b, (const int64_t *)nullptr, (int64_t *)nullptr, (int)N));
    return b;
}

EncLayout enc_layout(void *base, int64_t N, int k, int k_aux) {
    sae_carver c = {(char *)base, 0};
    EncLayout l;
    l.keys = SAE_CARVE(&c, uint64_t, N * (int64_t)k + 1);
    l.cnt = SAE_CARVE(&c, int64_t, N + 1);
    l.akeys = SAE_CARVE(&c, uint64_t, N * (int64_t)k_aux + 1);
    l.acnt = SAE_CARVE(&c, int64_t, N + 1);
    l.cub_bytes = enc_cub_bytes(N);
    l.cub = sae_carve(&c, l.cub_bytes);
    l.fixed = (c.used + 255) & ~(size_t)255;
    l.tile = base ? (float *)((char *)base + l.fixed) : nullptr;
    return l;
}

size_t enc_smem_bytes(int k, int cap, bool aux, int ka, int acap) {
    size_t keys = 2 * (size_t)k + cap + (aux ? 2 * (size_t)ka + acap : 0);
    return keys * sizeof(uint64_t);
}

int enc_cap(int k) {
    int p = sae_pow2ceil(k);
    return p > ENC_CAND_MIN ? p : ENC_CAND_MIN;
}

void enc_gemm(cublasHandle_t h, musae_dtype t, const void *W, const void *xc, int64_t d, int64_t c0, int64_t nc,
              int64_t r0, int64_t nr, float *out, int64_t ldo) {
    // row-major out[nr, nc] = xc[r0:, :] · W[c0:, :]ᵀ, i.e. column-major outᵀ = W_chunk(ᵀ as stored) · xc_chunk
    const float one = 1.0f, zero = 0.0f;
    const size_t es = t == MUSAE_F32 ? sizeof(float) : sizeof(uint16_t);
    const void *A = (const char *)W + (size_t)(c0 * d) * es, *B = (const char *)xc + (size_t)(r0 * d) * es;
    const cudaDataType_t ab = t == MUSAE_F32 ? CUDA_R_32F : CUDA_R_16BF;
    const cublasComputeType_t ct = t == MUSAE_F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)nc, (int)nr, (int)d, &one, A, ab, (int)d, B, ab, (int)d,
                              &zero, out, CUDA_R_32F, (int)ldo, ct, CUBLAS_GEMM_DEFAULT));
}

void enc_finish(const uint64_t *keys, const int64_t *cnt, int k, int64_t N, sae_codes *codes, void *cub,
                size_t cub_bytes, cudaStream_t stream) {
    codes->n_rows = N;
    CUDA_CHECK(cudaMemsetAsync(codes->ptr, 0, sizeof(int64_t), stream));
    if (N == 0) return;
    size_t b = cub_bytes;
    CUDA_CHECK(cub::DeviceScan::InclusiveSum(cub, b, cnt, codes->ptr + 1, (int)N, stream));
    const int per = 8; // rows (warps) per 256-thread block
    encode_csr_kernel<<<(unsigned)CEIL_DIV(N, per), 32 * per, 0, stream>>>(keys, cnt, k, N, codes->ptr, codes->idx,
                                                                           codes->val);
    CUDA_LAUNCH_CHECK();
}

}  // namespace

void sae_cuda_encode_tiling(int64_t N, int64_t M, int k, int k_aux, size_t scratch_bytes, int64_t *rows, int64_t *cols) {
    const size_t fixed = enc_layout(nullptr, N, k, k_aux).fixed;
    MUSAE_ASSERT(scratch_bytes >= fixed + (size_t)ENC_SLAB * sizeof(float), "encode scratch of %zu bytes, need %zu",
                 scratch_bytes, fixed + (size_t)ENC_SLAB * sizeof(float));
    const int64_t tile_elems = (int64_t)((scratch_bytes - fixed) / sizeof(float));
    int64_t C, R;
    if (tile_elems >= N * M) {
        C = M, R = N;
    } else {
        // every tile reloads and stores each row's lists ((k + k_aux)·16 bytes): long lists (AuxK at d/2) get
        // wider tiles, so fewer of them
        const int64_t want = ENC_TILE_COLS * (k + k_aux > 512 ? 4 : 1);
        C = M < want ? M : want;
        if (C > tile_elems) C = tile_elems / ENC_SLAB * ENC_SLAB;
        R = tile_elems / C;
        if (R >= N) {
            R = N;
        } else { // equal row chunks (no small remainder GEMM), multiples of 64 rows when that still fits
            const int64_t chunks = CEIL_DIV(N, R), even = CEIL_DIV(CEIL_DIV(N, chunks), 64) * 64;
            R = even <= R ? even : R;
        }
    }
    MUSAE_ASSERT(C >= 1 && R >= 1, "tile %lld × %lld", (long long)R, (long long)C);
    *rows = R, *cols = C;
}

size_t sae_cuda_encode_scratch_min(int64_t N, int64_t M, int k, int k_aux) {
    return enc_layout(nullptr, N, k, k_aux).fixed + (size_t)ENC_SLAB * sizeof(float);
}

size_t sae_cuda_encode_scratch_bytes(int64_t N, int64_t M, int k, int k_aux) {
    size_t tile = (size_t)N * (size_t)M * sizeof(float);
    if (tile > ENC_TILE_BYTES) tile = ENC_TILE_BYTES;
    size_t min_tile = (size_t)ENC_SLAB * sizeof(float);
    return enc_layout(nullptr, N, k, k_aux).fixed + (tile > min_tile ? tile : min_tile);
}

void sae_cuda_encode(cublasHandle_t blas, musae_dtype gemm_t, const void *xc, const void *W_enc, const float *b_enc,
                     int64_t N, int64_t d, int64_t M, int k, const uint8_t *dead, int k_aux, sae_codes *codes,
                     sae_codes *aux, float *pre, void *scratch, size_t scratch_bytes, cudaStream_t stream) {
    MUSAE_ASSERT(gemm_t == MUSAE_F32 || gemm_t == MUSAE_BF16, "GEMM dtype %s", musae_dtype_name(gemm_t));
    MUSAE_ASSERT(N >= 0 && d >= 1 && M >= 1 && N < INT32_MAX && d < INT32_MAX && M < INT32_MAX, "N %lld d %lld M %lld",
                 (long long)N, (long long)d, (long long)M);
    MUSAE_ASSERT(k >= 0 && k <= M && k <= SAE_CUDA_K_MAX, "k %d (M %lld, max %d)", k, (long long)M, SAE_CUDA_K_MAX);
    const int use_aux = dead && k_aux > 0;
    MUSAE_ASSERT(k_aux >= 0 && k_aux <= M && k_aux <= SAE_CUDA_K_MAX, "k_aux %d", k_aux);
    MUSAE_ASSERT(codes->cap >= N * k, "codes hold %lld entries, need %lld", (long long)codes->cap, (long long)(N * k));
    MUSAE_ASSERT(!use_aux || (aux && aux->cap >= N * k_aux), "aux codes too small for N·k_aux");
    cublasPointerMode_t pm;
    CUBLAS_CHECK(cublasGetPointerMode(blas, &pm));
    MUSAE_ASSERT(pm == CUBLAS_POINTER_MODE_HOST, "the cuBLAS handle must be in host pointer mode");
    const int ka = use_aux ? k_aux : 0;
    const EncLayout lay = enc_layout(scratch, N, k, ka);
    MUSAE_ASSERT(scratch && scratch_bytes >= sae_cuda_encode_scratch_min(N, M, k, ka),
                 "encode scratch of %zu bytes, need at least %zu", scratch_bytes, sae_cuda_encode_scratch_min(N, M, k, ka));
    CUBLAS_CHECK(cublasSetStream(blas, stream));

    EncArgs a = {};
    a.b_enc = b_enc, a.dead = dead, a.k = k, a.ka = ka;
    a.cap = k > 0 ? enc_cap(k) : 0;
    a.acap = ka > 0 ? enc_cap(ka) : 0;
    a.keys = lay.keys, a.cnt = lay.cnt, a.akeys = lay.akeys, a.acnt = lay.acnt;
    const size_t smem = enc_smem_bytes(k, a.cap, use_aux, ka, a.acap);
    auto kern = use_aux ? encode_merge_kernel<true> : encode_merge_kernel<false>;
    CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));

    const int work = k > 0 || use_aux || pre; // k = 0 alone selects nothing: empty codes, as the CPU
    if (N > 0 && work && pre) { // unfused: the whole [N, M] matrix, then one pass over it in place
        enc_gemm(blas, gemm_t, W_enc, xc, d, 0, M, 0, N, pre, M);
        a.tile = pre, a.ldt = M, a.row0 = 0, a.col0 = 0, a.col1 = M, a.write_pre = 1, a.first = 1;
        kern<<<(unsigned)N, ENC_THREADS, smem, stream>>>(a);
        CUDA_LAUNCH_CHECK();
    } else if (N > 0 && work) { // fused: tiles of R rows × C latents, as large as the scratch allows
        int64_t R, C;
        sae_cuda_encode_tiling(N, M, k, ka, scratch_bytes, &R, &C);
        a.tile = lay.tile, a.write_pre = 0;
        for (int64_t r0 = 0; r0 < N; r0 += R) {
            const int64_t nr = r0 + R <= N ? R : N - r0;
            for (int64_t c0 = 0; c0 < M; c0 += C) {
                const int64_t nc = c0 + C <= M ? C : M - c0;
                enc_gemm(blas, gemm_t, W_enc, xc, d, c0, nc, r0, nr, lay.tile, nc);
                a.ldt = nc, a.row0 = r0, a.col0 = c0, a.col1 = c0 + nc, a.first = c0 == 0;
                kern<<<(unsigned)nr, ENC_THREADS, smem, stream>>>(a);
                CUDA_LAUNCH_CHECK();
            }
        }
    }
    if (k > 0) enc_finish(lay.keys, lay.cnt, k, N, codes, lay.cub, lay.cub_bytes, stream);
    else {
        codes->n_rows = N;
        CUDA_CHECK(cudaMemsetAsync(codes->ptr, 0, sizeof(int64_t) * (size_t)(N + 1), stream));
    }
    if (aux) {
        if (use_aux) enc_finish(lay.akeys, lay.acnt, ka, N, aux, lay.cub, lay.cub_bytes, stream);
        else {
            aux->n_rows = N;
            CUDA_CHECK(cudaMemsetAsync(aux->ptr, 0, sizeof(int64_t) * (size_t)(N + 1), stream));
        }
    }
}
