/* musae — entry point: dispatches to a verb. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/core/log.h"
#include "host/core/omp_env.h"
#include "kernels/cpu/isa.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*fn)(int, char **);
} verb;

static const verb k_verbs[] = {
#define MUSAE_VERB(n) {#n, verb_##n##_summary, verb_##n},
#include "musae_verbs.inc"
#undef MUSAE_VERB
};
static const int k_n_verbs = (int)(sizeof k_verbs / sizeof k_verbs[0]);

static void usage(FILE *f) {
    fprintf(f,
            "musae %s — discover, label and steer interpretable concepts in MusicGen\n\n"
            "usage: musae <verb> [options]   (musae <verb> --help for each verb's options)\n\nverbs:\n",
            MUSAE_VERSION);
    for (int i = 0; i < k_n_verbs; i++) fprintf(f, "  %-10s %s\n", k_verbs[i].name, k_verbs[i].summary);
    fprintf(f, "\nenvironment: MUSAE_LOG=error|warn|info|debug, MUSAE_PROGRESS_INTERVAL=seconds (non-TTY progress),\n"
               "  MUSAE_ISA=avx512|avx2|baseline (run musae's CPU kernels at a lower x86-64 level than the CPU's)\n");
}

int main(int argc, char **argv) {
    musae_omp_env_init(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    /* options before the verb: "+" stops at the first operand (the verb), whose own options follow it */
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}, {0}};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "+h", opts, NULL)) != -1;) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c == 'V') {
            printf("musae %s\n", MUSAE_VERSION);
            return 0;
        }
        fprintf(stderr, "musae: error: unknown option '%s'; see musae --help\n", argv[optind - 1]);
        return 1;
    }
    musae_isa_get(); /* a bad MUSAE_ISA is refused before any work */
    if (optind == argc) {
        usage(stderr);
        return 2;
    }
    argc -= optind - 1; /* what follows the verb is its own parse, which starts afresh */
    argv += optind - 1;
    optind = 0; /* 0, not 1: glibc then forgets this parse's "+" (stop at the first operand) */
    for (int i = 0; i < k_n_verbs; i++)
        if (!strcmp(argv[1], k_verbs[i].name)) return k_verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "musae: error: unknown verb '%s'; see musae --help\n", argv[1]);
    return 1;
}
