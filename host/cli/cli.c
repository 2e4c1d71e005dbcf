#include "host/cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"

int64_t cli_int(const char *flag, const char *s, int64_t lo, int64_t hi) {
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi)
        musae_fail("%s: expected an integer in %lld..%lld, got '%s'", flag, (long long)lo, (long long)hi, s ? s : "");
    return v;
}

double cli_double(const char *flag, const char *s, double lo, double hi) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi))
        musae_fail("%s: expected a number in %g..%g, got '%s'", flag, lo, hi, s ? s : "");
    return v;
}

int cli_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi) {
    int n = 0;
    const char *p = s;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char tok[32];
        if (len == 0 || len >= sizeof tok) musae_fail("%s: malformed list '%s'", flag, s);
        memcpy(tok, p, len);
        tok[len] = 0;
        if (n >= max) musae_fail("%s: more than %d values in '%s'", flag, max, s);
        out[n++] = (int)cli_int(flag, tok, lo, hi);
        p = comma ? comma + 1 : NULL;
    }
    if (n == 0) musae_fail("%s: empty list", flag);
    return n;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}
