/* Command lines of `musae label --labeler clap` and `musae score --clap` (host/cli/clap_main.h). */
#include "host/cli/clap_main.h"

#include <stdio.h>
#include <string.h>

#include "eval/clap_label.h"
#include "eval/clap_score.h"
#include "host/cli/cli.h"

static void label_usage(FILE *f) {
    fprintf(f,
            "usage: musae label --labeler clap --clap DIR --features FEATURES.h5 --vocab FILE|mtg-jamendo\n"
            "                   -o LABELS.jsonl [options]\n\n"
            "Labels every kept feature of FEATURES.h5 (musae analyze) with the tags of a vocabulary that CLAP finds\n"
            "most similar to the feature's top clips, relative to its random clips where it never fires: per tag,\n"
            "the mean cosine of the tag prompt's text embedding to the top clips' audio embeddings minus the same\n"
            "over the random clips (docs/CLAP.md). Each clip is cut from its source by its store name\n"
            "(file#t=a,b), embedded once and cached.\n\n"
            "  --clap DIR          the HF CLAP folder (laion/larger_clap_music, ...; see musae clap --help)\n"
            "  --features F        FEATURES.h5 from musae analyze\n"
            "  --vocab V           mtg-jamendo (its 87 genre, 40 instrument and 56 mood/theme tags), one list of\n"
            "                      it (mtg-jamendo-genre, mtg-jamendo-instrument, mtg-jamendo-moodtheme), or a\n"
            "                      UTF-8 file of tags, one per line ('#' lines and empty lines skipped)\n"
            "  -o LABELS.jsonl     written atomically; other labelers' lines in it are kept, clap's replaced\n"
            "  --template T        the text embedded for a tag, {tag} replaced (default \"%s\",\n"
            "                      the default of HF's zero-shot audio classification)\n"
            "  --tags N            tags kept as evidence per feature, best first (default 5)\n"
            "  --cache FILE        clip embedding cache (default FEATURES.h5.clap-<model hash>.safetensors)\n"
            "  --acts STORE        the store, when it moved since the analysis (default: the one FEATURES.h5 names)\n"
            "  --batch N           clips per forward pass (default 8)\n" CLI_DEVICE_ONLY_USAGE,
            CLAP_LABEL_TEMPLATE);
}

