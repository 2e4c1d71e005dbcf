/* C[m, n] = A[m, k] · B[n, k]ᵀ (+ C) in "bf16x3" on Intel AMX tiles: the language model's products over many
 * rows (teacher forcing, capture, prompts) at the amx ISA level (kernels/cpu/isa.h), B packed as the FMA
 * kernels hold it (cpu_pack_weights: [ceil(n/32)][k][32] fp32, kernels/cpu/gemm_nt_fma.c), no other copy.
 *
 * Why: a TDPBF16PS tile product runs ~15x the FMA kernels' peak on this class of CPU, but its operands are
 * bf16. Each fp32 value is split exactly into three bf16 parts, x = hi + mid + lo (hi: x truncated to bf16;
 * mid: x − hi rounded to bf16; lo: the rest, a bf16: 8 + 8 + 8 significant bits hold fp32's 24), and a·b is
 * summed from the six part products that matter, hi·hi + (lo·hi + mid·hi + hi·mid + mid·mid + hi·lo); the
 * three left out (mid·lo, lo·mid, lo·lo) are below 2⁻²² |a·b| together, less than fp32's rounding of the sum
 * once k passes ~100. The tiles accumulate in fp32: hi·hi alone in one accumulator, the five corrections
 * (~2⁻⁸ of it) in another, so the sum takes k roundings at its own size, as the FMA kernels' does, and the
 * corrections' roundings are 2⁻⁸ smaller. Six tile products per 32 positions: 6/15 of the FMA work's time.
 *
 * The sequence for c = C[i, j], fixed (the bits of an element depend on row i of A and row j of B alone: not
 * on m, the row's place in a tile, the thread count, the panel grouping, or gelu fused or not): k is padded
 * with zeros to a multiple of TK = 32 and cut into blocks of KB positions; per block, hi = Σ hi·hi and corr =
 * Σ lo·hi, mid·hi, hi·mid, mid·mid, hi·lo (per chunk of 32 positions, in that order), each as TDPBF16PS sums
 * (Intel's pseudo-code: per pair of positions, acc += a₀b₀ then acc += a₁b₁, fp32, round to nearest even,
 * DAZ/FTZ); s = hi + corr; t = s for the first block, t + s after; then c = t (beta 0) or c + t (beta 1), then
 * gelu when asked. gemm_amx_ref runs it in plain loops. Rows of A or columns of B holding a NaN or an infinity
 * take the FMA kernels' sequence instead (gemm_nt_fma_ref): the parts of ±inf would multiply zeros into NaNs,
 * and this keeps NaN/Inf propagation exactly the FMA path's.
 *
 * Layout. A chunk of up to MC rows of A is split once per product into [row block of 16][chunk of 32
 * positions][part][16][32] bf16 (one 1 KiB tile each, zero past m and k). A thread takes GROUP panels of B at
 * a time and, per block of KB positions, converts their slices into AMX's pair layout [panel][chunk][part]
 * [half][16 pairs][16 columns][2] bf16 (amortised over every row); then per 16 rows × 32 columns (one panel) it
 * runs 12 tile products per chunk on 4 accumulators (hi and corr for each 16-column half) with 9 tile loads.
 * Each block's t is kept in a thread buffer [MC][GROUP·32] fp32 and written to C once per group. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"

#if MUSAE_ISA_VARIANTS && __GNUC__ >= 11
#define GEMM_AMX 1
#include <immintrin.h>
#endif

enum { PW = CPU_PACK_W, TR = 16, TK = 32, TILE = TR * TK, KB = 256, MC = 512, GROUP = 4, PARTS = 3 };
#define PARALLEL_FLOPS 4.0e6 /* below this a team costs more than it saves (as cpu_gemm) */

/* ---- the split, shared by the kernel and the reference (the same integer and fp32 operations) ---- */

static inline uint32_t f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline float u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* x = hi + mid + lo exactly (finite x; parts as bf16 bit patterns). hi is x's top 16 bits (truncation: the rest
 * x − hi is exact and has x's sign); mid is that rest rounded to nearest even, so the left-out products with lo
 * have either sign; lo = rest − mid is exact and a bf16 (at most 8 significant bits) unless it is subnormal,
 * where the tile instruction reads it as zero anyway (DAZ). Not finite: zeros (such rows take the FMA path). */
