/* The tests' Gaussian numbers: Box–Muller over Philox (host/core/philox.h), a pure function of (seed, i), so a
 * test's data is the same on every run, machine and thread count. */
#ifndef MUSAE_TEST_RAND_H
#define MUSAE_TEST_RAND_H

#include <math.h>
#include <stdint.h>

#include "host/core/philox.h"

static inline double test_gauss(uint64_t seed, uint64_t i) {
    musae_u32x4 r = musae_philox(seed, 0x6A, i);
    double u1 = ((double)(r.v[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(r.v[1] >> 8) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif /* MUSAE_TEST_RAND_H */
