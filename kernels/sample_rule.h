/* The pieces of MusicGen's token choice (model/sampling.h) that the CPU and the GPU must compute to the
 * same bits, written once as MUSAE_HD functions: the CFG combine and the temperature in fp32, the exp of the
 * candidate probabilities in double, the candidates' order, and the delay pattern's rule for which sequence
 * positions keep a generated token.
 *
 * Why a hand-written exp: the probabilities feed an inverse-CDF draw, and a token differs whenever one
 * probability differs in its last bit near the draw. glibc's exp and CUDA's exp are both accurate but not
 * identical, so neither may be used; this one uses only correctly rounded IEEE operations (+, ×, floor and
 * exact bit assembly), each one explicitly rounded on the GPU (__dmul_rn/__dadd_rn: nvcc would otherwise
 * fuse a·b + c into an fma), and C11/C++ without -ffast-math does not contract on the host. */
#ifndef MUSAE_SAMPLE_RULE_H
#define MUSAE_SAMPLE_RULE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "host/core/hd.h"

#ifdef __CUDA_ARCH__
#define MUSAE_DMUL(a, b) __dmul_rn((a), (b))
#define MUSAE_DADD(a, b) __dadd_rn((a), (b))
#define MUSAE_FMUL(a, b) __fmul_rn((a), (b))
#define MUSAE_FADD(a, b) __fadd_rn((a), (b))
#define MUSAE_FSUB(a, b) __fsub_rn((a), (b))
#define MUSAE_FDIV(a, b) __fdiv_rn((a), (b))
#else
#define MUSAE_DMUL(a, b) ((a) * (b))
#define MUSAE_DADD(a, b) ((a) + (b))
#define MUSAE_FMUL(a, b) ((a) * (b))
#define MUSAE_FADD(a, b) ((a) + (b))
#define MUSAE_FSUB(a, b) ((a) - (b))
#define MUSAE_FDIV(a, b) ((a) / (b))
#endif

/* exp(x) for x <= 0 (a score minus the maximum score), within a few ulps of exp: Cody-Waite reduction
 * x = k·ln2 + r with |r| <= ln2/2 (fdlibm's split of ln2, whose high part has zero low bits so k·LN2_HI is
 * exact), the degree-13 Taylor polynomial of e^r (truncation < 5e-18 relative), times 2^k assembled from bits.
 * Results below 2^-1021 (x <= -708) and NaN give 0: such a candidate can never be drawn next to the
 * maximum, whose probability is 1. */
MUSAE_HD double musae_exp_neg(double x) {
    if (!(x > -708.0)) return 0.0;
    if (x >= 0.0) x = 0.0; /* only the maximum itself reaches 0 */
    const double LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
    const double kd = floor(MUSAE_DADD(MUSAE_DMUL(x, 1.4426950408889634), 0.5));
    const double r = MUSAE_DADD(MUSAE_DADD(x, -MUSAE_DMUL(kd, LN2_HI)), -MUSAE_DMUL(kd, LN2_LO));
    /* 1/i! for i = 13 .. 1 */
    const double c[13] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                          1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
                          1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5,
                          1.0};
    double p = c[0];
    for (int i = 1; i < 13; i++) p = MUSAE_DADD(MUSAE_DMUL(p, r), c[i]);
    p = MUSAE_DADD(MUSAE_DMUL(p, r), 1.0);
    const uint64_t bits = (uint64_t)(1023 + (int64_t)kd) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return MUSAE_DMUL(p, scale);
}

/* CFG as torch computes uncond + (cond - uncond) * g: three fp32 roundings, no fused multiply-add. */
MUSAE_HD float musae_cfg_score(float cond, float uncond, float g) {
    return MUSAE_FADD(uncond, MUSAE_FMUL(MUSAE_FSUB(cond, uncond), g));
}

/* TemperatureLogitsWarper: scores / T in fp32; HF adds no warper at T = 1. */
MUSAE_HD float musae_temper(float s, float t) { return t == 1.0f ? s : MUSAE_FDIV(s, t); }

/* The candidates' order as one unsigned key: ascending keys = score descending, then index ascending (a
 * total order, so every sort gives the same sequence). -0 is keyed as +0 (they compare equal). Scores that
 * are not candidates (-inf, NaN) get UINT64_MAX, after every candidate. */
MUSAE_HD uint64_t musae_cand_key(float s, int32_t i) {
    if (!(s > -INFINITY)) return UINT64_MAX;
    if (s == 0.0f) s = 0.0f;
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    const uint32_t asc = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* monotone in the float's value */
    return ((uint64_t)(~asc) << 32) | (uint32_t)i;
}
MUSAE_HD float musae_cand_score(uint64_t key) {
    const uint32_t asc = ~(uint32_t)(key >> 32);
    const uint32_t u = (asc & 0x80000000u) ? (asc & 0x7FFFFFFFu) : ~asc;
    float s;
    memcpy(&s, &u, sizeof s);
    return s;
}
MUSAE_HD int32_t musae_cand_index(uint64_t key) { return (int32_t)(uint32_t)key; }

/* The delay pattern (model/delay.h): whether codebook k of K keeps the token generated for sequence position
 * j of a sequence of max_length positions; a position that is not free holds BOS. */
MUSAE_HD int musae_delay_free(int delayed, int64_t K, int64_t max_length, int64_t k, int64_t j) {
    if (!delayed) return j >= 1;
    return j > k && j < max_length - K + 1 + k;
}

#endif /* MUSAE_SAMPLE_RULE_H */
