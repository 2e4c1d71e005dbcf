/* The screens of analyze's encoder that the screen tests try (eval/analyze_encode.h): a kind and the ISA level it
 * runs at, so that the int16 AVX2 kernel is tried with both rescore variants. */
#ifndef MUSAE_TEST_SCREENS_H
#define MUSAE_TEST_SCREENS_H

#include "eval/analyze_encode.h"
#include "kernels/cpu/isa.h"

typedef struct {
    analyze_screen_kind kind;
    musae_isa isa;
    const char *name;
} screen_variant;

static const screen_variant SCREENS[] = {
    {ANALYZE_SCREEN_AMX, MUSAE_ISA_AMX, "AMX bf16"},
    {ANALYZE_SCREEN_I16_AVX512_VNNI, MUSAE_ISA_AVX512, "int16 VNNI"},
    {ANALYZE_SCREEN_I16_AVX2, MUSAE_ISA_AVX512, "int16 AVX2 kernel, AVX-512 rescore"},
    {ANALYZE_SCREEN_I16_AVX2, MUSAE_ISA_AVX2, "int16 AVX2"},
    {ANALYZE_SCREEN_I16_AVX_VNNI, MUSAE_ISA_AVX2, "int16 AVX-VNNI"},
};
enum { N_SCREENS = sizeof SCREENS / sizeof SCREENS[0] };

#endif /* MUSAE_TEST_SCREENS_H */
