/* Which x86-64 level musae's own vectorized CPU kernels run at, and the dispatch that picks their variant.
 *
 * The build targets baseline x86-64 (no -march), so each hot loop is compiled three times, for x86-64-v4
 * (AVX-512), x86-64-v3 (AVX2, FMA) and the baseline, and the variant is chosen at run time: the best the CPU
 * has, or a lower one named by the environment variable MUSAE_ISA (amx, avx512, avx2 or baseline). The switch
 * exists so an AVX-512 machine can run the code an AVX2-only one runs (scripts/test.sh runs the CPU tests
 * with MUSAE_ISA=avx2 and OPENBLAS_CORETYPE=Haswell); asking for more than the CPU has is refused.
 *
 * Every variant of the avx512, avx2 and baseline levels returns the same bits as the others: the kernels use
 * fixed partial sums (not the vector width's), and ISO C mode keeps the compiler from contracting a·b + c
 * into an FMA (docs/CAPTURE.md, determinism). OpenBLAS picks its own kernels (OPENBLAS_CORETYPE), which do
 * differ between CPUs.
 *
 * The amx level (AVX-512 plus AMX-TILE and AMX-BF16, with the kernel's grant of the tile state) runs the
 * avx512 variants everywhere except the language model's products over many rows with packed weights
 * (cpu_linear_packed past 8 rows), which it computes in bf16x3 on the AMX tiles (kernels/cpu/gemm_amx.c):
 * fp32-level accuracy, but other bits than the FMA kernels'. So musae's CPU bits depend on whether the host
 * has AMX; MUSAE_ISA=avx512 (or lower) turns AMX off and gives the bits every other host gives. Capture
 * stores record which arithmetic made their rows (docs/CAPTURE.md).
 *
 * Use: write the loop as `ISA_BODY void name_body(params) {...}`, then `MUSAE_ISA_DISPATCH(name, (params),
 * (args))` defines the static void function `name` that calls the chosen variant. Replaces GCC's
 * target_clones, whose ifunc choice cannot be overridden. */
#ifndef MUSAE_ISA_H
#define MUSAE_ISA_H

typedef enum { MUSAE_ISA_BASELINE = 0, MUSAE_ISA_AVX2 = 1, MUSAE_ISA_AVX512 = 2, MUSAE_ISA_AMX = 3 } musae_isa;

/* The level in use: the CPU's best, or MUSAE_ISA's (read once; an unknown name or a level the CPU lacks is a
 * one-line error, exit 1). */
musae_isa musae_isa_get(void);
/* The best level the CPU supports (and this build has variants for); amx only where the kernel granted this
 * process the AMX tile state (the request is made here, once). */
musae_isa musae_isa_cpu(void);
const char *musae_isa_name(musae_isa isa);
/* Switches the level in-process (at most the CPU's), for tests that compare the variants; not while a kernel
 * runs on another thread. */
void musae_isa_set(musae_isa isa);
/* The calling thread's AMX tiles, at the amx level only: palette 1 with all eight tiles 16 rows of 64 bytes (the
 * one shape musae's AMX kernels use: an fp32 accumulator [16][16], a bf16 operand [16][32] or pairs [16][16][2]),
 * and their release. Each thread that runs tile instructions configures its own. */
void musae_amx_configure(void);
void musae_amx_release(void);

/* A body is always inlined into each variant, so it is compiled for that variant's target. */
#define ISA_BODY static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MUSAE_ISA_VARIANTS 1
#define MUSAE_ISA_DISPATCH(name, params, args)                                                                \
    __attribute__((target("arch=x86-64-v4"))) static void name##_avx512 params { name##_body args; }         \
    __attribute__((target("arch=x86-64-v3"))) static void name##_avx2 params { name##_body args; }           \
    static void name params {                                                                                 \
        switch (musae_isa_get()) {                                                                            \
        case MUSAE_ISA_AMX: /* the amx level runs the avx512 variants */                                      \
        case MUSAE_ISA_AVX512: name##_avx512 args; break;                                                     \
        case MUSAE_ISA_AVX2: name##_avx2 args; break;                                                         \
        default: name##_body args;                                                                            \
        }                                                                                                     \
    }
#else
#define MUSAE_ISA_VARIANTS 0
#define MUSAE_ISA_DISPATCH(name, params, args) \
    static void name params { name##_body args; }
#endif

#endif /* MUSAE_ISA_H */
