/* C[m, n] = A[m, k] · B[n, k]ᵀ (+ C): nn.Linear over many rows (teacher forcing, capture, prompts), with FMA
 * micro-kernels of our own instead of OpenBLAS, on x86-64-v3 (AVX2) and v4 (AVX-512).
 *
 * Why not OpenBLAS: cpu_gemm must give results that do not depend on the thread count, so it cuts a product
 * into fixed tiles, one single-threaded sgemm each, and every tile packs its slices of both operands again:
 * on a musicgen-small prefill 19% of the CPU time went to OpenBLAS's packing (the weight's transposing
 * copy alone 10.5%). Here each element of C is one fixed sequence of operations that depends only on its
 * row of A and its row of B (never on its place in a tile, the tiling or the thread count), so the work can
 * be cut in any way: each thread packs a panel of PW weight rows once per product and runs every row of A
 * against it; A is never packed (its values are broadcast straight from the rows).
 *
 * The sequence for c = C[i, j]: for each block of KC positions p (in order), s = 0; s = fma(A[i,p], B[j,p], s)
 * for p in the block in order; then c = s for the first block when beta = 0, else c = c + s. The AVX2 and
 * AVX-512 kernels run exactly this (the vector lanes are different j), so both give the same bits; the
 * reference gemm_nt_fma_ref runs it with scalar fmaf, and so does the baseline level (MUSAE_ISA=baseline on a
 * CPU with FMA: slow, but the same bits). A CPU without FMA has no fast fmaf, so cpu_linear keeps OpenBLAS
 * there (cpu_gemm_nt_fma_ok says which); on such a CPU there is no other level to agree with.
 *
 * Blocking: each weight panel (PW = 32 rows of B, all k) is held [k][PW]; for each KC block the PW × KC
 * slice stays in L1/L2 while every group of MR rows of A streams past it. The AVX-512 kernel takes a whole
 * panel (32 columns), the AVX2 and scalar kernels its two 16-column halves, so one layout serves every level.
 *
 * Weights packed once (cpu_pack_weights): a model's matrices can be held in this panel layout from load,
 * [ceil(n/PW)][k][PW] with the rows past n zero, so a product reads its panels where they lie instead of
 * transposing every panel again (cpu_gemm_nt_fma_packed; the bits are those of the unpacked call, packing
 * only moves the values). */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"

/* PFD: the AVX-512 kernel prefetches the weight rows PFD positions ahead into L1 (the panel's KC slice,
 * 64 KiB, does not fit L1; +4 % on the prefill's shapes, one thread). GROUP: with packed weights a thread
 * takes up to GROUP panels at a time and runs them block by block (KC), so the activations' block stays in
 * L2 across those panels (+2-3 %). Neither changes any element's sequence of operations. */
enum { KC = 512, MC = 768, PW = CPU_PACK_W, MR_512 = 12, MR_256 = 6, CW_256 = 16, PFD = 16, GROUP = 4 };
#define PARALLEL_FLOPS 4.0e6 /* below this a team costs more than it saves (as cpu_gemm) */

/* ---- reference: the per-element sequence above, plain loops ---- */
void gemm_nt_fma_ref(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float cij = c[i * ldc + j];
            for (int64_t p0 = 0; p0 < k; p0 += KC) {
                float s = 0.0f;
                for (int64_t p = p0; p < k && p < p0 + KC; p++) s = fmaf(a[i * lda + p], b[j * ldb + p], s);
                cij = (p0 == 0 && beta == 0.0f) ? s : cij + s;
            }
            if (k == 0 && beta == 0.0f) cij = 0.0f;
            c[i * ldc + j] = cij;
        }
}

/* dst[q][r] = src[r][q] for an 8 x 8 block (row strides lds, ldd): the packers' transposition, 24 shuffles
 * instead of 64 scalar stores that each miss L1. Returns nonzero when a value is not finite (all exponent bits
 * set): the load-time packer checks the weights while it moves them, instead of reading them once more. */
__attribute__((target("arch=x86-64-v3"))) static int transpose8(float *dst, int64_t ldd, const float *src,
                                                                 int64_t lds) {
    __m256 r[8], t[8], u[8];
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    __m256i bad = _mm256_setzero_si256();
    for (int i = 0; i < 8; i++) {
        r[i] = _mm256_loadu_ps(src + i * lds);
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(r[i]), expo), expo));
    }
    for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
    return !_mm256_testz_si256(bad, bad);
}

