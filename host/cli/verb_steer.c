/* musae steer — the steering experiment (eval/steer_run.h, docs/STEER.md "The experiment"): steered clips, their
 * baseline and controls, re-measured and tested, into a resumable folder. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/steer_run.h"
#include "host/cli/cli.h"
#include "host/core/check.h"

const char verb_steer_summary[] = "steering experiment: steered clips vs baseline, random and other-feature controls, "
                                  "with statistics";

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: musae steer --model DIR --sae DIR --features FEATURES.h5 (--feature F,... | --kept-top N)\n"
        "                   --alpha A,... (--prompt TEXT ... | --prompts FILE) --seeds S --seconds D -o STEER/\n"
        "                   [--seed-base S0] [--guidance G] [--top-k K] [--top-p P] [--temperature T]\n"
        "                   [--steer-branch cond|uncond|both] [--alpha-max A] [--batch B] [--no-audio]\n"
        "                   [--n-boot N] [--fdr Q] [--random-seed R] [--random-draws R] [--max-batches N]\n"
        "                   [--clap DIR [--labels LABELS.jsonl [--labeler NAME]]] [--device D] [--precision P]\n\n"
        "For every feature, α, prompt and seed: the steered clip (v = α·β·W_dec[f], β = FEATURES.h5 max_act[f],\n"
        "added after the SAE's layer), R random directions of the same norm, another studied feature's direction\n"
        "of the same norm, and once per prompt and seed the baseline (α = 0) and the SAE passthrough (the layer's\n"
        "output replaced by its reconstruction). Clips of one seed share their sampling draws (paired) and run as\n"
        "items of CFG batches. Per clip: the studied features' activations re-measured from the codes (teacher-\n"
        "forced through the model and the SAE), codes changed vs the baseline, the WAV, its descriptors and their\n"
        "change from the baseline, and with --clap the CLAP alignment with each feature's label and exemplars and\n"
        "the CLAP distance to the baseline.\n"
        "Writes STEER/clips/, STEER/steer.jsonl (one line per clip) and STEER/summary.json (Wilcoxon signed-rank\n"
        "tests vs the baseline and vs the mean of the random draws, Benjamini–Hochberg, bootstrap CIs, the steerable\n"
        "fraction with a Wilson CI, gain vs distortion over α). Running the same command again continues a\n"
        "stopped run.\n\n"
        "  --model DIR          MusicGen folder\n"
        "  --sae DIR            SAE checkpoint (its musae.json names the layer)\n"
        "  --features FILE      musae analyze's FEATURES.h5 of this SAE (β = /features/max_act)\n"
        "  --feature F,...      the features to study, or\n"
        "  --kept-top N         the N kept features (/features/keep) with the largest max_act\n"
        "  --alpha A,...        the α values, each in (0, --alpha-max]\n"
        "  --prompt TEXT        a prompt (repeat), or\n"
        "  --prompts FILE       one prompt per line (empty lines skipped)\n"
        "  --seeds S            seeds S0 .. S0+S-1 per prompt (default 1); --seed-base S0 (default 0)\n"
        "  --seconds D          clip length\n"
        "  -o DIR               the study's folder (created; an existing study there is continued)\n"
        "  --guidance G         CFG scale (default generation_config.json's)\n"
        "  --top-k, --top-p, --temperature   sampling as musae generate (top-k 250)\n"
        "  --steer-branch BR    CFG rows steered: cond (default), uncond, both\n"
        "  --alpha-max A        allow α up to A (default 1)\n"
        "  --batch B            clips per CFG batch (default 16)\n"
        "  --no-audio           no WAVs and no descriptors\n"
        "  --n-boot N           bootstrap resamples (default 2000); --fdr Q  BH level (default 0.05)\n"
        "  --random-seed R      Philox seed of the random directions and the bootstrap (default 0)\n"
        "  --random-draws R     random directions per feature (1..1000); the steered clip is compared with their mean\n"
        "                       over the same prompt and seed (default 3)\n"
        "  --clap DIR           CLAP folder: per clip the CLAP cosine with the feature's label text and with its\n"
        "                       exemplars' centroid, and 1 - cosine with the baseline (distortion)\n"
        "  --labels FILE        LABELS.jsonl holding the features' labels (with --clap)\n"
        "  --labeler NAME       use that labeler's lines (default: the first usable line of each feature)\n"
        "  --max-batches N      stop after N batches (exit 2; the same command continues)\n" CLI_DEVICE_USAGE);
}

static int read_prompts(const char *path, steer_run_opts *o) {
    FILE *f = fopen(path, "rb");
    if (!f) musae_fail("--prompts %s: cannot be read: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n) continue;
        if (o->n_prompts == STEER_RUN_MAX) musae_fail("--prompts %s: more than %d prompts", path, STEER_RUN_MAX);
        o->prompts[o->n_prompts++] = strdup(line);
    }
    free(line);
    fclose(f);
    if (!o->n_prompts) musae_fail("--prompts %s: no prompt in the file", path);
    return 0;
}

static void parse_list(const char *flag, const char *s, double *out, int *n) {
    const char *p = s;
    *n = 0;
    while (1) {
        char *end = NULL;
        const double v = strtod(p, &end);
        if (end == p || (*end && *end != ','))
            musae_fail("%s: expected numbers separated by commas, got '%s'", flag, s);
        if (*n == STEER_RUN_MAX) musae_fail("%s: more than %d values", flag, STEER_RUN_MAX);
        out[(*n)++] = v;
        if (!*end) break;
        p = end + 1;
    }
}

int verb_steer(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    static steer_run_opts o;
    steer_run_opts_defaults(&o);
    cli_device_flags dev = {0};
    const char *prompts_file = NULL;
    enum {
        OPT_MODEL = CLI_OPT_FIRST,
        OPT_SAE,
        OPT_FEATURES,
        OPT_FEATURE,
        OPT_KEPT_TOP,
        OPT_ALPHA,
        OPT_PROMPT,
        OPT_PROMPTS,
        OPT_SEEDS,
        OPT_SEED_BASE,
        OPT_SECONDS,
        OPT_GUIDANCE,
        OPT_TOP_K,
        OPT_TOP_P,
        OPT_TEMPERATURE,
        OPT_BRANCH,
        OPT_ALPHA_MAX,
        OPT_BATCH,
        OPT_NO_AUDIO,
        OPT_N_BOOT,
        OPT_FDR,
        OPT_RANDOM_SEED,
        OPT_MAX_BATCHES,
        OPT_RANDOM_DRAWS,
        OPT_CLAP,
        OPT_LABELS,
        OPT_LABELER
    };
    static const struct option opts[] = {{"model", required_argument, NULL, OPT_MODEL},
                                         {"sae", required_argument, NULL, OPT_SAE},
                                         {"features", required_argument, NULL, OPT_FEATURES},
                                         {"feature", required_argument, NULL, OPT_FEATURE},
                                         {"kept-top", required_argument, NULL, OPT_KEPT_TOP},
                                         {"alpha", required_argument, NULL, OPT_ALPHA},
                                         {"prompt", required_argument, NULL, OPT_PROMPT},
                                         {"prompts", required_argument, NULL, OPT_PROMPTS},
                                         {"seeds", required_argument, NULL, OPT_SEEDS},
                                         {"seed-base", required_argument, NULL, OPT_SEED_BASE},
                                         {"seconds", required_argument, NULL, OPT_SECONDS},
                                         {"guidance", required_argument, NULL, OPT_GUIDANCE},
                                         {"top-k", required_argument, NULL, OPT_TOP_K},
                                         {"top-p", required_argument, NULL, OPT_TOP_P},
                                         {"temperature", required_argument, NULL, OPT_TEMPERATURE},
                                         {"steer-branch", required_argument, NULL, OPT_BRANCH},
                                         {"alpha-max", required_argument, NULL, OPT_ALPHA_MAX},
                                         {"batch", required_argument, NULL, OPT_BATCH},
                                         {"no-audio", no_argument, NULL, OPT_NO_AUDIO},
                                         {"n-boot", required_argument, NULL, OPT_N_BOOT},
                                         {"fdr", required_argument, NULL, OPT_FDR},
                                         {"random-seed", required_argument, NULL, OPT_RANDOM_SEED},
                                         {"max-batches", required_argument, NULL, OPT_MAX_BATCHES},
                                         {"random-draws", required_argument, NULL, OPT_RANDOM_DRAWS},
                                         {"clap", required_argument, NULL, OPT_CLAP},
                                         {"labels", required_argument, NULL, OPT_LABELS},
                                         {"labeler", required_argument, NULL, OPT_LABELER},
                                         {"output", required_argument, NULL, 'o'},
                                         CLI_DEVICE_OPTIONS,
                                         {0}};
    const char *features_list = NULL, *alpha_list = NULL;
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        const char *v = optarg;
        switch (c) {
        case OPT_MODEL: o.model_dir = v; break;
        case OPT_SAE: o.sae_dir = v; break;
        case OPT_FEATURES: o.features = v; break;
        case OPT_FEATURE: features_list = v; break;
        case OPT_KEPT_TOP: o.kept_top = (int)cli_int("--kept-top", v, 1, STEER_RUN_MAX); break;
        case OPT_ALPHA: alpha_list = v; break;
        case OPT_PROMPT:
            if (o.n_prompts == STEER_RUN_MAX) cli_usage_fail(argv[0], "more than %d prompts", STEER_RUN_MAX);
            o.prompts[o.n_prompts++] = v;
            break;
        case OPT_PROMPTS: prompts_file = v; break;
        case OPT_SEEDS: o.seeds = cli_int("--seeds", v, 1, 1000000); break;
        case OPT_SEED_BASE: o.seed0 = (uint64_t)cli_int("--seed-base", v, 0, INT64_MAX / 2); break;
        case OPT_SECONDS: o.seconds = cli_double("--seconds", v, 1e-3, 1e5); break;
        case OPT_GUIDANCE: o.guidance = cli_double("--guidance", v, 0.0, 1000.0); break;
        case OPT_TOP_K: o.sampler.top_k = (int)cli_int("--top-k", v, 0, INT32_MAX); break;
        case OPT_TOP_P: o.sampler.top_p = (float)cli_double("--top-p", v, 1e-6, 1.0); break;
        case OPT_TEMPERATURE: o.sampler.temperature = (float)cli_double("--temperature", v, 1e-6, 1e6); break;
        case OPT_BRANCH: o.branch = v; break;
        case OPT_ALPHA_MAX: o.alpha_max = cli_double("--alpha-max", v, 1e-30, 1e30); break;
        case OPT_BATCH: o.batch = cli_int("--batch", v, 1, 65536); break;
        case OPT_NO_AUDIO: o.audio = 0; break;
        case OPT_N_BOOT: o.n_boot = cli_int("--n-boot", v, 1, 100000000); break;
        case OPT_FDR: o.fdr = cli_double("--fdr", v, 1e-12, 1.0); break;
        case OPT_RANDOM_SEED: o.random_seed = (uint64_t)cli_int("--random-seed", v, 0, INT64_MAX); break;
        case OPT_MAX_BATCHES: o.max_batches = cli_int("--max-batches", v, 1, INT64_MAX); break;
        case OPT_RANDOM_DRAWS: o.random_draws = cli_int("--random-draws", v, 1, 1000); break;
        case OPT_CLAP: o.clap = v; break;
        case OPT_LABELS: o.labels = v; break;
        case OPT_LABELER: o.labeler = v; break;
        case 'o': o.out_dir = v; break;
        case CLI_OPT_DEVICE:
        case CLI_OPT_PRECISION: cli_device_opt(&dev, c, v); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!o.model_dir || !o.sae_dir || !o.features || !alpha_list || !(o.seconds > 0) || !o.out_dir)
        cli_usage_fail(argv[0], "--model, --sae, --features, --alpha, --seconds and -o are required");
    if (!features_list == !o.kept_top) cli_usage_fail(argv[0], "give one of --feature F,... or --kept-top N");
    if (prompts_file && o.n_prompts)
        cli_usage_fail(argv[0], "--prompt and --prompts are two sources of prompts: give one");
    if (prompts_file) read_prompts(prompts_file, &o);
    if (features_list) {
        double fv[STEER_RUN_MAX];
        parse_list("--feature", features_list, fv, &o.n_feature);
        for (int i = 0; i < o.n_feature; i++) {
            if (fv[i] != floor(fv[i]) || fv[i] < 0 || fv[i] > 1e12)
                musae_fail("--feature %g: expected a latent index (an integer >= 0)", fv[i]);
            o.feature[i] = (int64_t)fv[i];
        }
    }
    parse_list("--alpha", alpha_list, o.alpha, &o.n_alpha);
    const cli_device d = cli_device_resolve(&dev, 1);
    o.ops = d.ops;
    o.prec = d.prec;
    return steer_run(&o);
}
