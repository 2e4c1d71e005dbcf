/* Part of the op-test driver (tests/test_ops.c, which runs it after the CPU table's own run): the CPU table's
 * results do not depend on who computes them. OpenBLAS's pool, started at 4 threads by main, must be left
 * single-threaded by the CPU ops, and two host threads calling them at once must get a lone call's bits; every
 * case of the driver (record_cpu) run again with 1 and 3 OpenMP threads and at each lower x86-64 level of
 * kernels/cpu/isa.h must give every output the bits of the first run. Split from test_ops.c: these runs
 * repeat the driver's cases rather than add any. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/isa.h"
#include "kernels/ops.h"
#include "test.h"
#include "test_ops.h"

/* ---- BLAS threads ------------------------------------------------------------------------------------------ */

/* cut into tiles that the OpenMP threads share, each an sgemm past OpenBLAS's own threading threshold */
enum { CC_M = 128, CC_N = 256, CC_K = 128, CC_ITERS = 1000 };
typedef struct {
    const float *a, *b, *want;
    int differ;
} concurrent_job;

static void *concurrent_gemms(void *arg) {
    concurrent_job *j = arg;
    float *c = musae_xmalloc(sizeof(float) * CC_M * CC_N);
    for (int it = 0; it < CC_ITERS; it++) {
        musae_ops_cpu()->gemm(0, 1, CC_M, CC_N, CC_K, 1.0f, j->a, CC_K, j->b, CC_K, 0.0f, c, CC_N);
        j->differ += memcmp(c, j->want, sizeof(float) * CC_M * CC_N) != 0;
    }
    free(c);
    return NULL;
}

static void blas_threads(void) {
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS has %d threads after the CPU ops ran (want 1: gemm.c)",
          openblas_get_num_threads());
    float *a = rnd(CC_M * CC_K, 1), *b = rnd(CC_N * CC_K, 1), *want = musae_xmalloc(sizeof(float) * CC_M * CC_N);
    musae_ops_cpu()->gemm(0, 1, CC_M, CC_N, CC_K, 1.0f, a, CC_K, b, CC_K, 0.0f, want, CC_N);
    concurrent_job jobs[2] = {{a, b, want, 0}, {a, b, want, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, concurrent_gemms, &jobs[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(jobs[0].differ + jobs[1].differ == 0, "%d of %d gemms from two threads at once differ from a lone call",
          jobs[0].differ + jobs[1].differ, 2 * CC_ITERS);
    free(a), free(b), free(want);
}

/* ---- OpenMP teams and ISA levels -------------------------------------------------------------------------- */

/* Whether got holds ref's bits; reports the first differing case under `what`. */
static int same_outputs(const char *what, const output_bits *ref, int n_ref, const output_bits *got, int n_got) {
    int differ = 0, first = -1;
    for (int i = 0; i < n_ref && i < n_got; i++)
        if (got[i].hash != ref[i].hash) differ++, first = first < 0 ? i : first;
    CHECK(n_got == n_ref && differ == 0, "%s: %d of %d outputs differ (first: %s)", what, differ, n_ref,
          first < 0 ? "-" : ref[first].what);
    return n_got == n_ref && differ == 0;
}

/* The CPU table with 1 and 3 OpenMP threads: the same outputs, bit for bit, as with the default team. */
static void thread_counts(void) {
    output_bits *ref = musae_xcalloc(MAX_OUTPUTS, sizeof *ref), *got = musae_xcalloc(MAX_OUTPUTS, sizeof *got);
    const int dflt = omp_get_max_threads(), n_ref = record_cpu(ref);
    const int counts[] = {1, 3};
    for (int i = 0; i < 2; i++) {
        omp_set_num_threads(counts[i]);
        char what[64];
        snprintf(what, sizeof what, "%d OpenMP threads vs %d", counts[i], dflt);
        if (same_outputs(what, ref, n_ref, got, record_cpu(got)))
            printf("%s: %d outputs, the same bits\n", what, n_ref);
    }
    omp_set_num_threads(dflt);
    free(ref), free(got);
}

/* The CPU table at each x86-64 level below the CPU's: the same outputs, bit for bit. */
static void isa_variants(void) {
    const musae_isa top = musae_isa_cpu();
    output_bits *ref = musae_xcalloc(MAX_OUTPUTS, sizeof *ref), *got = musae_xcalloc(MAX_OUTPUTS, sizeof *got);
    musae_isa_set(top);
    const int n_ref = record_cpu(ref);
    for (int isa = (int)top - 1; isa >= MUSAE_ISA_BASELINE; isa--) {
        musae_isa_set((musae_isa)isa);
        char what[64];
        snprintf(what, sizeof what, "%s variants vs %s", musae_isa_name((musae_isa)isa), musae_isa_name(top));
        if (same_outputs(what, ref, n_ref, got, record_cpu(got))) printf("%s: %d outputs, the same bits\n", what, n_ref);
    }
    if (top == MUSAE_ISA_BASELINE) printf("ISA part: this CPU (or build) has only the baseline variants\n");
    musae_isa_set(top);
    free(ref), free(got);
}
void test_ops_cpu_same_bits(int *pass, int *fail) {
    blas_threads();
    thread_counts();
    isa_variants();
    *pass = g_test_pass, *fail = g_test_fail;
}