/* Rows r0 .. r0 + nr - 1 of src (stride lds, k values each) into dst[p][w] (w >= nr), zeros past nr: both
 * packers (B's panels, A's row groups). Blocks of 8 rows x 8 values go through transpose8, the rest by
 * scalar copies; the bits are the same copies either way. */
static int pack_t(float *dst, int w, const float *src, int64_t lds, int64_t nr, int64_t k) {
    if (nr < w) memset(dst, 0, sizeof(float) * (size_t)(k * w));
    int64_t r = 0, k8 = k / 8 * 8;
    int bad = 0;
    for (; r + 8 <= nr && musae_isa_get() >= MUSAE_ISA_AVX2; r += 8) {
        for (int64_t p = 0; p < k8; p += 8) bad |= transpose8(dst + p * w + r, w, src + r * lds + p, lds);
        for (int64_t rr = r; rr < r + 8; rr++)
            for (int64_t p = k8; p < k; p++) dst[p * w + rr] = src[rr * lds + p], bad |= !isfinite(src[rr * lds + p]);
    }
    for (; r < nr; r++)
        for (int64_t p = 0; p < k; p++) dst[p * w + r] = src[r * lds + p], bad |= !isfinite(src[r * lds + p]);
    return bad;
}

/* ---- AVX-512: MR_512 rows × 32 columns, 16 accumulators ---- */
__attribute__((target("arch=x86-64-v4"))) static void kernel_512(int64_t kc, const float *ap, const float *bp,
                                                                  float *c, int64_t ldc, int first) {
    __m512 acc[MR_512][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR_512; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(bp + p * PW), b1 = _mm512_loadu_ps(bp + p * PW + 16);
        _mm_prefetch((const char *)(bp + (p + PFD) * PW), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + (p + PFD) * PW + 16), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int r = 0; r < MR_512; r++) {
            const __m512 x = _mm512_set1_ps(ap[p * MR_512 + r]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR_512; r++) {
        float *cr = c + r * ldc;
        if (first) {
            _mm512_storeu_ps(cr, acc[r][0]), _mm512_storeu_ps(cr + 16, acc[r][1]);
        } else {
            _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]));
            _mm512_storeu_ps(cr + 16, _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc[r][1]));
        }
    }
}

/* ---- AVX2: MR_256 rows × 16 columns (half a panel), 12 accumulators ---- */
__attribute__((target("arch=x86-64-v3"))) static void kernel_256(int64_t kc, const float *ap, const float *bp,
                                                                  float *c, int64_t ldc, int first) {
    __m256 acc[MR_256][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR_256; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(bp + p * PW), b1 = _mm256_loadu_ps(bp + p * PW + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR_256; r++) {
            const __m256 x = _mm256_broadcast_ss(ap + p * MR_256 + r);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR_256; r++) {
        float *cr = c + r * ldc;
        if (first) {
            _mm256_storeu_ps(cr, acc[r][0]), _mm256_storeu_ps(cr + 8, acc[r][1]);
        } else {
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc[r][0]));
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[r][1]));
        }
    }
}

/* ---- below AVX2 (MUSAE_ISA=baseline on a CPU with FMA): the same sequence with scalar fmaf ---- */
static void kernel_scalar(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int first) {
    for (int r = 0; r < MR_256; r++)
        for (int j = 0; j < CW_256; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < kc; p++) s = fmaf(ap[p * MR_256 + r], bp[p * PW + j], s);
            c[r * ldc + j] = first ? s : c[r * ldc + j] + s;
        }
}

typedef void (*kernel_fn)(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int first);

/* One packed panel (columns j0 .. j0 + nj - 1) against the packed rows (groups of mr; the last zero-padded),
 * cw columns per kernel call (the whole panel or each half). Full tiles write C in place; a tile at the right
 * or bottom edge goes through a local tile, with the same operations for its elements as everywhere else. */
