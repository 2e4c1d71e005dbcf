/* The op-test driver's parts (tests/test_ops.c runs them) and the driver's pieces they use. */
#ifndef MUSAE_TEST_OPS_H
#define MUSAE_TEST_OPS_H

#include <stdint.h>

/* One output's bits, in case order, as record_cpu keeps them. */
enum { MAX_OUTPUTS = 512 };
typedef struct {
    char what[96];
    uint64_t hash;
} output_bits;

/* The driver's draws (Philox seed 2024): n floats uniform in [-scale, scale), malloc'd. */
float *rnd(int64_t n, float scale);
/* Runs every case of the driver on the CPU table, recording each output's bits into rec (MAX_OUTPUTS);
 * returns the number of outputs. Its checks count in the driver. */
int record_cpu(output_bits *rec);

/* The CPU table's same-bits runs (test_ops_cpu_same_bits.c): OpenBLAS's threads, other OpenMP teams, lower ISA
 * levels. Their CHECK counts, to add to the driver's. */
void test_ops_cpu_same_bits(int *pass, int *fail);
/* The CPU kernels' bit-for-bit checks (test_ops_cpu_bits.c): their CHECK counts, to add to the driver's. */
void test_ops_cpu_bits(int *pass, int *fail);

#endif /* MUSAE_TEST_OPS_H */
