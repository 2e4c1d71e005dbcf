#include "host/core/omp_env.h"

#include <stdlib.h>
#include <unistd.h>

void musae_omp_env_init(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("MUSAE_OMP_ENV")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("MUSAE_OMP_ENV", "1", 1);
    execv("/proc/self/exe", argv);
}
