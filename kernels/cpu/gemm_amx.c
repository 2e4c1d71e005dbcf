/* C[m, n] = A[m, k] · B[n, k]ᵀ (+ C) in "bf16x3" on Intel AMX tiles: the language model's products over many
 * rows (teacher forcing, capture, prompts) at the amx ISA level (kernels/cpu/isa.h), B packed as the FMA
 * kernels hold it (cpu_pack_weights: [ceil(n/32)][k][32] fp32, kernels/cpu/gemm_nt_fma.c), no other copy.
 *
 * Why: a TDPBF16PS tile product runs ~15x the FMA kernels' peak on this class of CPU, but its operands are
 * bf16. Each fp32 value is split exactly into three bf16 parts, x = hi + mid + lo (hi: x truncated to bf16;
 * mid: x − hi rounded to bf16; lo: the rest, a bf16: 8 + 8 + 8 significant bits hold fp32's 24), and a·b is
 * summed from the six part products that matter; the three left out (mid·lo, lo·mid, lo·lo) are below 2⁻²²
 * |a·b| together, less than fp32's rounding of the sum once k passes ~100. The tiles accumulate in fp32, one
 * accumulator per element. Measured against double sums the error is 0.5-1.1x the FMA kernels'
 * (tests/test_ops_amx): the hardware rounds about once per tile product (32 positions), not per product as its
 * pseudo-code says, so six tile products per 32 positions round fewer times than 32 FMAs. (Keeping hi·hi apart
 * from the corrections gave 3-5x below the FMA kernels' error, but takes 8 accumulator tiles for 32 × 32
 * outputs: twice the tile loads per product, and no faster than the FMA kernels here.)
 *
 * The sequence for c = C[i, j], fixed (the bits of an element depend on row i of A and row j of B alone: not
 * on m, the row's place in a tile, the thread count, the blocking, or gelu fused or not): k is padded with
 * zeros to a multiple of TK = 32; one fp32 sum s = 0, and per chunk of 32 positions, in order, six TDPBF16PS
 * products are added to it: hi·hi, hi·mid, mid·mid, mid·hi, lo·hi, hi·lo (A's part first); then c = s (beta 0)
 * or c + s (beta 1), then gelu when asked. gemm_amx_ref runs it in plain loops, with the instruction as Intel's
 * pseudo-code states it (per position s += a·b, fp32, round to nearest even, DAZ/FTZ; the hardware's roundings
 * differ, see above). Where B's mid and lo parts are zero over a panel's block (weights that are bf16 values,
 * e.g. a bf16 checkpoint computed in fp32), the three products with them add zeros and are not issued: the
 * same sum (only a sum flushed to −0 would stay −0 instead of becoming +0). Rows of A or columns of B holding
 * a NaN or an infinity take the FMA kernels' sequence instead (gemm_nt_fma_ref): the parts of ±inf would
 * multiply zeros into NaNs, and this keeps NaN/Inf propagation exactly the FMA path's.
 *
 * Layout and blocking. A is split once per product by the team into [row block of 16][chunk of 32
 * positions][part][16][32] bf16 (one 1 KiB tile each, zero past m and k, row blocks in pairs). The work is
 * cut into groups of GROUP panels (128 columns); a thread takes a group and, per block of KB positions,
 * converts the group's panel slices into AMX's pair layout [chunk][part][half][16 pairs][16 columns][2] in its
 * own scratch (GROUP·KB·192 bytes: each value of B is converted once per product and stays in L2), then runs
 * every pair of row blocks against the group's panels: 32 rows × 32 columns per call, four accumulator tiles,
 * 24 tile products per chunk on 16 tile loads (the A pair's slice stays in L2 across the group's panels). Sums
 * that span blocks are stored to the thread's scratch and loaded back (a store and a load give the same
 * values, so a sum runs on as one). What bounds it is the tile loads from L2 (~2.5x the time of
 * register-only tile products). */
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

