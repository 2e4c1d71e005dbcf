/* tools/cuda_emu self-test: the emulated CUDA semantics the kernels rely on, each against its definition
 * (CUDA programming guide, CUB documentation), so an emulator change that breaks one shows here and not as a
 * puzzling kernel failure. Compiled by run.sh through transform.py like any kernel source; exit 0 = passed. */
#include <cub/cub.cuh>

#include <stdio.h>
#include <string.h>

#include <vector>

#include "kernels/cuda/cuda_common.cuh"

static int g_fail = 0;
#define EXPECT(cond, ...)                                                                                          \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                   \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fprintf(stderr, "\n");                                                                                 \
            g_fail++;                                                                                              \
        }                                                                                                          \
    } while (0)

// out[t] = {xor 1, up 3, down 5, idx 7} of v = 100·warp + lane; ballot of odd lanes
__global__ void shuffle_kernel(int *out, unsigned *ballot) {
    const int t = threadIdx.x, v = 100 * (t >> 5) + (t & 31);
    out[4 * t + 0] = __shfl_xor_sync(0xffffffffu, v, 1);
    out[4 * t + 1] = __shfl_up_sync(0xffffffffu, v, 3);
    out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, 5);
    out[4 * t + 3] = __shfl_sync(0xffffffffu, v, 7);
    const unsigned b = __ballot_sync(0xffffffffu, t & 1);
    if ((t & 31) == 0) ballot[t >> 5] = b;
}

// two __syncthreads_count calls back to back (no barrier between), then atomics from every thread of the grid
__global__ void count_atomic_kernel(int *counts, unsigned long long *sum, unsigned *mn, float *fsum) {
    const int t = threadIdx.x;
    const int a = __syncthreads_count(t % 3 == 0);
    const int b = __syncthreads_count(t < 5);
    const int c = __syncthreads_count(1);
    if (t == 0) counts[blockIdx.x * 3 + 0] = a, counts[blockIdx.x * 3 + 1] = b, counts[blockIdx.x * 3 + 2] = c;
    atomicAdd(sum, (unsigned long long)(blockIdx.x * blockDim.x + t));
    atomicMin(mn, 1000u + 7u * (unsigned)((blockIdx.x * blockDim.x + t) % 13));
    atomicAdd(fsum, 0.5f);
}

// the block's inclusive and exclusive prefix sums of t + 1, and the aggregate, through shared memory
__global__ void block_scan_kernel(int *incl, int *excl, int *agg) {
    typedef cub::BlockScan<int, 64> Scan;
    __shared__ typename Scan::TempStorage ts;
    int i, e, a;
    Scan(ts).InclusiveSum((int)threadIdx.x + 1, i);
    __syncthreads();
    Scan(ts).ExclusiveSum((int)threadIdx.x + 1, e, a);
    incl[threadIdx.x] = i;
    excl[threadIdx.x] = e;
    if (threadIdx.x == 0) *agg = a;
}

struct Params {
    int add;
};
__global__ void add_kernel(int *x, Params p) { x[threadIdx.x] += p.add; }