static void panel_block(kernel_fn kern, int mr, int cw, const float *pk, const float *pa, int64_t m, int64_t k,
                        int64_t p0, float beta, float *c, int64_t ldc, int64_t j0, int64_t nj, int gelu) {
    float tile[MR_512 * PW] __attribute__((aligned(64)));
    const int64_t kc = p0 + KC < k ? KC : k - p0;
    const int first = p0 == 0 && beta == 0.0f;
    for (int64_t h0 = 0; h0 < nj; h0 += cw) {
        const int64_t nh = nj - h0 < cw ? nj - h0 : cw;
        const float *bp = pk + p0 * PW + h0;
        for (int64_t i0 = 0; i0 < m; i0 += mr) {
            const int64_t mi = m - i0 < mr ? m - i0 : mr;
            const float *ap = pa + i0 * k + p0 * mr; /* group i0 / mr starts at (i0 / mr) · k · mr = i0 · k */
            float *ct = c + i0 * ldc + j0 + h0;
            if (mi == mr && nh == cw) {
                kern(kc, ap, bp, ct, ldc, first);
            } else {
                memset(tile, 0, sizeof tile);
                for (int64_t r = 0; r < mi; r++) memcpy(tile + r * cw, ct + r * ldc, sizeof(float) * (size_t)nh);
                kern(kc, ap, bp, tile, cw, first);
                for (int64_t r = 0; r < mi; r++) memcpy(ct + r * ldc, tile + r * cw, sizeof(float) * (size_t)nh);
            }
            if (gelu && p0 + kc == k) /* the tile is final and still in L1 */
                for (int64_t r = 0; r < mi; r++) cpu_gelu_range(ct + r * ldc, ct + r * ldc, nh);
        }
    }
}

/* A thread's scratch, kept for the thread's life: a fresh one per product came from mmap and its pages were
 * zeroed by the kernel on every call (10% of a prefill). Here one panel per OpenMP worker (k × PW floats,
 * 512 KiB for k = 4096) and the packed rows of a chunk per calling thread (MC × k floats); gemm_amx.c keeps its
 * operands' bf16 parts in slots of its own. Freed when the thread ends (a pthread key's destructor: capture's
 * decoder thread ends before the process, and LSan would see them). */
typedef struct {
    void *buf[CPU_SCRATCH_SLOTS];
    size_t cap[CPU_SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *p) {
    scratch_set *s = p;
    for (int i = 0; i < CPU_SCRATCH_SLOTS; i++) free(s->buf[i]);
    free(s);
}
static void key_make(void) { MUSAE_ASSERT(!pthread_key_create(&g_key, scratch_free), "gemm_nt_fma: pthread_key_create"); }

void *cpu_gemm_scratch(int slot, size_t bytes) {
    MUSAE_ASSERT(slot >= 0 && slot < CPU_SCRATCH_SLOTS, "cpu_gemm_scratch: slot %d", slot);
    pthread_once(&g_key_once, key_make);
    scratch_set *s = pthread_getspecific(g_key);
    if (!s) {
        s = musae_xcalloc(1, sizeof *s);
        MUSAE_ASSERT(!pthread_setspecific(g_key, s), "gemm_nt_fma: pthread_setspecific");
    }
    if (bytes > s->cap[slot]) {
        free(s->buf[slot]);
        /* large buffers on 2 MiB pages where the kernel allows (madvise mode): the AMX kernel's operands span
         * megabytes and its tile loads jump between them, which 4 KiB pages turn into TLB misses */
        const size_t align = bytes >= ((size_t)1 << 21) ? (size_t)1 << 21 : 64;
        bytes = (bytes + align - 1) / align * align; /* aligned_alloc wants a multiple of the alignment */
        s->buf[slot] = aligned_alloc(align, bytes);
        if (s->buf[slot] && align > 64) madvise(s->buf[slot], bytes, MADV_HUGEPAGE);
        MUSAE_ASSERT(s->buf[slot], "cpu_gemm_scratch: out of memory for %zu bytes of scratch", bytes);
        s->cap[slot] = bytes;
    }
    return s->buf[slot];
}

static float *scratch(int rows, int64_t floats) {
    return cpu_gemm_scratch(rows ? CPU_SCRATCH_FMA_ROWS : CPU_SCRATCH_FMA_PANEL, sizeof(float) * (size_t)floats);
}

int cpu_gemm_nt_fma_ok(void) { return musae_isa_cpu() >= MUSAE_ISA_AVX2; }

/* The product with B either as rows (b, ldb: each panel packed into the thread's scratch) or packed once
 * (bp: panel t at bp + t·k·PW). */
static void gemm_run(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                     const float *bp, float beta, float *c, int64_t ldc, int gelu) {
    MUSAE_ASSERT(cpu_gemm_nt_fma_ok(), "cpu_gemm_nt_fma needs a CPU with AVX2 + FMA (this one: %s)",
                 musae_isa_name(musae_isa_cpu()));
    MUSAE_ASSERT(beta == 0.0f || beta == 1.0f, "cpu_gemm_nt_fma: beta %g (0 or 1 only)", (double)beta);
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++) {
            if (beta == 0.0f) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
            if (gelu) cpu_gelu_range(c + i * ldc, c + i * ldc, n);
        }
        return;
    }
    const musae_isa isa = musae_isa_get();
    const int wide = isa >= MUSAE_ISA_AVX512;
    const int mr = wide ? MR_512 : MR_256, cw = wide ? PW : CW_256;
    const kernel_fn kern = wide ? kernel_512 : isa == MUSAE_ISA_AVX2 ? kernel_256 : kernel_scalar;
    const int64_t panels = (n + PW - 1) / PW;
    /* rows in chunks of MC (a multiple of both MR): each chunk reads (or packs) every panel once more */
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
        const int64_t mc = m - i0 < MC ? m - i0 : MC, groups = (mc + mr - 1) / mr;
        float *pa = scratch(1, groups * mr * k);
        const float *ai = a + i0 * lda;
        float *ci = c + i0 * ldc;
        const int team = (double)mc * (double)n * (double)k >= PARALLEL_FLOPS && panels > 1;
