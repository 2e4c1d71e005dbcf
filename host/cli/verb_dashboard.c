/* musae dashboard — a static, offline site over one FEATURES.h5 (eval/dashboard.h, docs/DASHBOARD.md). */
#include <stdio.h>
#include <string.h>

#include "eval/dashboard.h"
#include "host/cli/cli.h"
#include "host/core/check.h"

const char verb_dashboard_summary[] = "a static site of every feature, listenable, that opens with no server";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae dashboard --features FEATURES.h5 [--labels L.jsonl ...] [--steer DIR] -o SITE [options]\n\n"
            "Writes SITE/index.html (every feature: status, clip rate, density, max activation, each labeler's best\n"
            "label; sorted, filtered and paged in the browser), SITE/features/f<i>.html (histogram, decoder\n"
            "neighbours, labels with evidence, steering results, top and decile clips as OGG excerpts with a\n"
            "spectrogram and the activation trace) and SITE/summary.html. The site opens from the file system: no\n"
            "server, nothing fetched from the network. Excerpts are cut once into SITE/audio and reused by a rerun.\n\n"
            "  --labels FILE    a LABELS.jsonl (docs/LABELS.md); repeat for several\n"
            "  --steer DIR      a folder with steer.jsonl (docs/DASHBOARD.md): baseline/steered/random audio\n"
            "  --top N          top clips with audio per feature (default 5)\n"
            "  --per-decile N   decile samples with audio per decile, 0..5 (default 1)\n"
            "  --seconds S      excerpt length, centred on the peak (default 5)\n"
            "  --no-audio       no excerpts (statistics and labels only)\n"
            "  --sae DIR        the SAE, if it moved since the analysis\n"
            "  --acts FILE      the store, if it moved since the analysis\n");
}

enum { OPT_FEATURES = CLI_OPT_FIRST, OPT_LABELS, OPT_STEER, OPT_TOP, OPT_PER_DECILE, OPT_SECONDS, OPT_NO_AUDIO, OPT_SAE,
       OPT_ACTS };

int verb_dashboard(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    static const struct option opts[] = {{"features", required_argument, 0, OPT_FEATURES},
                                         {"labels", required_argument, 0, OPT_LABELS},
                                         {"steer", required_argument, 0, OPT_STEER},
                                         {"top", required_argument, 0, OPT_TOP},
                                         {"per-decile", required_argument, 0, OPT_PER_DECILE},
                                         {"seconds", required_argument, 0, OPT_SECONDS},
                                         {"no-audio", no_argument, 0, OPT_NO_AUDIO},
                                         {"sae", required_argument, 0, OPT_SAE},
                                         {"acts", required_argument, 0, OPT_ACTS},
                                         {0, 0, 0, 0}};
    dashboard_opts o;
    dashboard_opts_defaults(&o);
    int ch;
    while ((ch = cli_getopt(argc, argv, "o:", opts)) != -1) {
        switch (ch) {
        case OPT_FEATURES: o.features = optarg; break;
        case OPT_LABELS:
            if (o.n_labels == DASH_MAX_LABEL_FILES) cli_usage_fail("dashboard", "at most %d --labels files", DASH_MAX_LABEL_FILES);
            o.labels[o.n_labels++] = optarg;
            break;
        case OPT_STEER: o.steer = optarg; break;
        case OPT_TOP: o.top = (int)cli_int("--top", optarg, 0, 1000); break;
        case OPT_PER_DECILE: o.per_decile = (int)cli_int("--per-decile", optarg, 0, 5); break;
        case OPT_SECONDS: o.seconds = cli_double("--seconds", optarg, 0.02, 3600); break;
        case OPT_NO_AUDIO: o.no_audio = 1; break;
        case OPT_SAE: o.sae_dir = optarg; break;
        case OPT_ACTS: o.acts = optarg; break;
        case 'o': o.out = optarg; break;
        }
    }
    if (optind < argc) cli_usage_fail("dashboard", "unexpected argument '%s'", argv[optind]);
    if (!o.features || !o.out) cli_usage_fail("dashboard", "--features and -o are required");
    char err[1600];
    if (dashboard_run(&o, err, sizeof err)) musae_fail("%s", err);
    printf("%s/index.html\n", o.out);
    return 0;
}