int main(void) {
    // shuffles and ballots
    {
        int *d;
        unsigned *bd;
        CUDA_CHECK(cudaMalloc(&d, sizeof(int) * 4 * 64));
        CUDA_CHECK(cudaMalloc(&bd, sizeof(unsigned) * 2));
        shuffle_kernel<<<1, 64, 0, 0>>>(d, bd);
        std::vector<int> h(4 * 64);
        unsigned hb[2];
        CUDA_CHECK(cudaMemcpy(h.data(), d, sizeof(int) * h.size(), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(hb, bd, sizeof hb, cudaMemcpyDeviceToHost));
        for (int t = 0; t < 64; t++) {
            const int w = 100 * (t >> 5), l = t & 31;
            EXPECT(h[4 * t + 0] == w + (l ^ 1), "shfl_xor lane %d: %d", t, h[4 * t + 0]);
            EXPECT(h[4 * t + 1] == w + (l >= 3 ? l - 3 : l), "shfl_up lane %d: %d", t, h[4 * t + 1]);
            EXPECT(h[4 * t + 2] == w + (l + 5 < 32 ? l + 5 : l), "shfl_down lane %d: %d", t, h[4 * t + 2]);
            EXPECT(h[4 * t + 3] == w + 7, "shfl lane %d: %d", t, h[4 * t + 3]);
        }
        EXPECT(hb[0] == 0xaaaaaaaau && hb[1] == 0xaaaaaaaau, "ballot %08x %08x", hb[0], hb[1]);
        CUDA_CHECK(cudaFree(d));
        CUDA_CHECK(cudaFree(bd));
    }
    // __syncthreads_count and atomics over 3 blocks of 96 threads
    {
        int *c;
        unsigned long long *s;
        unsigned *m;
        float *f;
        CUDA_CHECK(cudaMalloc(&c, sizeof(int) * 9));
        CUDA_CHECK(cudaMalloc(&s, sizeof *s));
        CUDA_CHECK(cudaMalloc(&m, sizeof *m));
        CUDA_CHECK(cudaMalloc(&f, sizeof *f));
        CUDA_CHECK(cudaMemset(s, 0, sizeof *s));
        CUDA_CHECK(cudaMemset(m, 0xff, sizeof *m));
        CUDA_CHECK(cudaMemset(f, 0, sizeof *f));
        count_atomic_kernel<<<3, 96, 0, 0>>>(c, s, m, f);
        int hc[9];
        unsigned long long hs;
        unsigned hm;
        float hf;
        CUDA_CHECK(cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(&hs, s, sizeof hs, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(&hm, m, sizeof hm, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(&hf, f, sizeof hf, cudaMemcpyDeviceToHost));
        for (int b = 0; b < 3; b++)
            EXPECT(hc[3 * b] == 32 && hc[3 * b + 1] == 5 && hc[3 * b + 2] == 96, "syncthreads_count block %d: %d %d %d",
                   b, hc[3 * b], hc[3 * b + 1], hc[3 * b + 2]);
        EXPECT(hs == 288ull * 287 / 2, "atomicAdd u64: %llu", hs);
        EXPECT(hm == 1000u, "atomicMin: %u", hm);
        EXPECT(hf == 144.0f, "atomicAdd f32: %g", hf);
        CUDA_CHECK(cudaFree(c));
        CUDA_CHECK(cudaFree(s));
        CUDA_CHECK(cudaFree(m));
        CUDA_CHECK(cudaFree(f));
    }
    // cub::BlockScan
    {
        int *i, *e, *a;
        CUDA_CHECK(cudaMalloc(&i, sizeof(int) * 64));
        CUDA_CHECK(cudaMalloc(&e, sizeof(int) * 64));
        CUDA_CHECK(cudaMalloc(&a, sizeof(int)));
        block_scan_kernel<<<1, 64, 0, 0>>>(i, e, a);
        int hi[64], he[64], ha;
        CUDA_CHECK(cudaMemcpy(hi, i, sizeof hi, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(he, e, sizeof he, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(&ha, a, sizeof ha, cudaMemcpyDeviceToHost));
        for (int t = 0; t < 64; t++)
            EXPECT(hi[t] == (t + 1) * (t + 2) / 2 && he[t] == t * (t + 1) / 2, "BlockScan thread %d: %d %d", t, hi[t],
                   he[t]);
        EXPECT(ha == 64 * 65 / 2, "BlockScan aggregate %d", ha);
        CUDA_CHECK(cudaFree(i));
        CUDA_CHECK(cudaFree(e));
        CUDA_CHECK(cudaFree(a));
    }
    // cub::DeviceRadixSort::SortPairs on bits [0, 3): stable, whole keys out; too little temp storage refused
    {
        const int n = 10;
        const int kin[n] = {13, 2, 5, 8, 3, 10, 0, 7, 5, 2}, vin[n] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        int *k, *v, *ko, *vo;
        CUDA_CHECK(cudaMalloc(&k, sizeof kin));
        CUDA_CHECK(cudaMalloc(&v, sizeof vin));
        CUDA_CHECK(cudaMalloc(&ko, sizeof kin));
        CUDA_CHECK(cudaMalloc(&vo, sizeof vin));
        CUDA_CHECK(cudaMemcpy(k, kin, sizeof kin, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(v, vin, sizeof vin, cudaMemcpyHostToDevice));
        size_t bytes = 0;
        CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const int *)k, ko, (const int *)v, vo, n, 0, 3));
        void *tmp;
        CUDA_CHECK(cudaMalloc(&tmp, bytes));
        size_t less = bytes - 1;
        EXPECT(cub::DeviceRadixSort::SortPairs(tmp, less, (const int *)k, ko, (const int *)v, vo, n, 0, 3) != cudaSuccess,
               "SortPairs accepted %zu bytes of temp storage (needs %zu)", less, bytes);
        CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp, bytes, (const int *)k, ko, (const int *)v, vo, n, 0, 3));
        int hk[n], hv[n];
        CUDA_CHECK(cudaMemcpy(hk, ko, sizeof hk, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(hv, vo, sizeof hv, cudaMemcpyDeviceToHost));
        // low 3 bits: 13→5 2→2 5→5 8→0 3→3 10→2 0→0 7→7 5→5 2→2; stable by those
        const int ek[n] = {8, 0, 2, 10, 2, 3, 13, 5, 5, 7}, ev[n] = {3, 6, 1, 5, 9, 4, 0, 2, 8, 7};
        EXPECT(!memcmp(hk, ek, sizeof ek) && !memcmp(hv, ev, sizeof ev), "SortPairs order");
        // DeviceScan in place
        CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, bytes, (const int *)k, k, n));
        CUDA_CHECK(cub::DeviceScan::ExclusiveSum(tmp, bytes, k, k, n));
        CUDA_CHECK(cudaMemcpy(hk, k, sizeof hk, cudaMemcpyDeviceToHost));
        int acc = 0, bad = 0;
        for (int i = 0; i < n; i++) bad += hk[i] != acc, acc += kin[i];
        EXPECT(bad == 0, "ExclusiveSum in place: %d wrong", bad);
        CUDA_CHECK(cudaFree(k));
        CUDA_CHECK(cudaFree(v));
        CUDA_CHECK(cudaFree(ko));
        CUDA_CHECK(cudaFree(vo));
        CUDA_CHECK(cudaFree(tmp));
    }
    // graph capture: a launch keeps the arguments of the capture (a struct read through a pointer at capture)
    {
        int *x;
        CUDA_CHECK(cudaMalloc(&x, sizeof(int) * 32));
        CUDA_CHECK(cudaMemset(x, 0, sizeof(int) * 32));
        cudaStream_t s;
        CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        Params p = {3};
        const Params *pp = &p;
        CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        add_kernel<<<1, 32, 0, s>>>(x, *pp);
        cudaGraph_t g;
        CUDA_CHECK(cudaStreamEndCapture(s, &g));
        cudaGraphExec_t e;
        CUDA_CHECK(cudaGraphInstantiate(&e, g, 0));
        p.add = 100; // a graph replays the captured value, 3
        CUDA_CHECK(cudaGraphLaunch(e, s));
        CUDA_CHECK(cudaGraphLaunch(e, s));
        int h[32];
        CUDA_CHECK(cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost));
        EXPECT(h[0] == 6 && h[31] == 6, "graph replay: %d %d (want 6)", h[0], h[31]);
        CUDA_CHECK(cudaGraphExecDestroy(e));
        CUDA_CHECK(cudaGraphDestroy(g));
        CUDA_CHECK(cudaFree(x));
    }
    printf("cuda_emu selftest: %s\n", g_fail ? "FAILED" : "passed");
    return g_fail ? 1 : 0;
}
