// tools/cuda_emu runtime: launches, the CUDA runtime calls musae uses, and cuBLASLt in column-major loops.
// EMU_SMS sets the multiprocessor count the table sees (default 132, an H100), which picks decode splits.
#include "emu.h"
#include "kernels/cuda/cuda_device.h"

#include <mutex>

#include <sys/mman.h>

thread_local emu_thread *emu_cur;
std::map<const void *, int> emu_smem_optin;
long emu_launches = 0;
static cudaError_t g_last = cudaSuccess;

static void fail(const char *m) { fprintf(stderr, "EMU launch error: %s\n", m); abort(); }
void emu_fail(const char *what) {
    if (!emu_cur) {
        fprintf(stderr, "EMU: %s\n", what);
        abort();
    }
    fprintf(stderr, "EMU: %s (block %u,%u,%u thread %u,%u,%u)\n", what, emu_t.bid.x, emu_t.bid.y, emu_t.bid.z,
            emu_t.tid.x, emu_t.tid.y, emu_t.tid.z);
    abort();
}

// ---- what cudaPointerGetAttributes knows: the emulated device allocations and the pinned host ones
static std::mutex g_ptr_mu;
static std::map<uintptr_t, std::pair<size_t, cudaMemoryType>> g_ptrs; /* start -> (bytes, type) */
static void ptr_add(void *p, size_t n, cudaMemoryType t) {
    std::lock_guard<std::mutex> l(g_ptr_mu);
    g_ptrs[(uintptr_t)p] = {n, t};
}
static void ptr_del(void *p) {
    std::lock_guard<std::mutex> l(g_ptr_mu);
    g_ptrs.erase((uintptr_t)p);
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    std::lock_guard<std::mutex> l(g_ptr_mu);
    a->type = cudaMemoryTypeUnregistered;
    a->device = 0;
    a->devicePointer = a->hostPointer = nullptr;
    auto it = g_ptrs.upper_bound((uintptr_t)p);
    if (it != g_ptrs.begin()) {
        --it;
        if ((uintptr_t)p < it->first + it->second.first) {
            a->type = it->second.second;
            if (a->type == cudaMemoryTypeDevice) a->devicePointer = (void *)p;
            else a->hostPointer = a->devicePointer = (void *)p;
        }
    }
    return cudaSuccess;
}

// ---- graph capture: while capturing, queued work is recorded instead of run
struct emu_graph { std::vector<std::function<void()>> nodes; };
static emu_graph *g_capture = nullptr;
long emu_graph_replays = 0;
static bool record(std::function<void()> f) {
    if (!g_capture) return false;
    g_capture->nodes.push_back(std::move(f));
    return true;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (g_capture) return cudaErrorInvalidValue;
    g_capture = new emu_graph();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!g_capture) return cudaErrorInvalidValue;
    *g = g_capture;
    g_capture = nullptr;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) {
    *e = new emu_graph(*g);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    emu_graph_replays++;
    for (auto &n : e->nodes) n();
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { delete e; return cudaSuccess; }
cudaError_t cudaMallocHost(void **p, size_t n) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    *p = malloc(n ? n : 1);
    if (*p) ptr_add(*p, n ? n : 1, cudaMemoryTypeHost);
    return *p ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned) { return cudaMallocHost(p, n); }
cudaError_t cudaFreeHost(void *p) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    ptr_del(p);
    free(p);
    return cudaSuccess;
}
void emu_enqueue(std::function<void()> fn) {
    if (!record(fn)) fn();
}
cudaError_t cudaLaunchHostFunc(cudaStream_t, cudaHostFn_t fn, void *arg) {
    emu_enqueue([=]() { fn(arg); });
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = nullptr; return cudaSuccess; }