static inline void split3(float x, uint16_t *h, uint16_t *m, uint16_t *l) {
    const uint32_t xb = f2u(x);
    if ((xb & 0x7f800000u) == 0x7f800000u) {
        *h = *m = *l = 0;
        return;
    }
    const uint32_t hb = xb & 0xffff0000u;
    const float r = x - u2f(hb);
    const uint32_t rb = f2u(r), mb = (rb + 0x7fffu + ((rb >> 16) & 1u)) & 0xffff0000u;
    const float lo = r - u2f(mb);
    *h = (uint16_t)(hb >> 16), *m = (uint16_t)(mb >> 16), *l = (uint16_t)(f2u(lo) >> 16);
}

/* ---- reference: the sequence above, plain loops ---- */

/* A bf16 operand as TDPBF16PS reads it: subnormals as zero (DAZ). */
static inline float bf16_daz(uint16_t v) { return (v & 0x7f80u) ? u2f((uint32_t)v << 16) : u2f((uint32_t)(v & 0x8000u) << 16); }
/* A result as TDPBF16PS writes it: subnormals flushed to a zero of their sign (FTZ). */
static inline float ftz(float x) { return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x; }

/* acc += Σ a[p]·b[p] over one chunk of 32 positions, TDPBF16PS's order: position by position. */
static float dot_chunk(float acc, const uint16_t *a, const uint16_t *b) {
    for (int p = 0; p < TK; p++) acc = ftz(acc + ftz(bf16_daz(a[p]) * bf16_daz(b[p])));
    return acc;
}

static int row_finite(const float *x, int64_t k) {
    for (int64_t p = 0; p < k; p++)
        if (!isfinite(x[p])) return 0;
    return 1;
}

void gemm_amx_ref(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc, int gelu) {
    const int64_t kp = (k + TK - 1) / TK * TK;
    uint16_t *pa = musae_xcalloc((size_t)(PARTS * (kp + 1)), sizeof *pa), *pb = musae_xcalloc((size_t)(PARTS * (kp + 1)), sizeof *pb);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float *cij = &c[i * ldc + j];
            if (!row_finite(a + i * lda, k) || !row_finite(b + j * ldb, k)) {
                gemm_nt_fma_ref(1, 1, k, a + i * lda, lda, b + j * ldb, ldb, beta, cij, ldc);
            } else {
                for (int64_t p = 0; p < k; p++) {
                    split3(a[i * lda + p], &pa[p], &pa[kp + p], &pa[2 * kp + p]);
                    split3(b[j * ldb + p], &pb[p], &pb[kp + p], &pb[2 * kp + p]);
                }
                /* the parts' pairs in corr's order: lo·hi, mid·hi, hi·mid, mid·mid, hi·lo */
                static const int PA[5] = {2, 1, 0, 1, 0}, PB[5] = {0, 0, 1, 1, 2};
                float t = 0.0f;
                for (int64_t p0 = 0; p0 < kp; p0 += KB) {
                    float hi = 0.0f, corr = 0.0f;
                    for (int64_t q = p0; q < kp && q < p0 + KB; q += TK) {
                        hi = dot_chunk(hi, pa + q, pb + q);
                        for (int e = 0; e < 5; e++) corr = dot_chunk(corr, pa + PA[e] * kp + q, pb + PB[e] * kp + q);
                    }
                    const float s = hi + corr;
                    t = p0 == 0 ? s : t + s;
                }
                *cij = beta == 0.0f ? t : *cij + t;
            }
            if (gelu) cpu_gelu_range(cij, cij, 1);
        }
    free(pa), free(pb);
}

/* ---- the kernel ---- */

#ifdef GEMM_AMX
#define AMX_TARGET __attribute__((target("arch=x86-64-v4,amx-tile,amx-bf16")))

/* Tile palette 1, every tile 16 rows of 64 bytes: tmm0/1 hi and tmm2/3 corr for columns 0-15 / 16-31 of a
 * panel, tmm4/5 A parts [16 rows × 32 positions], tmm6/7 B parts [16 pairs × 16 columns × 2]. A constant in
 * memory: GCC 12 does not treat ldtilecfg as reading its operand, and dropped a configuration's stores made
 * on the stack (eval/analyze_encode.c). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;
static const tile_config TILE_CONFIG = {.palette = 1,
                                        .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                        .rows = {TR, TR, TR, TR, TR, TR, TR, TR}};

/* The split of 16 values at once (split3's operations lane by lane); the parts' bits in the upper halves of
 * the lanes, their lower halves zero. *bad gets the lanes that are not finite (their parts zero). */
