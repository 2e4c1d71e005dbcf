/* The musae command: git-style verbs, one file each (host/cli/verb_<name>.c). A verb file defines
 *   const char verb_<name>_summary[];           one line for `musae --help`
 *   int verb_<name>(int argc, char **argv);    argv[0] is the verb name; returns the exit code
 * CMake collects the files into musae_verbs.inc, so adding a verb touches no shared file. */
#ifndef MUSAE_CLI_H
#define MUSAE_CLI_H

#include <stdint.h>

#define MUSAE_VERB(name)                                                                                   \
    extern const char verb_##name##_summary[];                                                             \
    int verb_##name(int argc, char **argv);
#include "musae_verbs.inc"
#undef MUSAE_VERB

/* Strict number parsing for flags: the whole string must be a number in range, or musae_fail names the
 * flag ("--frames: expected an integer in 1..2047, got 'x'"). */
int64_t cli_int(const char *flag, const char *s, int64_t lo, int64_t hi);
double cli_double(const char *flag, const char *s, double lo, double hi);
/* "2,6,12" -> {2,6,12}; returns the count (at most max). */
int cli_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi);
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

#endif /* MUSAE_CLI_H */
