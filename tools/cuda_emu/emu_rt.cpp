// tools/cuda_emu runtime: launches, the CUDA runtime calls musae uses, and cuBLASLt in column-major loops.
// EMU_SMS sets the multiprocessor count the table sees (default 132, an H100), which picks decode splits.
#include "emu.h"
#include "kernels/cuda/cuda_device.h"

thread_local emu_thread emu_t;
std::map<const void *, int> emu_smem_optin;
long emu_launches = 0;
static cudaError_t g_last = cudaSuccess;

static void fail(const char *m) { fprintf(stderr, "EMU launch error: %s\n", m); abort(); }

void emu_run(const void *key, dim3 grid, dim3 block, size_t smem, const std::function<void()> &fn) {
    emu_launches++;
    const unsigned nt = block.x * block.y * block.z;
    if (nt == 0 || nt > 1024) fail("block size");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) fail("grid size");
    if (smem > 48 * 1024) {
        auto it = emu_smem_optin.find(key);
        if (!key || it == emu_smem_optin.end() || (size_t)it->second < smem) fail("dynamic smem > 48 KB without opt-in");
    }
    if (smem > 227 * 1024) fail("dynamic smem > 227 KB");
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu_block blk;
                blk.bar = std::make_unique<std::barrier<>>(nt);
                const unsigned nw = (nt + 31) / 32;
                blk.warps.resize(nw);
                for (unsigned w = 0; w < nw; w++)
                    blk.warps[w].bar = std::make_unique<std::barrier<>>(std::min(32u, nt - 32 * w));
                blk.dyn.assign(smem, (char)0xFF); /* NaN garbage: reading unwritten shared memory shows */
                blk.stat.assign(16384, (char)0xFF);
                std::vector<std::thread> th;
                th.reserve(nt);
                for (unsigned t = 0; t < nt; t++) {
                    th.emplace_back([&, t, bx, by, bz]() {
                        emu_t.tid = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                        emu_t.bid = dim3(bx, by, bz);
                        emu_t.bdim = block;
                        emu_t.gdim = grid;
                        emu_t.blk = &blk;
                        emu_t.warp = t / 32, emu_t.lane = t % 32;
                        emu_t.stat_off = 0;
                        fn();
                        blk.warps[emu_t.warp].bar->arrive_and_drop();
                        blk.bar->arrive_and_drop();
                    });
                }
                for (auto &x : th) x.join();
            }
}

const char *cudaGetErrorString(cudaError_t e) { return e ? "emu error" : "no error"; }
cudaError_t cudaGetLastError() { cudaError_t e = g_last; g_last = cudaSuccess; return e; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int) {
    const char *e = getenv("EMU_SMS");
    *v = a == cudaDevAttrMultiProcessorCount ? (e ? atoi(e) : 132) : 50 << 20;
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)0x1; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t n) {
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    memset(*p, 0xCD, (n + 255) / 256 * 256);
    return *p ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { memset(d, v, n); return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = nullptr; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *t, cudaEvent_t, cudaEvent_t) { *t = 1; return cudaSuccess; }

extern "C" int musae_cuda_device_count(char *why, int n) { return 1; }

const char *cublasGetStatusString(cublasStatus_t s) { return s ? "emu cublas error" : "ok"; }
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = (void *)0x2; return 0; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return 0; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, int ct, int st) {
    if (ct != CUBLAS_COMPUTE_32F || st != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
    *d = new emu_lt_desc();
    return 0;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return 0; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, int a, const void *v, size_t n) {
    if (n != 4) return CUBLAS_STATUS_INVALID_VALUE;
    int x; memcpy(&x, v, 4);
    if (a == CUBLASLT_MATMUL_DESC_TRANSA) d->ta = x; else if (a == CUBLASLT_MATMUL_DESC_TRANSB) d->tb = x;
    else return CUBLAS_STATUS_INVALID_VALUE;
    return 0;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, int type, uint64_t r, uint64_t c, int64_t ld) {
    if (ld < (int64_t)r || ld < 1) { fprintf(stderr, "EMU: layout ld %lld < rows %llu\n", (long long)ld, (unsigned long long)r); return CUBLAS_STATUS_INVALID_VALUE; }
    *l = new emu_lt_layout{type, r, c, ld};
    return 0;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return 0; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = (void *)0x3; return 0; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t) { return 0; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, int a, const void *, size_t n) {
    return (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES ? n == 8 : n == 4) ? 0 : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *r, int *n) {
    memset(r, 0, sizeof *r);
    *n = 1;
    return 0;
}
static float ld_elem(const void *p, int type, int64_t i) {
    if (type == CUDA_R_32F) return ((const float *)p)[i];
    uint16_t b = ((const uint16_t *)p)[i];
    uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld_,
                              const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t) {
    emu_launches++;
    if (C != D || lc != ld_ || lc->type != CUDA_R_32F || la->type != lb->type) return CUBLAS_STATUS_INVALID_VALUE;
    const int64_t M = d->ta ? la->cols : la->rows, K = d->ta ? la->rows : la->cols;
    const int64_t Kb = d->tb ? lb->cols : lb->rows, N = d->tb ? lb->rows : lb->cols;
    if (K != Kb || (int64_t)lc->rows != M || (int64_t)lc->cols != N) {
        fprintf(stderr, "EMU: matmul dims M%lld K%lld / K%lld N%lld / C %llux%llu\n", (long long)M, (long long)K,
                (long long)Kb, (long long)N, (unsigned long long)lc->rows, (unsigned long long)lc->cols);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const float al = *(const float *)alpha, be = *(const float *)beta;
    float *Dp = (float *)D;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t p = 0; p < K; p++) {
                const float a = ld_elem(A, la->type, d->ta ? p + i * la->ld : i + p * la->ld);
                const float b = ld_elem(B, lb->type, d->tb ? j + p * lb->ld : p + j * lb->ld);
                s += (double)a * b;
            }
            float r = al * (float)s;
            if (be != 0) r += be * Dp[i + j * lc->ld];
            Dp[i + j * lc->ld] = r;
        }
    return 0;
}