AMX_TARGET static inline void split16(__m512 x, __m512i *h, __m512i *m, __m512i *l, __mmask16 *bad) {
    const __m512i top = _mm512_set1_epi32((int)0xffff0000u), expo = _mm512_set1_epi32(0x7f800000);
    const __m512i xb = _mm512_castps_si512(x);
    const __mmask16 ok = _mm512_cmpneq_epi32_mask(_mm512_and_si512(xb, expo), expo);
    const __m512i hb = _mm512_and_si512(xb, top);
    const __m512 r = _mm512_sub_ps(x, _mm512_castsi512_ps(hb));
    const __m512i rb = _mm512_castps_si512(r);
    const __m512i rnd = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(rb, 16), _mm512_set1_epi32(1)));
    const __m512i mb = _mm512_and_si512(_mm512_add_epi32(rb, rnd), top);
    const __m512i lb = _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(r, _mm512_castsi512_ps(mb))), top);
    *h = _mm512_maskz_mov_epi32(ok, hb), *m = _mm512_maskz_mov_epi32(ok, mb), *l = _mm512_maskz_mov_epi32(ok, lb);
    *bad |= (__mmask16)~ok;
}

/* Rows [0, nr) of a chunk (stride lda) into tiles [row block][chunk][part][16][32] bf16, zero past nr and k;
 * rows rb·16 .. rb·16 + 15 of one row block. bad[r]: row r holds a value that is not finite. */
AMX_TARGET static void split_rows(uint16_t *dst, const float *a, int64_t lda, int64_t nr, int64_t k, int64_t nch,
                                  uint8_t *bad) {
    for (int64_t r = 0; r < TR; r++) {
        __mmask16 nf = 0;
        for (int64_t c = 0; c < nch; c++) {
            uint16_t *t = dst + c * PARTS * TILE + r * TK;
            __m512i p[2][PARTS];
            for (int v = 0; v < 2; v++) {
                const int64_t p0 = c * TK + v * 16;
                const __mmask16 in = r < nr && p0 < k ? (__mmask16)(k - p0 >= 16 ? 0xffff : (1u << (k - p0)) - 1) : 0;
                const __m512 x = _mm512_maskz_loadu_ps(in, r < nr ? a + r * lda + p0 : a);
                split16(x, &p[v][0], &p[v][1], &p[v][2], &nf);
            }
            for (int e = 0; e < PARTS; e++) {
                _mm256_storeu_si256((__m256i *)(t + e * TILE), _mm512_cvtepi32_epi16(_mm512_srli_epi32(p[0][e], 16)));
                _mm256_storeu_si256((__m256i *)(t + e * TILE + 16), _mm512_cvtepi32_epi16(_mm512_srli_epi32(p[1][e], 16)));
            }
        }
        if (r < nr) bad[r] = nf != 0;
    }
}

/* Positions [p0, p0 + nkc·32) of one packed panel (pk: [k][32] fp32) into tiles [chunk][part][half][16 pairs]
 * [16 columns][2] bf16, zero past k; returns the panel's columns (bit per column) holding a value that is not
 * finite. */
AMX_TARGET static uint32_t convert_panel(uint16_t *dst, const float *pk, int64_t k, int64_t p0, int64_t nkc) {
    const __m512i top = _mm512_set1_epi32((int)0xffff0000u);
    __mmask16 nf[2] = {0, 0};
    for (int64_t c = 0; c < nkc; c++)
        for (int h = 0; h < 2; h++) {
            uint16_t *t = dst + (c * PARTS * 2 + h) * TILE;
            for (int q = 0; q < TR; q++) {
                const int64_t p = p0 + c * TK + 2 * q;
                const __m512 x0 = p < k ? _mm512_loadu_ps(pk + p * PW + h * 16) : _mm512_setzero_ps();
                const __m512 x1 = p + 1 < k ? _mm512_loadu_ps(pk + (p + 1) * PW + h * 16) : _mm512_setzero_ps();
                __m512i a[PARTS], b[PARTS];
                split16(x0, &a[0], &a[1], &a[2], &nf[h]);
                split16(x1, &b[0], &b[1], &b[2], &nf[h]);
                /* the pair (position p, p + 1) of each column: p's part in the low half, p + 1's in the high */
                for (int e = 0; e < PARTS; e++)
                    _mm512_storeu_si512(t + e * 2 * TILE + q * 32,
                                        _mm512_or_si512(_mm512_srli_epi32(a[e], 16), _mm512_and_si512(b[e], top)));
            }
        }
    return (uint32_t)nf[0] | (uint32_t)nf[1] << 16;
}

