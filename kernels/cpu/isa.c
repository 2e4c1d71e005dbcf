/* MUSAE_ISA: see isa.h. */
#include "kernels/cpu/isa.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

#if MUSAE_ISA_VARIANTS
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static musae_isa g_isa;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const char *const NAMES[] = {"baseline", "avx2", "avx512", "amx"};

const char *musae_isa_name(musae_isa isa) {
    return isa >= MUSAE_ISA_BASELINE && isa <= MUSAE_ISA_AMX ? NAMES[isa] : "?";
}

#if MUSAE_ISA_VARIANTS
static int g_amx;
static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;

/* AMX-BF16 and AMX-TILE (CPUID.7.0:EDX bits 22 and 24), and the kernel's permission for the tile data: Linux
 * gives a process the 8 KiB of tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM), for all its
 * threads; without it the first tile instruction faults. */
static void amx_probe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1) || !((d >> 24) & 1)) return;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    g_amx = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    if (!g_amx) LOG_DEBUG("the CPU has AMX but the kernel refused the tile state: the avx512 level is the best");
}
#endif

musae_isa musae_isa_cpu(void) {
#if MUSAE_ISA_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) {
        pthread_once(&g_amx_once, amx_probe);
        return g_amx ? MUSAE_ISA_AMX : MUSAE_ISA_AVX512;
    }
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
    for (int i = 0; i <= MUSAE_ISA_AMX; i++)
        if (!strcmp(env, NAMES[i])) want = i;
    if (want < 0) musae_fail("MUSAE_ISA=%s: unknown; use amx, avx512, avx2 or baseline", env);
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

#if MUSAE_ISA_VARIANTS && __GNUC__ >= 11
#include <immintrin.h>
#define AMX_TARGET __attribute__((target("amx-tile")))
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;
/* A constant in memory: GCC 12 does not treat ldtilecfg as reading its operand, and dropped the stores of a
 * configuration built on the stack. */
static const tile_config TILE_CONFIG = {.palette = 1,
                                        .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                        .rows = {16, 16, 16, 16, 16, 16, 16, 16}};
AMX_TARGET void musae_amx_configure(void) {
    MUSAE_ASSERT(musae_isa_get() >= MUSAE_ISA_AMX, "musae_amx_configure at the %s level", musae_isa_name(musae_isa_get()));
    _tile_loadconfig(&TILE_CONFIG);
}
AMX_TARGET void musae_amx_release(void) { _tile_release(); }
#else
void musae_amx_configure(void) { MUSAE_ASSERT(0, "musae_amx_configure: this build has no AMX code"); }
void musae_amx_release(void) {}
#endif
