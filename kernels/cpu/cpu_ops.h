/* CPU reference implementations of kernels/ops.h, one op per file in kernels/cpu/. Declared here so
 * tests can call a CPU op directly (the reference side of tests/test_ops). */
#ifndef MUSAE_CPU_OPS_H
#define MUSAE_CPU_OPS_H

#include "kernels/ops.h"

/* Makes OpenBLAS single-threaded for the process, once (kernels/cpu/gemm.c says why); every CPU op calls it
 * before its first BLAS call. */
void cpu_blas_init(void);
void cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* cpu_elu on the calling thread alone, the same bits (kernels/cpu/conv1d.c's fused ELU). */
void cpu_elu_serial(float *out, const float *x, int64_t n);
/* The tile grid cpu_gemm cuts an m x n product into (tr x tc tiles, one single-threaded sgemm each, from the
 * shape alone); 0 when it runs it as one sgemm or the skinny kernel instead. A caller that runs the same
 * tiles itself, with cpu_sgemm_tile, gets the bits cpu_gemm gives (kernels/cpu/conv1d.c). */
int cpu_gemm_grid(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, int64_t *tr, int64_t *tc);
/* One single-threaded OpenBLAS sgemm (row-major), as cpu_gemm runs each tile. */
void cpu_sgemm_tile(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                    int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* the m <= 8 path of cpu_gemm(0, 1, ...) (kernels/cpu/gemm_skinny.c) */
void cpu_gemm_nt_skinny(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc);
/* C[m,n] = A[m,k]·B[n,k]ᵀ (beta 0) or C + A·Bᵀ (beta 1) with musae's FMA kernels (kernels/cpu/gemm_nt_fma.c):
 * each element's bits depend only on its rows of A and B, the same under AVX2 and AVX-512. Needs
 * cpu_gemm_nt_fma_ok() (AVX2 + FMA in use); gemm_nt_fma_ref is the same sequence in plain loops. */
int cpu_gemm_nt_fma_ok(void);
void cpu_gemm_nt_fma(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc, int gelu); /* gelu: then C = gelu(C), tile by tile */
/* Weights packed once for those kernels: an [n, k] matrix held as [ceil(n/CPU_PACK_W)][k][CPU_PACK_W] (rows
 * past n zero), cpu_packed_floats(n, k) floats. cpu_gemm_nt_fma_packed is cpu_gemm_nt_fma reading B in that
 * layout, with the same bits; cpu_gemm_nt_skinny_packed is cpu_gemm_nt_skinny's (alpha 1, beta 0 or 1). The
 * packers run on the OpenMP team (cpu_pack_weights also says whether every value was finite: a load checks
 * while it packs); cpu_unpack_weights is the inverse (tests, references). */
#define CPU_PACK_W 32
int64_t cpu_packed_floats(int64_t n, int64_t k);
int cpu_pack_weights(float *dst, const float *src, int64_t lds, int64_t n, int64_t k); /* 1: every value finite */
void cpu_pack_weights_bf16(float *dst, const uint16_t *src, int64_t n, int64_t k);
void cpu_unpack_weights(float *dst, const float *wp, int64_t n, int64_t k);
void cpu_gemm_nt_fma_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp, float beta,
                            float *c, int64_t ldc, int gelu);
void cpu_gemm_nt_skinny_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp,
                               float beta, float *c, int64_t ldc);
/* ops->linear_packed: cpu_linear / cpu_linear_gelu (gelu 1, beta 0) with the weight packed, y's rows ldy apart;
 * the same bits as those calls on the unpacked weight. ops->packed_floats: cpu_packed_floats where the FMA
 * kernels run (0 elsewhere: the weights are then not packed). */
void cpu_linear_packed(float *y, int64_t ldy, const float *x, const float *wp, int64_t m, int64_t n, int64_t k,
                       float beta, int gelu);
int64_t cpu_packed_floats_if_fma(int64_t n, int64_t k);
/* The arithmetic of cpu_linear_packed's many-row products at the level in use: "amx-bf16x3" (the amx level),
 * "fma-fp32" (musae's FMA kernels: the same bits on every CPU with FMA, at every level below amx) or
 * "openblas-fp32" (a CPU without FMA). A capture store records it (docs/CAPTURE.md). */
