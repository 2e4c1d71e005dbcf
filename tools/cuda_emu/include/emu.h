// CPU emulation of the CUDA subset musae's kernels use (tools/cuda_emu/run.sh): one std::thread per CUDA
// thread, real block and warp barriers (exited threads drop out, as on the GPU), shuffles through per-warp
// slots (every lane of the warp must take part: FULL_MASK only), shared memory per block, a launch that checks
// grid/block limits and the dynamic shared-memory opt-in, and a column-major cuBLASLt (the subset matmul.cu
// calls). transform.py rewrites launches and __shared__ declarations so a .cu compiles as host C++.
// Not emulated: atomics, cooperative groups, textures, streams/events (all synchronous), graphs.
#pragma once
#include <barrier>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
[[noreturn]] inline void __trap() { fprintf(stderr, "EMU: __trap\n"); abort(); }

typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorLaunch = 2 };
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaStreamNonBlocking = 1 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount, cudaDevAttrL2CacheSize };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
typedef int cudaDataType_t;
enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 };

struct emu_warp { std::unique_ptr<std::barrier<>> bar; float f[32]; };
struct emu_block {
    std::unique_ptr<std::barrier<>> bar;
    std::vector<emu_warp> warps;
    std::vector<char> dyn, stat;
};
struct emu_thread {
    dim3 tid, bid, bdim, gdim;
    emu_block *blk;
    int warp, lane;
    size_t stat_off;
};
extern thread_local emu_thread emu_t;
#define threadIdx (emu_t.tid)
#define blockIdx (emu_t.bid)
#define blockDim (emu_t.bdim)
#define gridDim (emu_t.gdim)

inline void __syncthreads() { emu_t.blk->bar->arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int o) {
    emu_warp &w = emu_t.blk->warps[emu_t.warp];
    w.f[emu_t.lane] = v;
    w.bar->arrive_and_wait();
    float r = w.f[emu_t.lane ^ o];
    w.bar->arrive_and_wait();
    return r;
}
inline void *emu_dyn_smem() { return emu_t.blk->dyn.data(); }
inline void *emu_static_smem(size_t bytes) {
    void *p = emu_t.blk->stat.data() + emu_t.stat_off;
    emu_t.stat_off += (bytes + 15) / 16 * 16;
    if (emu_t.stat_off > emu_t.blk->stat.size()) { fprintf(stderr, "EMU: static smem overflow\n"); abort(); }
    return p;
}

extern std::map<const void *, int> emu_smem_optin;
extern long emu_launches;
void emu_run(const void *key, dim3 grid, dim3 block, size_t smem, const std::function<void()> &fn);
template <class F> inline void emu_launch(const void *key, dim3 grid, dim3 block, size_t smem, cudaStream_t, F f) {
    emu_run(key, grid, block, smem, std::function<void()>(f));
}

// runtime API
const char *cudaGetErrorString(cudaError_t);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int *);
cudaError_t cudaGetDevice(int *);
cudaError_t cudaDeviceGetAttribute(int *, cudaDeviceAttr, int);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *, unsigned);
cudaError_t cudaStreamSynchronize(cudaStream_t);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void **, size_t);
cudaError_t cudaFree(void *);
cudaError_t cudaMemcpyAsync(void *, const void *, size_t, cudaMemcpyKind, cudaStream_t);
cudaError_t cudaMemsetAsync(void *, int, size_t, cudaStream_t);
cudaError_t cudaEventCreate(cudaEvent_t *);
cudaError_t cudaEventDestroy(cudaEvent_t);
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t);
cudaError_t cudaEventSynchronize(cudaEvent_t);
cudaError_t cudaEventElapsedTime(float *, cudaEvent_t, cudaEvent_t);
template <class T> inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
template <class K> inline cudaError_t cudaFuncSetAttribute(K k, cudaFuncAttribute, int v) {
    emu_smem_optin[(const void *)k] = v;
    return cudaSuccess;
}

// cuBLASLt (column-major), enough for matmul.cu
typedef int cublasStatus_t;
enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
const char *cublasGetStatusString(cublasStatus_t);
typedef int cublasOperation_t;
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
typedef int cublasComputeType_t;
enum { CUBLAS_COMPUTE_32F = 68 };
struct emu_lt_desc { int ta = 0, tb = 0; };
struct emu_lt_layout { int type; uint64_t rows, cols; int64_t ld; };
typedef void *cublasLtHandle_t;
typedef emu_lt_desc *cublasLtMatmulDesc_t;
typedef emu_lt_layout *cublasLtMatrixLayout_t;
typedef void *cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t { char data[64]; };
struct cublasLtMatmulHeuristicResult_t { cublasLtMatmulAlgo_t algo; size_t workspaceSize; int state; float waves; };
enum { CUBLASLT_MATMUL_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSB };
enum { CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
       CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
       CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES };
cublasStatus_t cublasLtCreate(cublasLtHandle_t *);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t);
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *, int, int);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t, int, const void *, size_t);
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *, int, uint64_t, uint64_t, int64_t);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t);
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, int, const void *, size_t);
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t *, int *);
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t, const void *B, cublasLtMatrixLayout_t, const void *beta,
                              const void *C, cublasLtMatrixLayout_t, void *D, cublasLtMatrixLayout_t,
                              const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t);
