#include "host/cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/dist/dist_gpu.h"
#include "kernels/cuda/cuda_device.h"

int cli_parse_int(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out, char *why, size_t n) {
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        snprintf(why, n, "%s: expected an integer in %lld..%lld, got '%s'", flag, (long long)lo, (long long)hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *flag, const char *s, double lo, double hi, double *out, char *why, size_t n) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        snprintf(why, n, "%s: expected a number in %g..%g, got '%s'", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int64_t cli_int(const char *flag, const char *s, int64_t lo, int64_t hi) {
    char why[512];
    int64_t v;
    if (cli_parse_int(flag, s, lo, hi, &v, why, sizeof why)) musae_fail("%s", why);
    return v;
}

double cli_double(const char *flag, const char *s, double lo, double hi) {
    char why[512];
    double v;
    if (cli_parse_double(flag, s, lo, hi, &v, why, sizeof why)) musae_fail("%s", why);
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

void cli_usage_fail(const char *verb, const char *fmt, ...) {
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    musae_fail("%s; see musae %s --help", why, verb);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts) {
    char spec[128];
    snprintf(spec, sizeof spec, ":%s", shortopts); /* ':' first: a missing value returns ':', not '?' */
    opterr = 0;                                      /* the reasons below replace getopt's own messages */
    const int c = getopt_long(argc, argv, spec, longopts, NULL);
    if (c != '?' && c != ':') return c;
    const char *typed = argv[optind - 1]; /* the argument getopt stopped at, as typed */
    const int is_long = typed && typed[0] == '-' && typed[1] == '-';
    const int name_len = is_long ? (int)strcspn(typed, "=") : 2;
    if (c == ':') cli_usage_fail(argv[0], "%.*s needs a value", name_len, typed);
    if (is_long && optopt && strchr(typed, '='))
        cli_usage_fail(argv[0], "%.*s takes no value, got '%s'", name_len, typed, strchr(typed, '=') + 1);
    if (is_long) cli_usage_fail(argv[0], "unknown option '%.*s'", name_len, typed);
    cli_usage_fail(argv[0], "unknown option '-%c'", optopt);
}

int cli_getopt_why(int c, int argc, char **argv, char *why, size_t n) {
    if (c == -1) {
        if (optind >= argc) return 0;
        snprintf(why, n, "unexpected argument '%s'", argv[optind]);
    } else if (c == ':') {
        snprintf(why, n, "%s needs a value", argv[optind - 1]);
    } else {
        snprintf(why, n, "unknown option '%s'", argv[optind - 1]);
    }
    return 1;
}

musae_audio_format cli_audio_format(const char *out, int as_float, int as_flac) {
    const size_t n = strlen(out);
    if (n >= 5 && !strcasecmp(out + n - 5, ".flac")) as_flac = 1;
    if (as_flac && as_float) musae_fail("--float and FLAC output exclude each other (FLAC holds integers)");
    return as_flac ? MUSAE_AUDIO_FLAC : as_float ? MUSAE_AUDIO_FLOAT : MUSAE_AUDIO_PCM16;
}

void cli_device_opt(cli_device_flags *f, int opt, const char *value) {
    cli_device_flag(f, opt == CLI_OPT_DEVICE ? "--device" : "--precision", value);
}

int cli_device_flag(cli_device_flags *f, const char *flag, const char *value) {
    const char **dst = !strcmp(flag, "--device") ? &f->device : !strcmp(flag, "--precision") ? &f->precision : NULL;
    if (!dst) return 0;
    if (!value) musae_fail("%s needs a value", flag);
    *dst = value;
    return 1;
}

cli_device cli_device_resolve(const cli_device_flags *f, int has_lm) {
    const char *dev = f->device ? f->device : "auto";
    if (strcmp(dev, "auto") && strcmp(dev, "cuda") && strcmp(dev, "cpu"))
        musae_fail("--device: expected cuda, cpu or auto, got '%s'", dev);
    if (f->precision && !has_lm) musae_fail("--precision applies to the MusicGen LM; EnCodec always runs in fp32");
    if (f->precision && strcmp(f->precision, "fp32") && strcmp(f->precision, "bf16"))
        musae_fail("--precision: expected fp32 or bf16, got '%s'", f->precision);
    cli_device d = {musae_ops_cpu(), MUSAE_PREC_FP32};
    char why[512] = "";
    if (strcmp(dev, "cpu")) {
        const int n = musae_cuda_device_count(why, sizeof why);
        /* one GPU per local rank under mpirun/srun, chosen before the first CUDA work creates anything */
        char how[128] = "";
        const int index = musae_dist_gpu(f->dist && f->dist->world > 1 ? f->dist->local_rank : -1, n, how, sizeof how);
        if (n > 0 && musae_cuda_select(index, why, sizeof why))
            musae_fail("--device: cannot use CUDA device %d (%s): %s", index, how, why);
        const musae_ops *cuda = n > 0 ? musae_ops_cuda() : NULL;
        if (cuda) {
            d.ops = cuda;
            if (strncmp(how, "no launcher", 11) && musae_log_get_level() >= MUSAE_LOG_INFO) { /* every rank, once */
                if (musae_world() > 1) fprintf(stderr, "[rank %d] ", musae_rank());
                fprintf(stderr, "musae: device: cuda %d of %d visible (%s)\n", index, n, how);
            }
            LOG_INFO("device: cuda (%s; %d device(s) visible, using device %d)",
                     f->device ? "--device cuda" : "auto: a GPU is usable", n, index);
        } else if (!strcmp(dev, "cuda")) {
            musae_fail("--device cuda: no usable CUDA device (%s)", why[0] ? why : "the CUDA table did not start");
        } else {
            LOG_INFO("device: cpu (auto: no usable CUDA device: %s)", why[0] ? why : "the CUDA table did not start");
        }
    } else {
        LOG_INFO("device: cpu (--device cpu)");
    }
    const int gpu = d.ops->device != MUSAE_DEVICE_CPU;
    d.prec = f->precision ? (!strcmp(f->precision, "bf16") ? MUSAE_PREC_BF16 : MUSAE_PREC_FP32)
                          : (gpu ? MUSAE_PREC_BF16 : MUSAE_PREC_FP32);
    if (has_lm)
        LOG_INFO("precision: %s LM weights (%s)", d.prec == MUSAE_PREC_BF16 ? "bf16" : "fp32",
             f->precision ? "--precision" : gpu ? "default on the GPU" : "default on the CPU");
    return d;
}