const char *cpu_gemm_arith(void);
/* A thread's scratch buffer for the GEMM kernels, one per slot, 64-byte aligned, grown as needed and kept
 * for the thread's life (contents undefined on return). */
enum { CPU_SCRATCH_FMA_PANEL, CPU_SCRATCH_FMA_ROWS, CPU_SCRATCH_AMX_A, CPU_SCRATCH_AMX_B, CPU_SCRATCH_AMX_T,
       CPU_SCRATCH_AMX_ROW, CPU_SCRATCH_SLOTS };
void *cpu_gemm_scratch(int slot, size_t bytes);
/* C[m,n] = A[m,k]·Bᵀ (+ C when beta is 1; then gelu when asked) in bf16x3 on AMX tiles (kernels/cpu/gemm_amx.c),
 * B packed as for cpu_gemm_nt_fma_packed: fp32-level accuracy, each element's bits a function of its row of A
 * and row of B alone. Needs the amx ISA level; gemm_amx_ref is its arithmetic in plain loops (the tile
 * instruction as Intel's pseudo-code states it), b's rows unpacked. */
void cpu_gemm_amx_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp, float beta,
                         float *c, int64_t ldc, int gelu);
void gemm_amx_ref(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc, int gelu);
void gemm_nt_fma_ref(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc);
void cpu_linear(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
                float beta);
/* y[i] = expf(x[i]) (y may alias x) with the C library's bits, 16 at a time at AVX-512 where a check at first
 * use found them equal (kernels/cpu/expf_vec.c); cpu_expf_vec_active says whether that path runs. */
void cpu_expf_vec(float *y, const float *x, int64_t n);
int cpu_expf_vec_active(void);
void cpu_layernorm(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps);
void cpu_rmsnorm(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps);
void cpu_gelu(float *out, const float *x, int64_t n);
/* gelu over n values on the calling thread (cpu_gelu's body, no team): an element's bits do not depend on n or
 * its place, so a GEMM can apply it to a tile while the tile is in cache */
void cpu_gelu_range(float *out, const float *x, int64_t n);
/* ops->linear_gelu: cpu_linear then cpu_gelu, fused in gemm_nt_fma's epilogue past 8 rows (same bits) */
void cpu_linear_gelu(float *y, const float *x, const float *w, int64_t m, int64_t n, int64_t k);
void cpu_gelu_tanh(float *out, const float *x, int64_t n);
void cpu_relu(float *out, const float *x, int64_t n);
void cpu_add(float *out, const float *a, const float *b, int64_t n);
void cpu_mul(float *out, const float *a, const float *b, int64_t n);
void cpu_embedding(float *out, const float *table, int64_t rows, int64_t dim, const int64_t *ids, int64_t n,
                   int accumulate);
void cpu_add_rows(float *x, const float *v, float alpha, int64_t rows, int64_t dim);
void cpu_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p);
void cpu_elu(float *out, const float *x, int64_t n);
void cpu_conv1d(float *out, const float *x, const float *w, const float *bias, const musae_conv1d_params *p);
void cpu_conv_transpose1d(float *out, const float *x, const float *w, const float *bias,
                          const musae_convt1d_params *p);
void cpu_lstm(float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
              const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work);
/* cpu_lstm over nb sequences of t steps that share the layer's weights (each its own x, out, h, c and work, as
 * cpu_lstm takes them); each sequence's results are bitwise those of cpu_lstm on it alone. Not in the op
 * table: EnCodec's batched encode (model/encodec_encode.c) calls it on the CPU table only. */
void cpu_lstm_batch(int nb, float *const *out, const float *const *x, int64_t t, int64_t d_in, int64_t hidden,
                    const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh, float *const *h,
                    float *const *c, float *const *work);
void cpu_add_layernorm(float *x, const float *res, float *out, const float *w, const float *b, int64_t rows,
                       int64_t dim, float eps);
void cpu_linear_bf16w(float *y, const float *x, const uint16_t *w, const float *bias, int64_t m, int64_t n,
                      int64_t k, float beta);
void cpu_f32_to_bf16(uint16_t *out, const float *x, int64_t n);
void cpu_tanh(float *out, const float *x, int64_t n);
void cpu_l2_normalize(float *out, const float *x, int64_t rows, int64_t dim);

#endif /* MUSAE_CPU_OPS_H */
