/* The op-test driver's parts (tests/test_ops.c runs them). */
#ifndef MUSAE_TEST_OPS_H
#define MUSAE_TEST_OPS_H

/* The CPU kernels' bit-for-bit checks (test_ops_cpu_bits.c): their CHECK counts, to add to the driver's. */
void test_ops_cpu_bits(int *pass, int *fail);

#endif /* MUSAE_TEST_OPS_H */
