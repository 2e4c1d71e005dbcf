// CPU emulation of the CUDA subset musae's kernels use (tools/cuda_emu/README.md): a fiber per CUDA thread
// (or an OS thread, EMU_THREADS=1; emu_rt.cpp), real block and warp barriers (exited threads drop out, as on
// the GPU), shuffles, ballots and __syncthreads_count through per-warp / per-block slots (every lane of the
// warp must take part: FULL_MASK only, and a lane that has exited makes the collective fail), shared memory
// per block (filled with NaN bytes), a launch that checks grid/block limits and the dynamic shared-memory
// opt-in, a column-major cuBLASLt (the subset matmul.cu calls) and cublasGemmEx (sae_encode.cu).
// transform.py rewrites launches and __shared__ declarations so a .cu compiles as host C++.
// Atomics: std::atomic_ref on the target, so integer results are exact and float adds land in some order.
// CUB: include/cub/cub.cuh (device radix sort, device scans, block scan) with the documented semantics.
// Streams and events: all work runs when queued (one in-order stream), so events are complete when recorded;
// host functions (cudaLaunchHostFunc) run at once. Graphs: stream capture records kernel launches, copies,
// memsets, host functions, CUB calls and cuBLAS(Lt) calls as closures (scalars and descriptors copied, pointers
// kept, as a real capture does) instead of running them; launching the instantiated graph replays them in
// order. Synchronizing or allocating while capturing fails, as on a GPU. cudaPointerGetAttributes knows the
// emulated device allocations and pinned host allocations (everything else is unregistered host memory).
// Not emulated: cooperative groups, textures, FMA contraction (nvcc fuses a*b+c by default; the host
// compiler here does not), NCCL.
#pragma once
#include <atomic>
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
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __restrict__ __restrict
#define CUDART_CB

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; }; /* CUDA aligns the vector types to their size */
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; memcpy(&u, &f, 4); return u; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); } /* IEEE sqrt: correctly rounded on both */
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
template <class T> inline T __ldg(const T *p) { return *p; }
// CUDA's global min/max overloads (integer and float, mixed types promoted)
template <class A, class B> inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B> inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }
[[noreturn]] inline void __trap() { fprintf(stderr, "EMU: __trap\n"); abort(); }

typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorLaunch = 2, cudaErrorStreamCaptureUnsupported = 900 };
enum { cudaHostAllocDefault = 0 };
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2,
                     cudaMemoryTypeManaged = 3 };
struct cudaPointerAttributes { cudaMemoryType type; int device; void *devicePointer, *hostPointer; };
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem, sharedMemPerBlock;
};
typedef void (*cudaHostFn_t)(void *);
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaStreamNonBlocking = 1 };
enum { cudaEventDisableTiming = 2 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1,
                             cudaStreamCaptureModeRelaxed = 2 };
struct emu_graph;
typedef emu_graph *cudaGraph_t;
typedef emu_graph *cudaGraphExec_t;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount, cudaDevAttrL2CacheSize };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
typedef int cudaDataType_t;
enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 };

// A block or warp barrier for either engine (emu_rt.cpp). Fibers (the default): arrivals are counted and a
// waiting thread yields to its block's scheduler until the barrier's generation moves on. OS threads
// (EMU_THREADS=1): a std::barrier. drop() is a thread's exit: it no longer counts, as on a GPU.
struct emu_bar {
    std::unique_ptr<std::barrier<>> os;
    int expected = 0, arrived = 0;
    unsigned gen = 0;
    void init(int n);
    void wait();
    void drop();
};
enum { EMU_STATIC_SMEM = 48 * 1024 };
struct emu_warp {
    emu_bar bar;
    uint64_t slot[32];          /* a shuffle's or ballot's values, one per lane */
    int lanes;                  /* 32, or fewer in a block's last, partial warp */
    std::atomic<int> exited{0}; /* lanes that have returned: a later collective would be undefined on a GPU */
};
struct emu_block {
    emu_bar bar;
    std::unique_ptr<emu_warp[]> warps; /* emu_warp holds an atomic: not movable, so not in a vector */
    std::vector<char> dyn;
    // static shared memory (the 48 KB a block may declare), poisoned with NaN bytes piece by piece as the
    // declarations hand it out (filling all 48 KB for every block would dominate small kernels)
    std::unique_ptr<char[]> stat;
    size_t stat_filled = 0;
    std::mutex stat_mu;
    std::atomic<int> count[3] = {0, 0, 0}; /* __syncthreads_count: call c of the block uses count[c % 3] */
};
struct emu_thread {
    dim3 tid, bid, bdim, gdim;
    emu_block *blk;
    int warp, lane;
    size_t stat_off;
    int count_calls; /* __syncthreads_count calls so far */
};
extern thread_local emu_thread *emu_cur; /* the CUDA thread running on this OS thread (fiber or thread) */
#define emu_t (*emu_cur)
#define threadIdx (emu_t.tid)
#define blockIdx (emu_t.bid)
#define blockDim (emu_t.bdim)
#define gridDim (emu_t.gdim)

