/* An exact, order-independent sum of non-negative f32 values: a fixed-point superaccumulator.
 *
 * Every finite non-negative f32 is an integer multiple of 2^-149 below 2^128, i.e. a 24-bit integer mantissa
 * shifted left by at most 253 bits. The sum is kept as that integer in EXACT_SUM_LIMBS limbs of 32 bits (limb i
 * holds bits [32i, 32i + 32), stored in a uint64 whose upper half collects carries), so any order of additions,
 * any split of the values across processes, gives the same integer; it is rounded to a double once, correctly
 * (round to nearest, ties to even), when read. 11 limbs = 352 bits: 277 bits of f32 range plus 75 bits of
 * headroom for the count of values. One add touches two limbs; a limb takes at most 2^32 - 1 per add, so
 * exact_sum_norm (carry propagation) is due before 2^31 adds since the last one (musae analyze normalises every
 * 2^30 adds of a latent and before a merge). `musae analyze` sums each latent's active values with it
 * (/features/mean_act), so 1, 2 or 3 ranks write the same bits (docs/ANALYZE.md). */
#ifndef MUSAE_EXACT_SUM_H
#define MUSAE_EXACT_SUM_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { EXACT_SUM_LIMBS = 11, EXACT_SUM_NORM_EVERY = 1 << 30 };

/* s += v, for v finite and >= 0 (a negative or non-finite v is the caller's bug; it is not checked here, in the
 * hot loop: musae analyze only adds ReLU/threshold outputs of finite rows). */
static inline void exact_sum_add(uint64_t *s, float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    const uint32_t e = (b >> 23) & 0xffu, m = b & 0x7fffffu;
    const uint32_t p = e ? e - 1 : 0;                       /* the mantissa's shift in units of 2^-149 */
    const uint64_t w = (uint64_t)(e ? m | 0x800000u : m) << (p & 31);
    s[p >> 5] += w & 0xffffffffu;
    s[(p >> 5) + 1] += w >> 32;
}

/* Propagates the carries: afterwards every limb is < 2^32 (the value is unchanged). */
void exact_sum_norm(uint64_t *s);
/* The sum rounded to the nearest double (ties to even); s need not be normalised (it is, afterwards). */
double exact_sum_to_double(uint64_t *s);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_EXACT_SUM_H */