// ---- the two engines that run a block's CUDA threads ---------------------------------------------------------
// Fibers (default): every CUDA thread is a coroutine with its own stack on this OS thread; it runs until it
// waits on a barrier (or exits), then the block's scheduler resumes the next one. Rounds alternate forward
// and backward order, so a missing barrier between a write and a read of another thread shows in one of
// them. A round in which no barrier completes and no thread exits is a deadlock (a barrier some threads
// never reach).
// OS threads (EMU_THREADS=1): one std::thread per CUDA thread, preemptive interleavings (slower by ~10×).
static bool use_os_threads() {
    static const bool v = getenv("EMU_THREADS") && atoi(getenv("EMU_THREADS")) == 1;
    return v;
}
static void thread_exit_block(emu_thread &e) {
    e.blk->warps[e.warp].exited.fetch_add(1);
    e.blk->warps[e.warp].bar.drop();
    e.blk->bar.drop();
}
static void run_block_threads(std::vector<emu_thread> &ts, const std::function<void()> &fn) {
    std::vector<std::thread> th;
    th.reserve(ts.size());
    for (auto &e : ts)
        th.emplace_back([&]() {
            emu_cur = &e;
            fn();
            thread_exit_block(e);
        });
    for (auto &x : th) x.join();
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

// The context switch: callee-saved registers, the SSE and x87 control words on the old stack, the stack
// pointer swapped. (ucontext's swapcontext also saves the signal mask: a system call per switch, which was
// most of the run time.) A new fiber's stack is laid out as if it had been switched out just before calling
// fiber_main. x86-64 System V only.
extern "C" void emu_ctx_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl emu_ctx_switch
    .type emu_ctx_switch, @function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");

namespace {
struct Fiber {
    void *sp;   /* saved stack pointer while switched out */
    emu_thread *t;
    bool done;
    void *fake; /* ASan's fake stack of this fiber while it is switched out */
};
const size_t FIBER_STACK = 128 << 10;
std::vector<void *> g_stacks;          /* reused across blocks and launches */
void *g_sched_sp;
Fiber *g_fcur;
const std::function<void()> *g_fn;
long g_progress;                        /* barriers completed + threads exited: the deadlock check */
const void *g_sched_bottom;            /* the scheduler's stack, for ASan's switch annotations */
size_t g_sched_size;

void to_scheduler(Fiber *f, bool exiting) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f->fake, g_sched_bottom, g_sched_size);
#endif
    emu_ctx_switch(&f->sp, g_sched_sp);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake, &g_sched_bottom, &g_sched_size);
#endif
    emu_cur = f->t;
}
[[noreturn]] void fiber_main() {
    Fiber *f = g_fcur;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g_sched_bottom, &g_sched_size);
#endif
    emu_cur = f->t;
    (*g_fn)();
    thread_exit_block(*f->t);
    f->done = true;
    g_progress++;
    to_scheduler(f, true);
    abort(); /* a finished fiber is never resumed */
}
// A fresh stack whose first switch-in "returns" into fiber_main with the ABI's alignment.
void *fiber_stack_init(void *base) {
    uint64_t *top = (uint64_t *)((char *)base + FIBER_STACK);
    uint32_t ctl[2];
    asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(ctl[0]), "=m"(ctl[1]));
    top[-1] = 0;                        /* padding: at fiber_main's entry rsp = top - 8, as after a call */
    top[-2] = (uint64_t)(uintptr_t)&fiber_main;
    for (int r = 3; r <= 8; r++) top[-r] = 0; /* rbp (0: the end of the frame chain), rbx, r12-r15 */
    uint64_t c;
    memcpy(&c, ctl, 8);
    top[-9] = c;
    return top - 9;
}
}  // namespace

void emu_bar::init(int n) {
    expected = n, arrived = 0, gen = 0;
    if (use_os_threads()) os = std::make_unique<std::barrier<>>(n);
}
void emu_bar::wait() {
    if (os) return os->arrive_and_wait();
    const unsigned g = gen;
    if (++arrived == expected) {
        arrived = 0, gen++, g_progress++;
        return;
    }
    Fiber *self = g_fcur;
    while (gen == g) to_scheduler(self, false);
}
void emu_bar::drop() {
    if (os) return os->arrive_and_drop();
    if (--expected == arrived && arrived > 0) arrived = 0, gen++, g_progress++;
}

static void run_block_fibers(std::vector<emu_thread> &ts, const std::function<void()> &fn) {
    const size_t n = ts.size();
    while (g_stacks.size() < n) {
        void *st = mmap(nullptr, FIBER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                        0);
        if (st == MAP_FAILED) fail("fiber stack mmap");
        g_stacks.push_back(st);
    }
    std::vector<Fiber> fs(n);
    g_fn = &fn;
    for (size_t i = 0; i < n; i++) {
        Fiber &f = fs[i];
        f.t = &ts[i], f.done = false, f.fake = nullptr;
        f.sp = fiber_stack_init(g_stacks[i]);
    }
    size_t live = n;
    for (int round = 0; live > 0; round++) {
        const long p0 = g_progress;
        for (size_t k = 0; k < n; k++) {
            Fiber &f = fs[round & 1 ? n - 1 - k : k];
            if (f.done) continue;
            g_fcur = &f;
            void *fake = nullptr;
#if EMU_ASAN
            __sanitizer_start_switch_fiber(&fake, g_stacks[(size_t)(&f - fs.data())], FIBER_STACK);
#endif
            emu_ctx_switch(&g_sched_sp, f.sp);
#if EMU_ASAN
            __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
            live -= f.done;
        }
        if (live > 0 && g_progress == p0) {
            emu_cur = fs[0].t;
            emu_fail("deadlock: threads wait on a barrier that the others never reach");
        }
    }
    emu_cur = nullptr;
}