inline void __syncthreads() { emu_t.blk->bar.wait(); }
[[noreturn]] void emu_fail(const char *what);
inline unsigned emu_linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
// Warp collectives: each lane publishes a value, a warp barrier, each reads what it needs, a second barrier
// (so the slots are not overwritten while a slow lane still reads).
inline emu_warp &emu_warp_enter(unsigned mask) {
    if (mask != 0xffffffffu) emu_fail("warp collective with a partial mask (the emulator takes FULL_MASK only)");
    emu_warp &w = emu_t.blk->warps[emu_t.warp];
    if (w.exited.load()) emu_fail("warp collective after a lane of the warp has exited");
    return w;
}
template <class T> inline T emu_shfl(unsigned mask, T v, int src_of_lane_fn(int, int), int arg) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    emu_warp &w = emu_warp_enter(mask);
    uint64_t u = 0;
    memcpy(&u, &v, sizeof(T));
    w.slot[emu_t.lane] = u;
    w.bar.wait();
    int src = src_of_lane_fn(emu_t.lane, arg);
    if (src < 0 || src >= 32) src = emu_t.lane;
    if (src >= w.lanes) emu_fail("shuffle from a lane past the end of a partial warp");
    u = w.slot[src];
    w.bar.wait();
    T r;
    memcpy(&r, &u, sizeof(T));
    return r;
}
inline int emu_src_xor(int l, int o) { return l ^ o; }
inline int emu_src_up(int l, int o) { return l - o; }      /* below lane 0: own value */
inline int emu_src_down(int l, int o) { return l + o; }    /* past lane 31: own value */
inline int emu_src_idx(int, int s) { return s & 31; }
template <class T> inline T __shfl_xor_sync(unsigned m, T v, int o) { return emu_shfl(m, v, emu_src_xor, o); }
template <class T> inline T __shfl_up_sync(unsigned m, T v, unsigned o) { return emu_shfl(m, v, emu_src_up, (int)o); }
template <class T> inline T __shfl_down_sync(unsigned m, T v, unsigned o) {
    return emu_shfl(m, v, emu_src_down, (int)o);
}
template <class T> inline T __shfl_sync(unsigned m, T v, int s) { return emu_shfl(m, v, emu_src_idx, s); }
inline unsigned __ballot_sync(unsigned mask, int pred) {
    emu_warp &w = emu_warp_enter(mask);
    w.slot[emu_t.lane] = pred != 0;
    w.bar.wait();
    unsigned r = 0;
    for (int l = 0; l < w.lanes; l++) r |= (unsigned)(w.slot[l] & 1) << l;
    w.bar.wait();
    return r;
}
inline int __any_sync(unsigned m, int p) { return __ballot_sync(m, p) != 0; }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu_warp_enter(mask).bar.wait(); }
inline int __syncthreads_count(int pred) {
    emu_block &b = *emu_t.blk;
    const int c = emu_t.count_calls++ % 3;
    if (pred) b.count[c].fetch_add(1);
    b.bar.wait();
    // every thread is past the previous call's reads; the next call's counter (last read two calls ago) is
    // cleared before the barrier that any thread must pass to reach that call
    if (emu_linear_tid() == 0) b.count[(c + 1) % 3].store(0);
    const int r = b.count[c].load();
    b.bar.wait();
    return r;
}

