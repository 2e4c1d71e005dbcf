/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
 * generator, so any draw is a pure function of (seed, stream, counter) and the CPU and the GPU produce the
 * same numbers without sharing state. musae's convention:
 *   key     = { seed low 32 bits, seed high 32 bits }
 *   counter = { counter low, counter high, stream low, stream high }
 * One call yields four 32-bit words. Streams name independent uses (e.g. a sampling step's batch row,
 * an SAE init tensor); counters index draws within a stream. */
#ifndef MUSAE_PHILOX_H
#define MUSAE_PHILOX_H

#include <stdint.h>

#include "host/core/hd.h"

typedef struct {
    uint32_t v[4];
} musae_u32x4;

MUSAE_HD uint32_t musae_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* The raw block function on a counter and a key (Random123 philox4x32 with 10 rounds). */
MUSAE_HD musae_u32x4 musae_philox4x32_10(musae_u32x4 ctr, uint32_t k0, uint32_t k1) {
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = musae_mulhilo32(M0, ctr.v[0], &hi0);
        uint32_t lo1 = musae_mulhilo32(M1, ctr.v[2], &hi1);
        musae_u32x4 n;
        n.v[0] = hi1 ^ ctr.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ ctr.v[3] ^ k1;
        n.v[3] = lo0;
        ctr = n;
        k0 += W0;
        k1 += W1;
    }
    return ctr;
}

/* Four words for (seed, stream, counter) in musae's convention. */
MUSAE_HD musae_u32x4 musae_philox(uint64_t seed, uint64_t stream, uint64_t counter) {
    musae_u32x4 c;
    c.v[0] = (uint32_t)counter;
    c.v[1] = (uint32_t)(counter >> 32);
    c.v[2] = (uint32_t)stream;
    c.v[3] = (uint32_t)(stream >> 32);
    return musae_philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* A uniform float in [0, 1) from the top 24 bits of a word: exactly representable, never 1.0. */
MUSAE_HD float musae_u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

#endif /* MUSAE_PHILOX_H */
