/* musae label — a label for every kept feature, from one labeler (docs/LABELS.md): dsp (eval/label_dsp.h) now;
 * llm (eval/llm_label.h: an audio LLM over an OpenAI-compatible API) and clap (host/cli/clap_main.h: zero-shot
 * tags), each with its own options. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "eval/label_dsp.h"
#include "eval/llm_label.h"
#include "host/cli/clap_main.h"
#include "host/cli/cli.h"

const char verb_label_summary[] = "a label per kept feature into LABELS.jsonl: descriptors (dsp), an audio LLM (llm) or CLAP tags (clap)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae label --labeler dsp --features FEATURES.h5 --descriptors DESCRIPTORS.h5 -o LABELS.jsonl\n"
            "                   [--q Q] [--max-terms N]\n\n"
            "dsp: for every kept feature of FEATURES.h5 (musae analyze), compares each music descriptor of\n"
            "DESCRIPTORS.h5 (musae describe --acts on the same store) over the feature's top clips, and over every\n"
            "clip it fires on weighted by its activation, with its random non-firing clips: AUROC, Cliff's delta,\n"
            "medians and a Mann-Whitney p for tempo, loudness, spectra, pitch ...; the share of each key, mode and\n"
            "chord with a Fisher exact p. Benjamini-Hochberg over all tests of all features; the label names the\n"
            "strongest significant descriptors (\"fast tempo (median 160 BPM vs 80, AUROC 1.00), percussive\");\n"
            "a feature with none gets \"no descriptor differs\" (status no_signal, score 0).\n"
            "The clips of the two files are matched by name; every clip of FEATURES.h5 must be in DESCRIPTORS.h5.\n\n"
            "  --labeler L          dsp, llm or clap (their options: musae label --labeler llm|clap --help)\n"
            "  --features F         FEATURES.h5 from musae analyze\n"
            "  --descriptors D      DESCRIPTORS.h5 from musae describe --acts\n"
            "  -o LABELS.jsonl      written atomically; another labeler's lines already in it are kept, this\n"
            "                       labeler's are replaced (docs/LABELS.md)\n"
            "  --q Q                false discovery rate of Benjamini-Hochberg (default 0.05)\n"
            "  --max-terms N        descriptors named in one label (default 3)\n");
}

int verb_label(int argc, char **argv) {
    enum { OPT_LABELER = CLI_OPT_FIRST, OPT_FEATURES, OPT_DESCRIPTORS, OPT_Q, OPT_TERMS };
    static const struct option opts[] = {
        {"labeler", required_argument, NULL, OPT_LABELER}, {"features", required_argument, NULL, OPT_FEATURES},
        {"descriptors", required_argument, NULL, OPT_DESCRIPTORS}, {"output", required_argument, NULL, 'o'},
        {"q", required_argument, NULL, OPT_Q}, {"max-terms", required_argument, NULL, OPT_TERMS},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    /* the labeler is looked up before the options are parsed: each labeler takes its own (and its own --help) */
    const char *labeler = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--labeler") && i + 1 < argc) labeler = argv[i + 1];
        else if (!strncmp(argv[i], "--labeler=", 10)) labeler = argv[i] + 10;
    }
    if (labeler && !strcmp(labeler, "llm")) return llm_label_main(argc, argv);
    if (labeler && !strcmp(labeler, "clap")) return clap_label_main(argc, argv);
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }

    label_dsp_opts o;
    label_dsp_opts_defaults(&o);
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "o:h", opts)) != -1) {
        switch (c) {
        case OPT_LABELER: labeler = optarg; break;
        case OPT_FEATURES: o.features = optarg; break;
        case OPT_DESCRIPTORS: o.descriptors = optarg; break;
        case 'o': o.out = optarg; break;
        case OPT_Q: o.q = cli_double("--q", optarg, 1e-12, 1); break;
        case OPT_TERMS: o.max_terms = (int)cli_int("--max-terms", optarg, 1, 16); break;
        case 'h': usage(stdout); return 0;
        }
    }
    if (!labeler) cli_usage_fail("label", "--labeler dsp|llm|clap is required");
    if (strcmp(labeler, "dsp")) cli_usage_fail("label", "--labeler: expected dsp, llm or clap, got '%s'", labeler);
    if (optind < argc) cli_usage_fail("label", "unexpected argument '%s'", argv[optind]);
    if (!o.features) cli_usage_fail("label", "--features FEATURES.h5 is required");
    if (!o.descriptors) cli_usage_fail("label", "--descriptors DESCRIPTORS.h5 is required");
    if (!o.out) cli_usage_fail("label", "-o LABELS.jsonl is required");
    return label_dsp_run(&o);
}
