/* musae excerpt — listenable excerpts of a feature's top clips (eval/excerpt.h, docs/ANALYZE.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/excerpt.h"
#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"

const char verb_excerpt_summary[] = "OGG excerpts around a feature's peaks in its top clips, with activation traces";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae excerpt --features FEATURES.h5 --feature F -o DIR [options]\n\n"
            "For the feature's top clips (musae analyze), cuts the source audio around the feature's peak and\n"
            "writes DIR/feature<F>_top<r>.ogg (OGG Vorbis, 32 kHz mono) and DIR/feature<F>_top<r>.json (the\n"
            "per-frame activation over the whole clip, re-encoded with the SAE, and where the excerpt lies).\n"
            "Clip names carry their source and span (file#t=a,b); a source that has moved or changed length\n"
            "is reported by name and skipped.\n\n"
            "  --top N        the first N top clips (default 10)\n"
            "  --seconds S    excerpt length, centred on the peak and kept inside the clip (default 5)\n"
            "  --sae DIR      the SAE, if it moved since the analysis (its sha256 must still match)\n"
            "  --acts FILE    the store, if it moved since the analysis\n");
}

static int bad_option(const char *reason) {
    fprintf(stderr, "musae: error: excerpt: %s (see musae excerpt --help)\n", reason);
    return 1;
}

int verb_excerpt(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *features = NULL, *out = NULL, *sae_dir = NULL, *acts = NULL;
    int64_t feature = -1, top = 10;
    double seconds = 5;
    static const struct option longopts[] = {{"features", required_argument, 0, 'f'},
                                             {"feature", required_argument, 0, 'i'},
                                             {"top", required_argument, 0, 'n'},
                                             {"seconds", required_argument, 0, 's'},
                                             {"sae", required_argument, 0, 'S'},
                                             {"acts", required_argument, 0, 'a'},
                                             {0, 0, 0, 0}};
    char reason[600];
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f': features = optarg; break;
        case 'i':
            if (cli_parse_int("--feature", optarg, 0, INT32_MAX, &feature, reason, sizeof reason)) return bad_option(reason);
            break;
        case 'n':
            if (cli_parse_int("--top", optarg, 1, 100000, &top, reason, sizeof reason)) return bad_option(reason);
            break;
        case 's':
            if (cli_parse_double("--seconds", optarg, 0.02, 3600, &seconds, reason, sizeof reason)) return bad_option(reason);
            break;
        case 'o': out = optarg; break;
        case 'S': sae_dir = optarg; break;
        case 'a': acts = optarg; break;
        default: cli_getopt_why(ch, argc, argv, reason, sizeof reason); return bad_option(reason);
        }
    }
    if (cli_getopt_why(-1, argc, argv, reason, sizeof reason)) return bad_option(reason);
    if (!features || feature < 0 || !out) return bad_option("--features, --feature and -o are required");
    char err[1200];
    excerpt_ctx x;
    if (excerpt_open(&x, features, sae_dir, acts, err, sizeof err)) musae_fail("%s", err);
    if (feature >= x.f.M) musae_fail("--feature %lld: %s has %lld latents", (long long)feature, features, (long long)x.f.M);
    if (mkdir(out, 0755) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", out, strerror(errno));
    const int64_t N = top < x.f.N ? top : x.f.N;
    int written = 0, skipped = 0;
    for (int64_t r = 0; r < N; r++) {
        const int32_t clip = x.f.top_clip[feature * x.f.N + r];
        if (clip < 0) break;
        char stem[96];
        snprintf(stem, sizeof stem, "feature%lld_top%lld", (long long)feature, (long long)r);
        excerpt_result res;
        int rc = excerpt_write(&x, (int)feature, clip, x.f.top_clip_frame[feature * x.f.N + r], seconds, out, stem,
                               &res, err, sizeof err);
        if (rc < 0) musae_fail("%s", err);
        if (rc > 0) {
            LOG_WARN("excerpt: top %lld: %s", (long long)r, err);
            skipped++;
            continue;
        }
        printf("%s  %s %.3f-%.3f s  peak %.4g at frame %d\n", res.audio, res.source, res.start, res.end, res.peak,
               res.peak_frame);
        written++;
    }
    if (written == 0 && skipped == 0) LOG_WARN("excerpt: feature %lld never fires in %s", (long long)feature, features);
    LOG_INFO("excerpt: %d excerpt(s) of feature %lld in %s, %d skipped", written, (long long)feature, out, skipped);
    excerpt_close(&x);
    return 0;
}
