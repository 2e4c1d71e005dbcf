/* cuBLASLt matmul with a plan cache.
 *
 * Row-major to column-major: a row-major X with leading dimension ld is, read column-major, Xᵀ with the same
 * ld. So C = op(A)·op(B) (row-major) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ (column-major): cuBLASLt's A is our b
 * with transa = trans_b, its B is our a with transb = trans_a, and its (M, N) is our (n, m). nn.Linear
 * (y = x·wᵀ) becomes the "TN" layout cuBLASLt prefers.
 *
 * Alignment: the heuristic assumes 256-byte aligned pointers unless told otherwise, and an algorithm picked
 * under that assumption may fault on a pointer into the middle of an arena. Every plan is made for the
 * alignment the pointers actually have (largest power of two dividing the address, capped at 256). */
#include <cublasLt.h>
#include <string.h>

#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/matmul.cuh"

#define LT_WORKSPACE_BYTES (32u << 20) /* NVIDIA's recommendation for Hopper */
#define LT_CACHE_SIZE 64

typedef struct {
    int ab_type, trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc;
    uint32_t align_a, align_b, align_c;
} lt_key;

typedef struct {
    lt_key key;
    int used;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc; /* cuBLASLt's A (our b), B (our a), C = D */
    cublasLtMatmulAlgo_t algo;
} lt_plan;

struct musae_lt {
    cublasLtHandle_t handle;
    void *workspace;
    lt_plan cache[LT_CACHE_SIZE];
    int next_victim;
};

musae_lt *matmul_lt_create(void) {
    musae_lt *lt = (musae_lt *)musae_xcalloc(1, sizeof *lt);
    CUBLAS_CHECK(cublasLtCreate(&lt->handle));
    CUDA_CHECK(cudaMalloc(&lt->workspace, LT_WORKSPACE_BYTES));
    return lt;
}

static void plan_release(lt_plan *p) {
    if (!p->used) return;
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->la));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lc));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->desc));
    p->used = 0;
}

void matmul_lt_destroy(musae_lt *lt) {
    if (!lt) return;
    for (int i = 0; i < LT_CACHE_SIZE; i++) plan_release(&lt->cache[i]);
    CUDA_CHECK(cudaDeviceSynchronize()); /* the workspace may still be in use by queued matmuls */
    CUDA_CHECK(cudaFree(lt->workspace));
    CUBLAS_CHECK(cublasLtDestroy(lt->handle));
    free(lt);
}

static uint32_t ptr_alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && (a % al) != 0) al >>= 1;
    return al;
}

static lt_plan *plan_get(musae_lt *lt, const lt_key *key) {
    for (int i = 0; i < LT_CACHE_SIZE; i++)
        if (lt->cache[i].used && memcmp(&lt->cache[i].key, key, sizeof *key) == 0) return &lt->cache[i];

    lt_plan *p = &lt->cache[lt->next_victim];
    lt->next_victim = (lt->next_victim + 1) % LT_CACHE_SIZE;
    plan_release(p);
    memset(p, 0, sizeof *p);
    p->key = *key;

    const cudaDataType_t ab = (cudaDataType_t)key->ab_type;
    const cublasOperation_t opa = key->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N; /* cuBLASLt's A is our b */
    const cublasOperation_t opb = key->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    /* stored (pre-op) shapes, column-major: op(A) is n×k, op(B) is k×m, C is n×m */
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, ab, key->trans_b ? key->k : key->n,
                                            key->trans_b ? key->n : key->k, key->ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, ab, key->trans_a ? key->m : key->k,
                                            key->trans_a ? key->k : key->m, key->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, key->n, key->m, key->ldc));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = LT_WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key->align_b,
                                                      sizeof key->align_b));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key->align_a,
                                                      sizeof key->align_a));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key->align_c,
                                                      sizeof key->align_c));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key->align_c,
                                                      sizeof key->align_c));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt->handle, p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found));
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    p->used = 1; /* so plan_release can free the descriptors even when we fail below */
    MUSAE_ASSERT(found > 0,
                 "cuBLASLt has no algorithm for %s m %lld n %lld k %lld trans %d%d ld %lld/%lld/%lld align %u/%u/%u",
                 ab == CUDA_R_16BF ? "bf16" : "fp32", (long long)key->m, (long long)key->n, (long long)key->k,
                 key->trans_a, key->trans_b, (long long)key->lda, (long long)key->ldb, (long long)key->ldc,
                 key->align_a, key->align_b, key->align_c);
    p->algo = res.algo;
    return p;
}

void matmul_lt(musae_lt *lt, cudaDataType_t ab_type, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
               float alpha, const void *a, int64_t lda, const void *b, int64_t ldb, float beta, float *c, int64_t ldc,
               cudaStream_t stream) {
    MUSAE_ASSERT(lt, "matmul: no cuBLASLt context");
    MUSAE_ASSERT(ab_type == CUDA_R_32F || ab_type == CUDA_R_16BF, "matmul: unsupported A/B type %d", (int)ab_type);
    MUSAE_ASSERT(m >= 0 && n >= 0 && k >= 0, "matmul dims %lld x %lld x %lld", (long long)m, (long long)n,
                 (long long)k);
    if (m == 0 || n == 0) return;
    MUSAE_ASSERT(ldc >= n, "matmul: ldc %lld < n %lld", (long long)ldc, (long long)n);
    if (k == 0) { /* BLAS semantics: C = beta·C; cuBLASLt rejects k = 0 */
        if (ldc == n) {
            scale_cuda(c, beta, m * n, stream);
        } else {
            for (int64_t i = 0; i < m; i++) scale_cuda(c + i * ldc, beta, n, stream);
        }
        return;
    }
    MUSAE_ASSERT(lda >= (trans_a ? m : k) && ldb >= (trans_b ? k : n), "matmul: lda %lld / ldb %lld too small",
                 (long long)lda, (long long)ldb);
    MUSAE_ASSERT(a && b && c, "matmul: NULL pointer");
    lt_key key;
    memset(&key, 0, sizeof key); /* padding bytes take part in the memcmp lookup */
    key.ab_type = (int)ab_type;
    key.trans_a = !!trans_a;
    key.trans_b = !!trans_b;
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.align_a = ptr_alignment(a), key.align_b = ptr_alignment(b), key.align_c = ptr_alignment(c);
    lt_plan *p = plan_get(lt, &key);
    CUBLAS_CHECK(cublasLtMatmul(lt->handle, p->desc, &alpha, b, p->la, a, p->lb, &beta, c, p->lc, c, p->lc, &p->algo,
                                lt->workspace, LT_WORKSPACE_BYTES, stream));
}

void gemm_cuda(musae_lt *lt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, cudaStream_t stream) {
    matmul_lt(lt, CUDA_R_32F, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, stream);
}

void linear_cuda(musae_lt *lt, float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n,
                 int64_t k, float beta, cudaStream_t stream) {
    matmul_lt(lt, CUDA_R_32F, 0, 1, m, n, k, 1.0f, x, k, w, k, beta, y, n, stream);
    if (bias && m > 0 && n > 0) add_rows_cuda(y, bias, 1.0f, m, n, stream); /* 1·bias is exact: y += bias */
}