enum { PW = CPU_PACK_W, TR = 16, TK = 32, TILE = TR * TK, KB = 1024, GROUP = 4, PARTS = 3 };
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
                /* the part pairs in the sequence's order: hi·hi, hi·mid, mid·mid, mid·hi, lo·hi, hi·lo */
                static const int PA[6] = {0, 0, 1, 1, 2, 0}, PB[6] = {0, 1, 1, 0, 0, 2};
                float s = 0.0f;
                for (int64_t q = 0; q < kp; q += TK)
                    for (int e = 0; e < 6; e++) s = dot_chunk(s, pa + PA[e] * kp + q, pb + PB[e] * kp + q);
                *cij = beta == 0.0f ? s : *cij + s;
            }
            if (gelu) cpu_gelu_range(cij, cij, 1);
        }
    free(pa), free(pb);
}

/* ---- the kernel ---- */

#ifdef GEMM_AMX
#define AMX_TARGET __attribute__((target("arch=x86-64-v4,amx-tile,amx-bf16")))

/* Tiles (musae_amx_configure: all eight 16 rows of 64 bytes): tmm0-3 the sums of a 32 × 32 block (rows 0-15 ×
 * columns 0-15, 0-15 × 16-31, 16-31 × 0-15, 16-31 × 16-31), tmm4/5 a part of the two row blocks [16 rows × 32
 * positions], tmm6/7 a part of the panel's halves [16 pairs × 16 columns × 2]. */

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

/* Rows [0, nr) of a row block (stride lda) into tiles [chunk][part][16][32] bf16, zero past nr and k (nr may
 * be 0: the zero block that completes a pair). bad[r]: row r holds a value that is not finite. */
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
 * [16 columns][2] bf16, zero past k. Returns the panel's columns (bit per column) holding a value that is not
 * finite; *low gets whether any mid or lo part is nonzero. */
AMX_TARGET static uint32_t convert_panel(uint16_t *dst, const float *pk, int64_t k, int64_t p0, int64_t nkc, int *low) {
    const __m512i top = _mm512_set1_epi32((int)0xffff0000u);
    __mmask16 nf[2] = {0, 0};
    __m512i ml = _mm512_setzero_si512();
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
                ml = _mm512_or_si512(ml, _mm512_or_si512(_mm512_or_si512(a[1], a[2]), _mm512_or_si512(b[1], b[2])));
            }
        }
    *low = _mm512_test_epi32_mask(ml, ml) != 0;
    return (uint32_t)nf[0] | (uint32_t)nf[1] << 16;
}

/* The sums of one 32 × 32 block over nkc chunks (a0, a1: the two row blocks' slices, b: the panel's slice),
 * continued from acc (4 tiles [16][16] fp32, in tmm0-3's order) unless first, and stored back there. Per
 * chunk the six products in the sequence's order (hi·hi, hi·mid, mid·mid, mid·hi, lo·hi, hi·lo); with low 0
 * (B's mid and lo parts all zero) the three products with them are not issued. 16 tile loads per 24 tile
 * products: the operands are reloaded where the order of the sequence needs a part again. */
AMX_TARGET static void tiles_32x32(const uint16_t *a0, const uint16_t *a1, const uint16_t *b, int64_t nkc, float *acc,
                                   int first, int low) {
    if (first) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    } else {
        _tile_loadd(0, acc, 64);
        _tile_loadd(1, acc + 256, 64);
        _tile_loadd(2, acc + 512, 64);
        _tile_loadd(3, acc + 768, 64);
    }