void emu_run(const void *key, dim3 grid, dim3 block, size_t smem, const std::function<void()> &fn) {
    if (record([=]() { emu_run(key, grid, block, smem, fn); })) return;
    emu_launches++;
    const unsigned nt = block.x * block.y * block.z;
    if (nt == 0 || nt > 1024) fail("block size");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) fail("grid size");
    if (smem > 48 * 1024) {
        auto it = emu_smem_optin.find(key);
        if (!key || it == emu_smem_optin.end() || (size_t)it->second < smem) fail("dynamic smem > 48 KB without opt-in");
    }
    if (smem > 227 * 1024) fail("dynamic smem > 227 KB");
    const unsigned nw = (nt + 31) / 32;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu_block blk;
                blk.bar.init((int)nt);
                blk.warps = std::make_unique<emu_warp[]>(nw);
                for (unsigned w = 0; w < nw; w++) {
                    blk.warps[w].lanes = (int)std::min(32u, nt - 32 * w);
                    blk.warps[w].bar.init(blk.warps[w].lanes);
                }
                blk.dyn.assign(smem, (char)0xFF); /* NaN garbage: reading unwritten shared memory shows */
                blk.stat.reset(new char[EMU_STATIC_SMEM]);
                std::vector<emu_thread> ts(nt);
                for (unsigned t = 0; t < nt; t++) {
                    emu_thread &e = ts[t];
                    e.tid = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                    e.bid = dim3(bx, by, bz);
                    e.bdim = block;
                    e.gdim = grid;
                    e.blk = &blk;
                    e.warp = (int)(t / 32), e.lane = (int)(t % 32);
                    e.stat_off = 0;
                    e.count_calls = 0;
                }
                if (use_os_threads()) run_block_threads(ts, fn);
                else run_block_fibers(ts, fn);
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
cudaError_t cudaStreamSynchronize(cudaStream_t) { return g_capture ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return g_capture ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t n) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p) return cudaErrorInvalidValue;
    memset(*p, 0xCD, (n + 255) / 256 * 256);
    ptr_add(*p, n ? n : 1, cudaMemoryTypeDevice);
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    if (p) ptr_del(p);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *d, int v, size_t n) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "tools/cuda_emu (CPU emulation)");
    p->major = 9, p->minor = 0;
    cudaDeviceGetAttribute(&p->multiProcessorCount, cudaDevAttrMultiProcessorCount, 0);
    p->totalGlobalMem = (size_t)80 << 30;
    p->sharedMemPerBlock = 48 * 1024;
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    if (!record([=]() { memmove(d, s, n); })) memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) {
    if (!record([=]() { memset(d, v, n); })) memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = nullptr; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return g_capture ? cudaErrorStreamCaptureUnsupported : cudaSuccess; }
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
                              const cublasLtMatmulAlgo_t *, void *ws, size_t wsn, cudaStream_t st) {
    if (g_capture) { /* the descriptors and host scalars may be gone at replay: keep copies */
        emu_lt_desc dd = *d;
        emu_lt_layout a = *la, b = *lb, c = *lc, dl = *ld_;
        const bool same_cd = lc == ld_; /* the call below checks C and D share one layout, as musae passes it */
        float al = *(const float *)alpha, be = *(const float *)beta;
        record([=]() mutable {
            const cublasStatus_t r = cublasLtMatmul(nullptr, &dd, &al, A, &a, B, &b, &be, C, &c, D, same_cd ? &c : &dl,
                                                    nullptr, ws, wsn, st);
            if (r != CUBLAS_STATUS_SUCCESS) emu_fail("a captured cublasLtMatmul fails at replay");
        });
        return 0;
    }
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

cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (void *)0x4; return 0; }
cublasStatus_t cublasDestroy(cublasHandle_t) { return 0; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return 0; }
cublasStatus_t cublasGetPointerMode(cublasHandle_t, cublasPointerMode_t *m) { *m = CUBLAS_POINTER_MODE_HOST; return 0; }
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                            cudaDataType_t bt, int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t) {
    if (m < 0 || n < 0 || k < 0 || at != bt || ct != CUDA_R_32F || (at != CUDA_R_32F && at != CUDA_R_16BF) ||
        (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_PEDANTIC) || lda < (ta ? k : m) || lda < 1 ||
        ldb < (tb ? n : k) || ldb < 1 || ldc < m || ldc < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    const float al = *(const float *)alpha, be = *(const float *)beta; /* host pointer mode */
    emu_enqueue([=]() {
        emu_launches++;
        float *Cp = (float *)C;
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < m; i++) {
                float s = 0;
                for (int64_t p0 = 0; p0 < k; p0 += 16) {
                    float part = 0;
                    for (int64_t p = p0; p < k && p < p0 + 16; p++) {
                        const float a = ld_elem(A, at, ta ? p + i * lda : i + p * lda);
                        const float b = ld_elem(B, bt, tb ? j + p * ldb : p + j * ldb);
                        part += a * b;
                    }
                    s += part;
                }
                float r = al * s;
                if (be != 0) r += be * Cp[i + j * ldc];
                Cp[i + j * ldc] = r;
            }
    });
    return 0;
}