/* 16 rows × 32 columns over nkc chunks: hi and corr of each half; the order of the tile products is the
 * sequence's (hi: hi·hi; corr: lo·hi, mid·hi, hi·mid, mid·mid, hi·lo per chunk). */
AMX_TARGET static void tiles_16x32(const uint16_t *ap, const uint16_t *bq, int64_t nkc, float *hi, float *corr) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t c = 0; c < nkc; c++) {
        const uint16_t *a = ap + c * PARTS * TILE, *b = bq + c * PARTS * 2 * TILE;
        _tile_loadd(4, a, 64);            /* A hi */
        _tile_loadd(5, a + 2 * TILE, 64); /* A lo */
        _tile_loadd(6, b, 64);            /* B hi, columns 0-15 */
        _tile_loadd(7, b + TILE, 64);     /* B hi, columns 16-31 */
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(5, a + TILE, 64); /* A mid */
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(6, b + 2 * TILE, 64); /* B mid */
        _tile_loadd(7, b + 3 * TILE, 64);
        _tile_dpbf16ps(2, 4, 6);
        _tile_dpbf16ps(3, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(6, b + 4 * TILE, 64); /* B lo */
        _tile_loadd(7, b + 5 * TILE, 64);
        _tile_dpbf16ps(2, 4, 6);
        _tile_dpbf16ps(3, 4, 7);
    }
    _tile_stored(0, hi, PW * 4);
    _tile_stored(1, hi + 16, PW * 4);
    _tile_stored(2, corr, PW * 4);
    _tile_stored(3, corr + 16, PW * 4);
}

AMX_TARGET static void amx_configure(void) { _tile_loadconfig(&TILE_CONFIG); }
AMX_TARGET static void amx_release(void) { _tile_release(); }

/* C[i, j] for a row of A or a column of B that is not finite: the FMA kernels' sequence, B's row unpacked. */
static void fma_element(int64_t k, const float *a, const float *pk, int64_t col, float beta, float *c, float *brow) {
    for (int64_t p = 0; p < k; p++) brow[p] = pk[p * PW + col];
    gemm_nt_fma_ref(1, 1, k, a, k, brow, k, beta, c, 1);
}

/* Panels t0 .. t1 − 1 against the chunk's split rows (mc of them, nrb row blocks): per block of KB positions
 * convert the panels' slices, run every row block against them into t, then write C. */
