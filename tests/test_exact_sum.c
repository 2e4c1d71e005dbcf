/* eval/exact_sum.h, the superaccumulator behind /features/mean_act: for sets of non-negative f32 values across
 * the whole range (zero, subnormals, FLT_MAX, mixed magnitudes where a double sum loses bits),
 *   - any order and any split into partial sums (merged limb by limb, as ranks merge) give the same bits;
 *   - the result is the exact sum correctly rounded to double: checked against an independent exact sum in
 *     __int128 (values restricted to [2^-40, 2^40) there, so 2^17 of them fit) converted by the compiler's own
 *     correctly rounded __int128 -> double (libgcc __floattidf), then scaled by a power of two;
 *   - the normalisation keeps limbs below 2^32 and the value unchanged. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "eval/exact_sum.h"
#include "host/core/philox.h"
#include "test.h"

/* A non-negative float from (seed, i) with a random exponent in [lo, hi] and a random mantissa. */
static float rand_float(uint64_t seed, uint64_t i, int lo, int hi) {
    const musae_u32x4 r = musae_philox(seed, 0x5E, i);
    const int e = lo + (int)(r.v[0] % (uint32_t)(hi - lo + 1));
    return ldexpf(1.0f + (float)(r.v[1] >> 9) / 8388608.0f, e);
}

static double sum_in_order(const float *v, const int64_t *order, int64_t n) {
    uint64_t s[EXACT_SUM_LIMBS] = {0};
    for (int64_t i = 0; i < n; i++) exact_sum_add(s, v[order ? order[i] : i]);
    return exact_sum_to_double(s);
}

/* The values split into `parts` contiguous partial sums, normalised and added limb by limb (as analyze_sum_u64
 * does across ranks), then rounded. */
static double sum_in_parts(const float *v, int64_t n, int parts) {
    uint64_t total[EXACT_SUM_LIMBS] = {0};
    for (int p = 0; p < parts; p++) {
        uint64_t s[EXACT_SUM_LIMBS] = {0};
        for (int64_t i = n * p / parts; i < n * (p + 1) / parts; i++) exact_sum_add(s, v[i]);
        exact_sum_norm(s);
        for (int l = 0; l < EXACT_SUM_LIMBS; l++) total[l] += s[l];
    }
    return exact_sum_to_double(total);
}

static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_orders(const char *what, const float *v, int64_t n) {
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) perm[i] = n - 1 - i;
    const double fwd = sum_in_order(v, NULL, n), rev = sum_in_order(v, perm, n);
    for (int64_t i = n - 1; i > 0; i--) { /* a Philox shuffle */
        const int64_t j = (int64_t)(musae_philox(77, 1, (uint64_t)i).v[0] % (uint64_t)(i + 1));
        const int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    const double shuf = sum_in_order(v, perm, n);
    CHECK(same_double(fwd, rev) && same_double(fwd, shuf), "%s: forward %.17g, reversed %.17g, shuffled %.17g", what,
          fwd, rev, shuf);
    for (int parts = 2; parts <= 7; parts++) {
        const double p = sum_in_parts(v, n, parts);
        CHECK(same_double(fwd, p), "%s: %d partial sums give %.17g, one sum %.17g", what, parts, p, fwd);
    }
    free(perm);
}

int main(void) {
    enum { N = 1 << 17 };
    float *v = malloc(sizeof(float) * N);
    /* 1. the exact reference: values in [2^-40, 2^41), as integers of 2^-63 in __int128 */
    for (int trial = 0; trial < 4; trial++) {
        const int64_t n = trial == 0 ? 3 : trial == 1 ? 1000 : N;
        unsigned __int128 ref = 0;
        for (int64_t i = 0; i < n; i++) {
            v[i] = rand_float(100 + (uint64_t)trial, (uint64_t)i, -40, 40);
            ref += (unsigned __int128)ldexp((double)v[i], 63); /* exact: at most 24 significant bits, >= 2^23 */
        }
        const double want = ldexp((double)ref, -63), got = sum_in_order(v, NULL, n);
        CHECK(same_double(want, got), "trial %d (%lld values): exact sum rounded %.17g, superaccumulator %.17g", trial,
              (long long)n, want, got);
        check_orders("mixed magnitudes", v, n);
    }
    /* 2. a sum a double accumulator gets wrong: 2^53 then many 1s (exact: 2^53 + 2^16; in double order-dependent) */
    v[0] = 9007199254740992.0f;
    for (int i = 1; i <= 65536; i++) v[i] = 1.0f;
    CHECK(same_double(sum_in_order(v, NULL, 65537), 9007199254740992.0 + 65536.0), "2^53 + 2^16 ones: %.17g",
          sum_in_order(v, NULL, 65537));
    check_orders("2^53 and ones", v, 65537);
    /* 3. the ends of the range: zero, the smallest subnormal, FLT_MAX many times (2^128 · 2^17 fits a double) */
    for (int64_t i = 0; i < N; i++)
        v[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? FLT_TRUE_MIN : FLT_MAX;
    const double big = sum_in_order(v, NULL, N);
    CHECK(same_double(big, (double)FLT_MAX * (double)(N / 3)), /* exact product; the subnormals lie below its ulp */
          "FLT_MAX x %d + subnormals: %.17g", N / 3, big);
    check_orders("range ends", v, N);
    uint64_t s[EXACT_SUM_LIMBS] = {0};
    exact_sum_add(s, FLT_TRUE_MIN);
    CHECK(same_double(exact_sum_to_double(s), (double)FLT_TRUE_MIN), "one subnormal: %.17g", exact_sum_to_double(s));
    memset(s, 0, sizeof s);
    CHECK(same_double(exact_sum_to_double(s), 0.0), "an empty sum is 0");
    /* 4. ties round to even: 2^53 + 1 (halfway) -> 2^53; 2^53 + 1 + 2^-149 (above halfway) -> 2^53 + 2 */
    memset(s, 0, sizeof s);
    exact_sum_add(s, 9007199254740992.0f);
    exact_sum_add(s, 1.0f);
    CHECK(same_double(exact_sum_to_double(s), 9007199254740992.0), "2^53 + 1 rounds to even: %.17g",
          exact_sum_to_double(s));
    exact_sum_add(s, FLT_TRUE_MIN);
    CHECK(same_double(exact_sum_to_double(s), 9007199254740994.0), "2^53 + 1 + 2^-149 rounds up: %.17g",
          exact_sum_to_double(s));
    /* 5. normalisation: limbs < 2^32 after it, the value unchanged */
    memset(s, 0, sizeof s);
    for (int i = 0; i < 100000; i++) exact_sum_add(s, rand_float(9, (uint64_t)i, -149, 127));
    const double before = exact_sum_to_double(s);
    int small = 1;
    for (int l = 0; l < EXACT_SUM_LIMBS; l++) small &= s[l] < ((uint64_t)1 << 32);
    CHECK(small && same_double(before, exact_sum_to_double(s)), "normalised limbs < 2^32, value kept");
    free(v);
    TEST_END();
}
