/* Element types and the f16 / bf16 <-> f32 conversions (round to nearest, ties to even; NaN stays NaN and
 * is made quiet; overflow rounds to ±Inf; f16 subnormals are produced and read exactly). The conversions
 * are MUSAE_HD so the GPU converts exactly as the CPU does. */
#ifndef MUSAE_DTYPE_H
#define MUSAE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "host/core/hd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MUSAE_F32 = 0,
    MUSAE_F16,
    MUSAE_BF16,
    MUSAE_I32,
    MUSAE_I64,
    MUSAE_DTYPE_COUNT
} musae_dtype;

size_t musae_dtype_size(musae_dtype t);
const char *musae_dtype_name(musae_dtype t); /* "f32", "f16", ... */

MUSAE_HD uint32_t musae_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
MUSAE_HD float musae_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

MUSAE_HD uint16_t musae_f32_to_f16(float f) {
    uint32_t x = musae_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* Inf stays Inf; NaN keeps its top payload bits and is made quiet */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 = halfway to 2^16: rounds to Inf */
    if (ax >= 0x38800000u) {                                  /* normal half (>= 2^-14): rebias 127 -> 15 */
        uint32_t r = ax - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u); /* ties to even; a carry moves into the exponent correctly */
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax < 0x33000000u) return sign; /* below 2^-25 (2^-25 itself ties to even = 0) */
    /* half subnormal: value = q * 2^-24 */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126u - e;
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

MUSAE_HD float musae_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { /* subnormal: normalise the mantissa */
            int ee = 1;
            while (!(m & 0x400u)) {
                m <<= 1;
                ee--;
            }
            bits = sign | ((uint32_t)(ee + 112) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (m << 13);
    } else {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    }
    return musae_bits_f32(bits);
}

MUSAE_HD uint16_t musae_f32_to_bf16(float f) {
    uint32_t x = musae_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);                                            /* ties to even */
    return (uint16_t)(x >> 16);
}

MUSAE_HD float musae_bf16_to_f32(uint16_t b) { return musae_bits_f32((uint32_t)b << 16); }

/* Bulk conversions between any two dtypes (floats via f32; integers exactly; float -> int truncates and is
 * only used for code tensors). n elements; src and dst must not overlap. */
void musae_convert(void *dst, musae_dtype dst_t, const void *src, musae_dtype src_t, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DTYPE_H */
