/* MUSAE_ISA: see isa.h. */
#include "kernels/cpu/isa.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

static musae_isa g_isa;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const char *const NAMES[] = {"baseline", "avx2", "avx512"};

const char *musae_isa_name(musae_isa isa) {
    return isa >= MUSAE_ISA_BASELINE && isa <= MUSAE_ISA_AVX512 ? NAMES[isa] : "?";
}

musae_isa musae_isa_cpu(void) {
#if MUSAE_ISA_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return MUSAE_ISA_AVX512;
    if (__builtin_cpu_supports("x86-64-v3")) return MUSAE_ISA_AVX2;
#endif
    return MUSAE_ISA_BASELINE;
}

static void resolve(void) {
    const musae_isa cpu = musae_isa_cpu();
    g_isa = cpu;
    const char *env = getenv("MUSAE_ISA");
    if (!env || !*env) return;
    int want = -1;
    for (int i = 0; i <= MUSAE_ISA_AVX512; i++)
        if (!strcmp(env, NAMES[i])) want = i;
    if (want < 0) musae_fail("MUSAE_ISA=%s: unknown; use avx512, avx2 or baseline", env);
    if (want > (int)cpu)
        musae_fail("MUSAE_ISA=%s: this CPU (or build) has only %s; the switch can only lower the level", env,
                   NAMES[cpu]);
    g_isa = (musae_isa)want;
    LOG_DEBUG("MUSAE_ISA=%s: musae's CPU kernels run their %s variants (the CPU has %s)", env, NAMES[want], NAMES[cpu]);
}

musae_isa musae_isa_get(void) {
    pthread_once(&g_once, resolve);
    return g_isa;
}

void musae_isa_set(musae_isa isa) {
    MUSAE_ASSERT(isa >= MUSAE_ISA_BASELINE && isa <= musae_isa_cpu(), "ISA level %d: the CPU has only %s", (int)isa,
                 NAMES[musae_isa_cpu()]);
    pthread_once(&g_once, resolve);
    g_isa = isa;
}