#define PRODUCTS4()              \
    _tile_dpbf16ps(0, 4, 6); \
    _tile_dpbf16ps(1, 4, 7); \
    _tile_dpbf16ps(2, 5, 6); \
    _tile_dpbf16ps(3, 5, 7)
    for (int64_t c = 0; c < nkc; c++) {
        const uint16_t *x0 = a0 + c * PARTS * TILE, *x1 = a1 + c * PARTS * TILE, *y = b + c * PARTS * 2 * TILE;
        _tile_loadd(4, x0, 64); /* A hi */
        _tile_loadd(5, x1, 64);
        _tile_loadd(6, y, 64); /* B hi */
        _tile_loadd(7, y + TILE, 64);
        PRODUCTS4(); /* hi·hi */
        if (low) {
            _tile_loadd(6, y + 2 * TILE, 64); /* B mid */
            _tile_loadd(7, y + 3 * TILE, 64);
            PRODUCTS4(); /* hi·mid */
            _tile_loadd(4, x0 + TILE, 64); /* A mid */
            _tile_loadd(5, x1 + TILE, 64);
            PRODUCTS4(); /* mid·mid */
            _tile_loadd(6, y, 64); /* B hi */
            _tile_loadd(7, y + TILE, 64);
        } else {
            _tile_loadd(4, x0 + TILE, 64); /* A mid */
            _tile_loadd(5, x1 + TILE, 64);
        }
        PRODUCTS4(); /* mid·hi */
        _tile_loadd(4, x0 + 2 * TILE, 64); /* A lo */
        _tile_loadd(5, x1 + 2 * TILE, 64);
        PRODUCTS4(); /* lo·hi */
        if (low) {
            _tile_loadd(4, x0, 64); /* A hi */
            _tile_loadd(5, x1, 64);
            _tile_loadd(6, y + 4 * TILE, 64); /* B lo */
            _tile_loadd(7, y + 5 * TILE, 64);
            PRODUCTS4(); /* hi·lo */
        }
    }
#undef PRODUCTS4
    _tile_stored(0, acc, 64);
    _tile_stored(1, acc + 256, 64);
    _tile_stored(2, acc + 512, 64);
    _tile_stored(3, acc + 768, 64);
}


/* C[i, j] for a row of A or a column of B that is not finite: the FMA kernels' sequence, B's row unpacked. */
static void fma_element(int64_t k, const float *a, const float *pk, int64_t col, float beta, float *c, float *brow) {
    for (int64_t p = 0; p < k; p++) brow[p] = pk[p * PW + col];
    gemm_nt_fma_ref(1, 1, k, a, k, brow, k, beta, c, 1);
}

/* Rows [i0, i0 + nr) × columns [j0, j0 + nj) of C from one block's sums (acc: 4 tiles [16][16], tmm0-3's
 * order): C = s or C + s; rows or columns holding NaN or ±inf take the FMA kernels' sequence; then gelu. */
AMX_TARGET static void write_block(const float *acc, int64_t i0, int64_t nr, int64_t j0, int64_t nj, const uint8_t *bad_row,
                                   uint32_t bad_col, const float *a, int64_t lda, const float *pk, int64_t k,
                                   float beta, float *c, int64_t ldc, int gelu, float *brow) {
    const __mmask16 m0 = nj >= 16 ? 0xffff : (__mmask16)((1u << nj) - 1),
                    m1 = nj >= 32 ? 0xffff : nj > 16 ? (__mmask16)((1u << (nj - 16)) - 1) : 0;
    for (int64_t r = 0; r < nr; r++) {
        const float *s = acc + (r / TR) * 512 + (r % TR) * 16;
        float *ci = c + (i0 + r) * ldc + j0;
        if (bad_row[i0 + r] || bad_col) { /* rare: element by element, the bad ones by the FMA sequence */
            for (int64_t j = 0; j < nj; j++) {
                if (bad_row[i0 + r] || (bad_col >> j & 1)) fma_element(k, a + (i0 + r) * lda, pk, j, beta, ci + j, brow);
                else ci[j] = beta == 0.0f ? s[j / 16 * 256 + j % 16] : ci[j] + s[j / 16 * 256 + j % 16];
            }
        } else {
            __m512 v0 = _mm512_loadu_ps(s), v1 = _mm512_loadu_ps(s + 256);
            if (beta != 0.0f) {
                v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), v0);
                v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), v1);
            }
            _mm512_mask_storeu_ps(ci, m0, v0);
            _mm512_mask_storeu_ps(ci + 16, m1, v1);
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
    /* A's parts once per product, shared by the team (m·k·6 bytes, row blocks in pairs); per thread a group's
     * converted panel slices (GROUP·KB·192 bytes) and the group's sums (rows × GROUP·32 × 4 bytes). */
    const int64_t panels = (n + PW - 1) / PW, nch = (k + TK - 1) / TK, pairs = (m + 2 * TR - 1) / (2 * TR);
    const int64_t nrb = 2 * pairs, rowblk = nch * PARTS * TILE, kbc = KB / TK, slice = kbc * PARTS * 2 * TILE;
    uint16_t *pa = cpu_gemm_scratch(CPU_SCRATCH_AMX_A, sizeof(uint16_t) * (size_t)(nrb * rowblk) +
                                                           sizeof(uint32_t) * (size_t)panels + (size_t)(nrb * TR));
    uint32_t *bad_col = (uint32_t *)(pa + nrb * rowblk);
    uint8_t *bad_row = (uint8_t *)(bad_col + panels);
    const int team = (double)m * (double)n * (double)k >= PARALLEL_FLOPS && panels > 1;
    const int64_t n_groups = (panels + GROUP - 1) / GROUP;
