/* Branch-free float32 exp for the elementwise loops of the CPU kernels (ELU, LSTM gates), written with GCC
 * vector extensions so it compiles to SIMD code on any x86-64 baseline and to wider registers in the
 * variants of kernels/cpu/isa.h, with the same results everywhere: ISO C mode does not contract a·b + c into FMAs.
 * exp: range reduction x = n·ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial, 2^n from the exponent bits;
 * within 2 float ulps on [-87, 88] (tests/test_encodec_ops.c). Callers clamp to that range. */
#ifndef MUSAE_VEC_MATH_H
#define MUSAE_VEC_MATH_H

#include <stdint.h>

/* Every helper is always inlined: called out of line (at -O0) from an AVX-512 variant (isa.h), a 64-byte
 * vector would cross between the AVX-512 and the baseline calling conventions (GCC's -Wpsabi note) and
 * arrive as garbage. Inlined, no ABI is crossed, so the note is noise. */
#pragma GCC diagnostic ignored "-Wpsabi"
#define VM_INLINE static inline __attribute__((always_inline))

typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

#define V16(c) ((f32x16){c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c})

VM_INLINE f32x16 v_select(i32x16 mask, f32x16 a, f32x16 b) { /* mask lanes are all ones or zero */
    i32x16 ia = (i32x16)a, ib = (i32x16)b;
    return (f32x16)((ia & mask) | (ib & ~mask));
}

VM_INLINE f32x16 v_min(f32x16 a, f32x16 b) { return v_select(a < b, a, b); }
VM_INLINE f32x16 v_max(f32x16 a, f32x16 b) { return v_select(a > b, a, b); }

/* exp(x) for x in [-87, 88] (2^n stays a normal float). */
VM_INLINE f32x16 v_exp(f32x16 x) {
    /* round to nearest with the 1.5·2^23 trick (no rounding instruction needed) */
    f32x16 n = (x * V16(1.44269504088896341f) + V16(12582912.0f)) - V16(12582912.0f);
    f32x16 r = x - n * V16(0.693145751953125f) - n * V16(1.42860682030941723e-06f);
    f32x16 p = V16(1.0f / 5040.0f);
    p = p * r + V16(1.0f / 720.0f);
    p = p * r + V16(1.0f / 120.0f);
    p = p * r + V16(1.0f / 24.0f);
    p = p * r + V16(1.0f / 6.0f);
    p = p * r + V16(0.5f);
    p = p * r + V16(1.0f);
    p = p * r + V16(1.0f);
    i32x16 e = (__builtin_convertvector(n, i32x16) + 127) << 23;
    return p * (f32x16)e;
}

/* expm1(x) for x <= 0: a Taylor series near 0 (no cancellation), exp(x) - 1 elsewhere (exp(x) > 0.77 is
 * not small there). Below -87, -1 to float precision. */
VM_INLINE f32x16 v_expm1_neg(f32x16 x) {
    f32x16 big = v_exp(v_max(x, V16(-87.0f))) - V16(1.0f);
    f32x16 t = x * V16(1.0f / 362880.0f) + V16(1.0f / 40320.0f);
    t = t * x + V16(1.0f / 5040.0f);
    t = t * x + V16(1.0f / 720.0f);
    t = t * x + V16(1.0f / 120.0f);
    t = t * x + V16(1.0f / 24.0f);
    t = t * x + V16(1.0f / 6.0f);
    t = t * x + V16(0.5f);
    f32x16 small = x + x * x * t;
    return v_select(x > V16(-0.25f), small, big);
}

/* σ(x) = 1 / (1 + exp(-x)), exp's argument clamped to its range (σ is 0 or 1 to float precision there). */
VM_INLINE f32x16 v_sigmoid(f32x16 x) {
    return V16(1.0f) / (V16(1.0f) + v_exp(v_min(v_max(-x, V16(-87.0f)), V16(88.0f))));
}

/* tanh(x) = sign(x)·(1 - e) / (1 + e), e = exp(-2|x|): absolute error ~1e-7 near 0, relative elsewhere. */
VM_INLINE f32x16 v_tanh(f32x16 x) {
    f32x16 ax = v_select(x < V16(0.0f), -x, x);
    f32x16 e = v_exp(v_max(V16(-2.0f) * ax, V16(-87.0f)));
    f32x16 t = (V16(1.0f) - e) / (V16(1.0f) + e);
    return v_select(x < V16(0.0f), -t, t);
}

VM_INLINE f32x16 v_load(const float *p) {
    f32x16 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
VM_INLINE void v_store(float *p, f32x16 v) { __builtin_memcpy(p, &v, sizeof v); }

#endif /* MUSAE_VEC_MATH_H */
