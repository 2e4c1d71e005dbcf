/* The musae command: git-style verbs, one file each (host/cli/verb_<name>.c). A verb file defines
 *   const char verb_<name>_summary[];           one line for `musae --help`
 *   int verb_<name>(int argc, char **argv);    argv[0] is the verb name; returns the exit code
 * CMake collects the files into musae_verbs.inc, so adding a verb touches no shared file. */
#ifndef MUSAE_CLI_H
#define MUSAE_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "host/core/check.h"
#include "host/dist/dist.h"
#include "host/io/audio.h"

#include "kernels/ops.h"

#define MUSAE_VERB(name)                                                                                   \
    extern const char verb_##name##_summary[];                                                             \
    int verb_##name(int argc, char **argv);
#include "musae_verbs.inc"
#undef MUSAE_VERB

/* Strict number parsing for flags: the whole string must be a number in range, or musae_fail names the
 * flag ("--frames: expected an integer in 1..2047, got 'x'"). */
int64_t cli_int(const char *flag, const char *s, int64_t lo, int64_t hi);
double cli_double(const char *flag, const char *s, double lo, double hi);
/* The same without failing: 0 and *out, or -1 with that one-line reason in why (for verbs that add their own
 * hint, e.g. "see musae analyze --help"). */
int cli_parse_int(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out, char *why, size_t n);
int cli_parse_double(const char *flag, const char *s, double lo, double hi, double *out, char *why, size_t n);
/* "2,6,12" -> {2,6,12}; returns the count (at most max). */
int cli_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi);
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

/* Options through getopt_long, for every verb. A verb lists its options (struct option, long-only ones with
 * values from CLI_OPT_FIRST up) and loops `while ((c = cli_getopt(argc, argv, "o:", opts)) != -1) switch (c)`;
 * the operands are then argv[optind..argc). "--name value", "--name=value" and unique prefixes work, and
 * operands may sit between options. A bad option (unknown, without its value, or a value given to a flag)
 * ends the run with one line, "<reason>; see musae <verb> --help", and exit 1: argv[0] is the verb. */
enum { CLI_OPT_FIRST = 256 };
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* For the verbs that loop getopt_long themselves (opterr 0, ':' first in the short options) and print their own
 * refusal instead of exiting (analyze must leave MPI first): the reason getopt stopped, in why. c is getopt's
 * return: ':' gives "<option> needs a value", any other (the switch's default) "unknown option '<option>'", the
 * option as typed; -1, after the loop, "unexpected argument '<operand>'" when an operand is left. Returns 1 with
 * why filled, or 0 (c == -1 and no operand left). */
int cli_getopt_why(int c, int argc, char **argv, char *why, size_t n);
/* A refusal of the command line as one line: "musae: error: <why>; see musae <verb> --help", exit 1. */
MUSAE_PRINTF(2, 3) MUSAE_NORETURN void cli_usage_fail(const char *verb, const char *fmt, ...);

/* The audio file of the verbs that decode codes (decode, generate): -o OUT is WAV 16-bit PCM, or 32-bit float
 * WAV with --float (keeps samples beyond full scale), or FLAC 16-bit with --flac or when OUT ends in .flac.
 * CLI_AUDIO_OPTIONS in the option list; cli_audio_format refuses --float with FLAC. */
enum { CLI_OPT_FLOAT = 210, CLI_OPT_FLAC };
#define CLI_AUDIO_OPTIONS {"float", no_argument, NULL, CLI_OPT_FLOAT}, {"flac", no_argument, NULL, CLI_OPT_FLAC}
#define CLI_AUDIO_USAGE                                                                                    \
    "  --float              32-bit float WAV (keeps samples beyond full scale)\n"                           \
    "  --flac               FLAC 16-bit (also when OUT ends in .flac)\n"
musae_audio_format cli_audio_format(const char *out, int as_float, int as_flac);

/* --device cuda|cpu|auto and --precision fp32|bf16, shared by every verb that runs a model. A verb's flag
 * loop hands each flag to cli_device_flag (1 = it was one of these two and took `value`), then resolves
 * once. auto (the default) is the GPU when musae_ops_cuda() gives a table, else the CPU, and a log line
 * says which and why (musae_cuda_device_count's reason); --device cuda without a usable GPU is a
 * musae_fail. The precision applies to the MusicGen LM's matrices (model/musicgen.h mg_mat); default bf16
 * on the GPU (half the bytes every decoding step streams), fp32 on the CPU (the reference; bf16 there
 * runs through linear_bf16w, widening each weight per call, so it is slower, for checks only). */
typedef struct {
    const char *device;    /* NULL = auto */
    const char *precision; /* NULL = by device */
    const musae_dist *dist; /* when MPI is up: its node-local rank picks the GPU if the launcher's variables do not
                               (host/dist/dist_gpu.h); NULL: the launcher's variables only */
} cli_device_flags;
typedef struct {
    const musae_ops *ops;
    musae_precision prec;
} cli_device;
int cli_device_flag(cli_device_flags *f, const char *flag, const char *value);
/* The same for cli_getopt: CLI_DEVICE_OPTIONS in a verb's option list, and in its switch
 * `case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;`. */
enum { CLI_OPT_DEVICE = 200, CLI_OPT_PRECISION };
#define CLI_DEVICE_OPTIONS                                                                                 \
    {"device", required_argument, NULL, CLI_OPT_DEVICE}, {"precision", required_argument, NULL, CLI_OPT_PRECISION}
void cli_device_opt(cli_device_flags *f, int opt, const char *value);
/* has_lm 0: the verb runs EnCodec only (fp32 always), so --precision is refused rather than ignored. */
cli_device cli_device_resolve(const cli_device_flags *f, int has_lm);
/* The flags' lines for a verb's usage text. */
#define CLI_DEVICE_ONLY_USAGE                                                                              \
    "  --device D           cuda, cpu or auto (default: the GPU when one is usable, else the CPU)\n"
#define CLI_DEVICE_USAGE                                                                                   \
    CLI_DEVICE_ONLY_USAGE                                                                                  \
    "  --precision P        LM weights fp32 or bf16 (default bf16 on the GPU, fp32 on the CPU; T5 and\n"    \
    "                       EnCodec are always fp32)\n"

#endif /* MUSAE_CLI_H */