// Atomics on global or shared memory: std::atomic_ref, returning the old value as CUDA does.
template <class T> inline T atomicAdd(T *p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T> inline T atomicSub(T *p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <class T> inline T atomicExch(T *p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T> inline T atomicMin(T *p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (v < old && !a.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T> inline T atomicMax(T *p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (v > old && !a.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T> inline T atomicCAS(T *p, T cmp, T v) {
    std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v);
    return cmp;
}
template <class T> inline T atomicOr(T *p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <class T> inline T atomicAnd(T *p, T v) { return std::atomic_ref<T>(*p).fetch_and(v); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void *emu_dyn_smem() { return emu_t.blk->dyn.data(); }
inline void *emu_static_smem(size_t bytes) {
    emu_block &b = *emu_t.blk;
    void *p = b.stat.get() + emu_t.stat_off;
    emu_t.stat_off += (bytes + 15) / 16 * 16;
    if (emu_t.stat_off > EMU_STATIC_SMEM) emu_fail("static shared memory over 48 KB");
    std::lock_guard<std::mutex> l(b.stat_mu);
    if (emu_t.stat_off > b.stat_filled) { /* the first thread to declare this piece poisons it */
        memset(b.stat.get() + b.stat_filled, 0xFF, emu_t.stat_off - b.stat_filled);
        b.stat_filled = emu_t.stat_off;
    }
    return p;
}

extern std::map<const void *, int> emu_smem_optin;
extern long emu_launches;
void emu_run(const void *key, dim3 grid, dim3 block, size_t smem, const std::function<void()> &fn);
// A launch: the arguments are evaluated and copied when the launch is queued, as CUDA does (a captured graph
// keeps the values of the capture, e.g. a host struct passed as *p, not what the host memory holds at replay).
struct emu_launch_cfg {
    dim3 grid, block;
    size_t smem;
};
inline emu_launch_cfg emu_cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t = 0) { return {g, b, smem}; }
template <class K, class... A> inline void emu_launch(const void *key, emu_launch_cfg c, K k, A... a) {
    emu_run(key, c.grid, c.block, c.smem, std::function<void()>([=]() { k(a...); }));
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
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *, unsigned);
cudaError_t cudaMallocHost(void **, size_t);
cudaError_t cudaFreeHost(void *);
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode);
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *, cudaGraph_t, unsigned long long);
cudaError_t cudaGraphDestroy(cudaGraph_t);
cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t);
extern long emu_graph_replays; /* graph launches so far (tests report them) */
cudaError_t cudaMemcpy(void *, const void *, size_t, cudaMemcpyKind);
cudaError_t cudaMemset(void *, int, size_t);
cudaError_t cudaHostAlloc(void **, size_t, unsigned);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *, const void *);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *, int);
cudaError_t cudaStreamDestroy(cudaStream_t);
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned);
cudaError_t cudaLaunchHostFunc(cudaStream_t, cudaHostFn_t, void *);
// Runs fn now, or records it while a stream capture is on (device-side work that is not a kernel launch,
// e.g. the CUB emulation).
void emu_enqueue(std::function<void()> fn);
template <class T> inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
template <class T> inline cudaError_t cudaMallocHost(T **p, size_t n) { return cudaMallocHost((void **)p, n); }
template <class T> inline cudaError_t cudaHostAlloc(T **p, size_t n, unsigned f) {
    return cudaHostAlloc((void **)p, n, f);
}
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
enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_PEDANTIC = 69 };
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

// cuBLAS (v2): cublasGemmEx, column-major, as sae_encode.cu calls it. Sums in fp32 over k-chunks of 16 (the
// pattern of a tensor-core GEMM), so the result differs from a CPU loop in summation order, as on the GPU.
typedef void *cublasHandle_t;
typedef int cublasPointerMode_t;
enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
typedef int cublasGemmAlgo_t;
enum { CUBLAS_GEMM_DEFAULT = -1 };
cublasStatus_t cublasCreate(cublasHandle_t *);
cublasStatus_t cublasDestroy(cublasHandle_t);
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t);
cublasStatus_t cublasGetPointerMode(cublasHandle_t, cublasPointerMode_t *);
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t, int lda, const void *B, cudaDataType_t,
                            int ldb, const void *beta, void *C, cudaDataType_t, int ldc, cublasComputeType_t,
                            cublasGemmAlgo_t);