AMX_TARGET static void run_group(int64_t t0, int64_t t1, const uint16_t *pa, const uint8_t *bad_row, int64_t mc,
                                 int64_t nrb, int64_t nch, const float *a, int64_t lda, const float *bp, int64_t n,
                                 int64_t k, float beta, float *c, int64_t ldc, int gelu) {
    const int64_t ng = t1 - t0, ldt = GROUP * PW;
    uint16_t *bt = cpu_gemm_scratch(CPU_SCRATCH_AMX_B, sizeof(uint16_t) * (size_t)(GROUP * (KB / TK) * PARTS * 2 * TILE));
    float *t = cpu_gemm_scratch(CPU_SCRATCH_AMX_T, sizeof(float) * (size_t)(nrb * TR * ldt + (k > 0 ? k : 1)));
    float *brow = t + nrb * TR * ldt;
    float hi[TR * PW] __attribute__((aligned(64))), corr[TR * PW] __attribute__((aligned(64)));
    uint32_t bad_col[GROUP] = {0};
    for (int64_t p0 = 0; p0 < nch * TK; p0 += KB) {
        const int64_t nkc = (nch * TK - p0 < KB ? nch * TK - p0 : KB) / TK;
        for (int64_t g = 0; g < ng; g++)
            bad_col[g] |= convert_panel(bt + g * (KB / TK) * PARTS * 2 * TILE, bp + (t0 + g) * k * PW, k, p0, nkc);
        for (int64_t rb = 0; rb < nrb; rb++)
            for (int64_t g = 0; g < ng; g++) {
                tiles_16x32(pa + (rb * nch + p0 / TK) * PARTS * TILE, bt + g * (KB / TK) * PARTS * 2 * TILE, nkc, hi,
                            corr);
                for (int r = 0; r < TR; r++) {
                    float *tr = t + (rb * TR + r) * ldt + g * PW;
                    for (int j = 0; j < PW; j++) {
                        const float s = hi[r * PW + j] + corr[r * PW + j];
                        tr[j] = p0 == 0 ? s : tr[j] + s;
                    }
                }
            }
    }
    for (int64_t i = 0; i < mc; i++)
        for (int64_t g = 0; g < ng; g++) {
            const int64_t j0 = (t0 + g) * PW, nj = n - j0 < PW ? n - j0 : PW;
            float *ci = c + i * ldc + j0;
            const float *ti = t + i * ldt + g * PW;
            for (int64_t j = 0; j < nj; j++) {
                if (bad_row[i] || (bad_col[g] >> j & 1))
                    fma_element(k, a + i * lda, bp + (t0 + g) * k * PW, j, beta, ci + j, brow);
                else
                    ci[j] = beta == 0.0f ? ti[j] : ci[j] + ti[j];
            }
            if (gelu) cpu_gelu_range(ci, ci, nj);
        }
}
#endif /* GEMM_AMX */

void cpu_gemm_amx_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp, float beta,
                         float *c, int64_t ldc, int gelu) {
    MUSAE_ASSERT(musae_isa_get() >= MUSAE_ISA_AMX, "cpu_gemm_amx_packed needs the amx ISA level (in use: %s)",
                 musae_isa_name(musae_isa_get()));
    MUSAE_ASSERT(beta == 0.0f || beta == 1.0f, "cpu_gemm_amx_packed: beta %g (0 or 1 only)", (double)beta);
    if (m == 0 || n == 0) return;
    if (k == 0) { /* as the FMA kernels: an empty sum */
        for (int64_t i = 0; i < m; i++) {
            if (beta == 0.0f) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
            if (gelu) cpu_gelu_range(c + i * ldc, c + i * ldc, n);
        }
        return;
    }
#ifdef GEMM_AMX
    const int64_t panels = (n + PW - 1) / PW, nch = (k + TK - 1) / TK;
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
        const int64_t mc = m - i0 < MC ? m - i0 : MC, nrb = (mc + TR - 1) / TR;
        const size_t a_bytes = sizeof(uint16_t) * (size_t)(nrb * nch * PARTS * TILE);
        uint16_t *pa = cpu_gemm_scratch(CPU_SCRATCH_AMX_A, a_bytes + (size_t)nrb * TR);
        uint8_t *bad_row = (uint8_t *)pa + a_bytes;
        const float *ai = a + i0 * lda;
        float *ci = c + i0 * ldc;
        const int team = (double)mc * (double)n * (double)k >= PARALLEL_FLOPS && panels > 1;
#pragma omp parallel if (team)
        {
#pragma omp for schedule(static)
            for (int64_t rb = 0; rb < nrb; rb++)
                split_rows(pa + rb * nch * PARTS * TILE, ai + rb * TR * lda, lda, mc - rb * TR < TR ? mc - rb * TR : TR,
                           k, nch, bad_row + rb * TR);
            /* groups small enough that every thread still gets two or more (balance on a shared host) */
            int64_t group = panels / (2 * omp_get_num_threads());
            group = group < 1 ? 1 : group > GROUP ? GROUP : group;
            const int64_t n_groups = (panels + group - 1) / group;
            amx_configure(); /* each thread its own tile state */
#pragma omp for schedule(dynamic, 1)
            for (int64_t gi = 0; gi < n_groups; gi++) {
                const int64_t t0 = gi * group, t1 = t0 + group < panels ? t0 + group : panels;
                run_group(t0, t1, pa, bad_row, mc, nrb, nch, ai, lda, bp, n, k, beta, ci, ldc, gelu);
            }
            amx_release();
        }
    }
#else
    (void)a, (void)lda, (void)bp, (void)ldc, (void)gelu;
    MUSAE_ASSERT(0, "cpu_gemm_amx_packed: this build has no AMX code");
#endif
}