#pragma omp parallel if (team)
    {
#pragma omp for schedule(dynamic, 4)
        for (int64_t rb = 0; rb < nrb; rb++) {
            const int64_t nr = m - rb * TR <= 0 ? 0 : m - rb * TR < TR ? m - rb * TR : TR;
            split_rows(pa + rb * rowblk, nr ? a + rb * TR * lda : a, lda, nr, k, nch, bad_row + rb * TR);
        }
        uint16_t *bs = cpu_gemm_scratch(CPU_SCRATCH_AMX_B, sizeof(uint16_t) * (size_t)(GROUP * slice));
        float *acc = cpu_gemm_scratch(CPU_SCRATCH_AMX_T, sizeof(float) * (size_t)(pairs * GROUP * 1024));
        float *brow = cpu_gemm_scratch(CPU_SCRATCH_AMX_ROW, sizeof(float) * (size_t)k);
        musae_amx_configure(); /* each thread its own tile state */
#pragma omp for schedule(dynamic, 1)
        for (int64_t gi = 0; gi < n_groups; gi++) {
            const int64_t t0 = gi * GROUP, t1 = t0 + GROUP < panels ? t0 + GROUP : panels;
            int low[GROUP];
            for (int64_t t = t0; t < t1; t++) bad_col[t] = 0;
            for (int64_t p0 = 0; p0 < nch * TK; p0 += KB) {
                const int64_t nkc = (nch * TK - p0 < KB ? nch * TK - p0 : KB) / TK, c0 = p0 / TK;
                for (int64_t t = t0; t < t1; t++)
                    bad_col[t] |= convert_panel(bs + (t - t0) * slice, bp + t * k * PW, k, p0, nkc, &low[t - t0]);
                for (int64_t q = 0; q < pairs; q++) /* the pair's slice stays in L2 across the group's panels */
                    for (int64_t t = t0; t < t1; t++)
                        tiles_32x32(pa + 2 * q * rowblk + c0 * PARTS * TILE, pa + (2 * q + 1) * rowblk + c0 * PARTS * TILE,
                                    bs + (t - t0) * slice, nkc, acc + (q * GROUP + t - t0) * 1024, p0 == 0, low[t - t0]);
            }
            for (int64_t q = 0; q < pairs; q++)
                for (int64_t t = t0; t < t1; t++) {
                    const int64_t i0 = 2 * q * TR, j0 = t * PW;
                    write_block(acc + (q * GROUP + t - t0) * 1024, i0, m - i0 < 2 * TR ? m - i0 : 2 * TR, j0,
                                n - j0 < PW ? n - j0 : PW, bad_row, bad_col[t], a, lda, bp + t * k * PW, k, beta, c,
                                ldc, gelu, brow);
                }
        }
        musae_amx_release();
    }
#else
    (void)a, (void)lda, (void)bp, (void)ldc, (void)gelu;
    MUSAE_ASSERT(0, "cpu_gemm_amx_packed: this build has no AMX code");
#endif
}