#pragma omp parallel if (team)
        {
#pragma omp for schedule(static)
            for (int64_t g = 0; g < groups; g++)
                pack_t(pa + g * mr * k, mr, ai + g * mr * lda, lda, mc - g * mr < mr ? mc - g * mr : mr, k);
            float *own = bp ? NULL : scratch(0, k * PW);
            /* groups small enough that every thread still gets two or more (balance on a shared host) */
            int64_t group = bp ? panels / (2 * omp_get_num_threads()) : 1;
            group = group < 1 ? 1 : group > GROUP ? GROUP : group;
            const int64_t n_groups = (panels + group - 1) / group;
#pragma omp for schedule(dynamic, 1)
            for (int64_t gi = 0; gi < n_groups; gi++) {
                const int64_t t0 = gi * group, t1 = t0 + group < panels ? t0 + group : panels;
                if (!bp) pack_t(own, PW, b + t0 * PW * ldb, ldb, n - t0 * PW < PW ? n - t0 * PW : PW, k);
                for (int64_t p0 = 0; p0 < k; p0 += KC)
                    for (int64_t t = t0; t < t1; t++) {
                        const int64_t j0 = t * PW, nj = n - j0 < PW ? n - j0 : PW;
                        panel_block(kern, mr, cw, bp ? bp + t * k * PW : own, pa, mc, k, p0, beta, ci, ldc, j0, nj, gelu);
                    }
            }
        }
    }
}

void cpu_gemm_nt_fma(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc, int gelu) {
    gemm_run(m, n, k, a, lda, b, ldb, NULL, beta, c, ldc, gelu);
}

void cpu_gemm_nt_fma_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp, float beta,
                            float *c, int64_t ldc, int gelu) {
    gemm_run(m, n, k, a, lda, NULL, 0, bp, beta, c, ldc, gelu);
}

/* ---- weights packed once ---- */

int64_t cpu_packed_floats(int64_t n, int64_t k) { return (n + PW - 1) / PW * PW * k; }

int cpu_pack_weights(float *dst, const float *src, int64_t lds, int64_t n, int64_t k) {
    const int64_t panels = (n + PW - 1) / PW;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(| : bad) if (panels > 1 && n * k >= (1 << 18))
    for (int64_t t = 0; t < panels; t++)
        bad |= pack_t(dst + t * k * PW, PW, src + t * PW * lds, lds, n - t * PW < PW ? n - t * PW : PW, k);
    return !bad;
}

void cpu_pack_weights_bf16(float *dst, const uint16_t *src, int64_t n, int64_t k) {
    const int64_t panels = (n + PW - 1) / PW;
#pragma omp parallel for schedule(dynamic, 4) if (panels > 1 && n * k >= (1 << 18))
    for (int64_t t = 0; t < panels; t++) {
        float *d = dst + t * k * PW;
        const int64_t nr = n - t * PW < PW ? n - t * PW : PW;
        if (nr < PW) memset(d, 0, sizeof(float) * (size_t)(k * PW));
        for (int64_t r = 0; r < nr; r++) /* bf16 is the top half of an fp32: the widening is exact */
            for (int64_t p = 0; p < k; p++) d[p * PW + r] = musae_bf16_to_f32(src[(t * PW + r) * k + p]);
    }
}

void cpu_unpack_weights(float *dst, const float *wp, int64_t n, int64_t k) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p++) dst[j * k + p] = wp[j / PW * k * PW + p * PW + j % PW];
}