int clap_label_main(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        label_usage(stdout);
        return 0;
    }
    clap_label_opts o;
    clap_label_opts_defaults(&o);
    const char *labeler = NULL;
    cli_device_flags dflags = {0};
    enum { OPT_LABELER = CLI_OPT_FIRST, OPT_CLAP, OPT_FEATURES, OPT_VOCAB, OPT_TEMPLATE, OPT_TAGS, OPT_CACHE, OPT_ACTS,
           OPT_BATCH };
    static const struct option opts[] = {
        {"labeler", required_argument, NULL, OPT_LABELER}, {"clap", required_argument, NULL, OPT_CLAP},
        {"features", required_argument, NULL, OPT_FEATURES}, {"vocab", required_argument, NULL, OPT_VOCAB},
        {"output", required_argument, NULL, 'o'},           {"template", required_argument, NULL, OPT_TEMPLATE},
        {"tags", required_argument, NULL, OPT_TAGS},         {"cache", required_argument, NULL, OPT_CACHE},
        {"acts", required_argument, NULL, OPT_ACTS},         {"batch", required_argument, NULL, OPT_BATCH},
        CLI_DEVICE_OPTIONS,                                  {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_LABELER: labeler = optarg; break;
        case OPT_CLAP: o.clap = optarg; break;
        case OPT_FEATURES: o.features = optarg; break;
        case OPT_VOCAB: o.vocab = optarg; break;
        case 'o': o.out = optarg; break;
        case OPT_TEMPLATE: o.tpl = optarg; break;
        case OPT_TAGS: o.n_tags = (int)cli_int("--tags", optarg, 1, 1000); break;
        case OPT_CACHE: o.cache = optarg; break;
        case OPT_ACTS: o.acts = optarg; break;
        case OPT_BATCH: o.batch = (int)cli_int("--batch", optarg, 1, 4096); break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (labeler && strcmp(labeler, "clap"))
        cli_usage_fail(argv[0], "--labeler: these are the clap labeler's options, got '%s'", labeler);
    if (!o.clap || !o.features || !o.vocab || !o.out)
        cli_usage_fail(argv[0], "--clap, --features, --vocab and -o are required");
    if (!strstr(o.tpl, "{tag}")) cli_usage_fail(argv[0], "--template '%s' has no {tag}", o.tpl);
    o.ops = cli_device_resolve(&dflags, 0).ops;
    return clap_label_run(&o);
}

static void score_usage(FILE *f) {
    fprintf(f,
            "usage: musae score --clap DIR --features FEATURES.h5 --labels LABELS.jsonl [-o OUT.jsonl] [options]\n\n"
            "Scores every label (status ok) of LABELS.jsonl, from any labeler, with CLAP as the judge: the cosine\n"
            "of the label's text embedding to the feature's top clips (clap_alignment), the same minus over its\n"
            "random non-firing clips (clap_contrast), and the AUROC of that cosine separating the feature's decile\n"
            "samples from its non-firing clips (clap_detection_auroc). Adds them to each line's scores object\n"
            "(docs/LABELS.md); other keys are kept. Clip embeddings are cached as musae label --labeler clap's.\n\n"
            "  --clap DIR          the HF CLAP folder (see musae clap --help)\n"
            "  --features F        FEATURES.h5 the labels were made from\n"
            "  --labels L          LABELS.jsonl\n"
            "  -o OUT              where to write (default: L, replaced atomically)\n"
            "  --labeler NAME      score only that labeler's lines (default: all)\n"
            "  --template T        the text embedded for a label, {label} replaced (default \"{label}\")\n"
            "  --cache FILE        clip embedding cache (default FEATURES.h5.clap-<model hash>.safetensors)\n"
            "  --acts STORE        the store, when it moved since the analysis\n"
            "  --batch N           clips per forward pass (default 8)\n" CLI_DEVICE_ONLY_USAGE);
}

int clap_score_main(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        score_usage(stdout);
        return 0;
    }
    clap_score_opts o;
    clap_score_opts_defaults(&o);
    cli_device_flags dflags = {0};
    enum {
        OPT_CLAP = CLI_OPT_FIRST,
        OPT_FEATURES,
        OPT_LABELS,
        OPT_LABELER,
        OPT_TEMPLATE,
        OPT_CACHE,
        OPT_ACTS,
        OPT_BATCH
    };
    static const struct option opts[] = {
        {"clap", required_argument, NULL, OPT_CLAP},       {"features", required_argument, NULL, OPT_FEATURES},
        {"labels", required_argument, NULL, OPT_LABELS},   {"output", required_argument, NULL, 'o'},
        {"labeler", required_argument, NULL, OPT_LABELER}, {"template", required_argument, NULL, OPT_TEMPLATE},
        {"cache", required_argument, NULL, OPT_CACHE},     {"acts", required_argument, NULL, OPT_ACTS},
        {"batch", required_argument, NULL, OPT_BATCH},     CLI_DEVICE_OPTIONS,
        {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_CLAP: o.clap = optarg; break;
        case OPT_FEATURES: o.features = optarg; break;
        case OPT_LABELS: o.labels = optarg; break;
        case 'o': o.out = optarg; break;
        case OPT_LABELER: o.only = optarg; break;
        case OPT_TEMPLATE: o.tpl = optarg; break;
        case OPT_CACHE: o.cache = optarg; break;
        case OPT_ACTS: o.acts = optarg; break;
        case OPT_BATCH: o.batch = (int)cli_int("--batch", optarg, 1, 4096); break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!o.clap || !o.features || !o.labels) cli_usage_fail(argv[0], "--clap, --features and --labels are required");
    if (!strstr(o.tpl, "{label}")) cli_usage_fail(argv[0], "--template '%s' has no {label}", o.tpl);
    o.ops = cli_device_resolve(&dflags, 0).ops;
    return clap_score_run(&o);
}
