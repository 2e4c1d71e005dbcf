/* The exact sum's carries and its one rounding (exact_sum.h). */
#include "eval/exact_sum.h"

#include <math.h>

void exact_sum_norm(uint64_t *s) {
    uint64_t carry = 0;
    for (int i = 0; i < EXACT_SUM_LIMBS; i++) {
        const uint64_t t = s[i] + carry; /* s[i] < 2^63 and carry < 2^32: no wrap */
        s[i] = t & 0xffffffffu;
        carry = t >> 32;
    }
    /* 352 bits hold 2^75 maximal f32 values: a carry out of the top limb is beyond any count of rows */
    (void)carry;
}

double exact_sum_to_double(uint64_t *s) {
    exact_sum_norm(s);
    int t = EXACT_SUM_LIMBS - 1;
    while (t >= 0 && s[t] == 0) t--;
    if (t < 0) return 0.0;
    /* the top three limbs as a 96-bit integer x (scale 2^(32(t-2) - 149)), and whether anything lies below */
    unsigned __int128 x = 0;
    for (int i = t; i >= t - 2; i--) x = (x << 32) | (i >= 0 ? s[i] : 0);
    int sticky = 0;
    for (int i = t - 3; i >= 0; i--) sticky |= s[i] != 0;
    /* shifted so its top bit is bit 127; the upper 64 bits with a sticky bit 0 round correctly to 53 bits */
    int sh = 0;
    while (!(x >> 127)) x <<= 1, sh++;
    uint64_t top = (uint64_t)(x >> 64);
    if ((uint64_t)x != 0 || sticky) top |= 1;
    return ldexp((double)top, 64 - sh + 32 * (t - 2) - 149);
}
