/* The command lines of `musae label --labeler llm` and `musae score` (eval/llm_label.h): options, --help, and
 * the client settings they resolve; the work is in eval/llm_label.c and eval/llm_score.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/llm_label.h"
#include "host/cli/cli.h"
#include "host/core/check.h"

static int common_opt(llm_common *c, const char *verb, int opt, const char *v) {
    char why[256];
    int64_t i;
    double d;
    switch (opt) {
    case LLM_OPT_ENDPOINT: c->endpoint = v; return 1;
    case LLM_OPT_MODEL: c->model = v; return 1;
    case LLM_OPT_KEY_ENV: c->key_env = v; return 1;
    case LLM_OPT_CACHE: c->cache = v; return 1;
    case LLM_OPT_NO_CACHE: c->no_cache = 1; return 1;
    case LLM_OPT_SAE: c->sae = v; return 1;
    case LLM_OPT_ACTS: c->acts = v; return 1;
    case LLM_OPT_PARALLEL:
        if (cli_parse_int("--parallel", v, 1, 256, &i, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->parallel = (int)i;
        return 1;
    case LLM_OPT_RETRIES:
        if (cli_parse_int("--retries", v, 0, 100, &i, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->retries = (int)i;
        return 1;
    case LLM_OPT_AUDIO_RATE:
        if (cli_parse_int("--audio-rate", v, 8000, 48000, &i, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->audio_rate = (int)i;
        return 1;
    case LLM_OPT_SEED:
        if (cli_parse_int("--seed", v, 0, INT64_MAX, &i, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->seed = (uint64_t)i;
        return 1;
    case LLM_OPT_TIMEOUT:
        if (cli_parse_double("--timeout", v, 0.1, 86400, &d, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->timeout_s = d;
        return 1;
    case LLM_OPT_BACKOFF:
        if (cli_parse_double("--backoff", v, 0, 60, &d, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->backoff_s = d;
        return 1;
    case LLM_OPT_SECONDS:
        if (cli_parse_double("--seconds", v, 0.1, 600, &d, why, sizeof why)) cli_usage_fail(verb, "%s", why);
        c->seconds = d;
        return 1;
    default: return 0;
    }
}

static void common_client(const llm_common *c, const char *verb, const char *out, char *cache_buf, size_t cache_cap,
                          llm_client_opts *o) {
    if (!c->endpoint) cli_usage_fail(verb, "--endpoint is required");
    if (!c->model) cli_usage_fail(verb, "--llm-model is required");
    memset(o, 0, sizeof *o);
    llm_client_url(c->endpoint, o->url, sizeof o->url);
    if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))
        cli_usage_fail(verb, "--endpoint: expected an http:// or https:// URL, got '%s'", c->endpoint);
    if (c->key_env) {
        const char *k = getenv(c->key_env);
        if (!k || !k[0]) musae_fail("--api-key-env: environment variable %s is not set or empty", c->key_env);
        o->api_key = k;
    }
    o->parallel = c->parallel;
    o->timeout_s = c->timeout_s;
    o->retries = c->retries;
    o->backoff_s = c->backoff_s;
    if (!c->no_cache) {
        if (c->cache) snprintf(cache_buf, cache_cap, "%s", c->cache);
        else snprintf(cache_buf, cache_cap, "%s.llmcache", out);
        o->cache_dir = cache_buf;
    }
}

static void label_usage(FILE *f) {
    fprintf(f, "usage: musae label --labeler llm --endpoint URL --llm-model NAME --features FEATURES.h5 -o LABELS.jsonl "
               "[options]\n\n"
               "Labels every kept feature by asking an audio LLM about its top clips (docs/LLM_LABEL.md). The lines\n"
               "of labeler \"llm\" in LABELS.jsonl are replaced, the others kept (docs/LABELS.md).\n\n"
               "  --features F         FEATURES.h5 from musae analyze (required)\n"
               "  -o, --out L          LABELS.jsonl to write (required)\n"
               "  --exemplars N        top clips per feature, 80 %% shown, 20 %% held out for scoring (default 10)\n"
               "  --one-audio          send the shown excerpts as one recording (0.5 s of silence between them)\n"
               "  --prompt-file P      the instructions, instead of the built-in ones ({n}: the number of excerpts,\n"
               "                       {how}: how they are given)\n"
               "  --no-schema          do not send response_format (for servers that refuse JSON schemas)\n"
               "  --only I,J,..        only these features\n"
               "  --max-features N     only the first N kept features\n" LLM_COMMON_USAGE);
}

int llm_label_main(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        label_usage(stdout);
        return 0;
    }
    static llm_label_opts o; /* --only's list makes it large */
    llm_common_defaults(&o.c);
    o.exemplars = 10;
    enum { OPT_FEATURES = LLM_OPT_LAST, OPT_EXEMPLARS, OPT_ONE_AUDIO, OPT_PROMPT, OPT_NO_SCHEMA, OPT_ONLY, OPT_MAX,
           OPT_LABELER };
    static const struct option opts[] = {LLM_COMMON_OPTIONS,
                                         {"features", required_argument, NULL, OPT_FEATURES},
                                         {"out", required_argument, NULL, 'o'},
                                         {"exemplars", required_argument, NULL, OPT_EXEMPLARS},
                                         {"one-audio", no_argument, NULL, OPT_ONE_AUDIO},
                                         {"prompt-file", required_argument, NULL, OPT_PROMPT},
                                         {"no-schema", no_argument, NULL, OPT_NO_SCHEMA},
                                         {"only", required_argument, NULL, OPT_ONLY},
                                         {"max-features", required_argument, NULL, OPT_MAX},
                                         {"labeler", required_argument, NULL, OPT_LABELER},
                                         {0}};
    char why[256];
    int64_t v;
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        if (common_opt(&o.c, argv[0], c, optarg)) continue;
        switch (c) {
        case 'o': o.out = optarg; break;
        case OPT_FEATURES: o.features = optarg; break;
        case OPT_EXEMPLARS:
            if (cli_parse_int("--exemplars", optarg, 2, LLM_LABEL_MAX_EXEMPLARS, &v, why, sizeof why)) cli_usage_fail(argv[0], "%s", why);
            o.exemplars = (int)v;
            break;
        case OPT_ONE_AUDIO: o.one_audio = 1; break;
        case OPT_PROMPT: o.prompt_file = optarg; break;
        case OPT_NO_SCHEMA: o.no_schema = 1; break;
        case OPT_ONLY: o.n_only = cli_int_list("--only", optarg, o.only, LLM_LABEL_MAX_ONLY, 0, INT32_MAX); break;
        case OPT_MAX:
            if (cli_parse_int("--max-features", optarg, 1, INT32_MAX, &v, why, sizeof why)) cli_usage_fail(argv[0], "%s", why);
            o.max_features = (int)v;
            break;
        case OPT_LABELER:
            if (strcmp(optarg, "llm")) cli_usage_fail(argv[0], "--labeler: this parser takes only llm, got '%s'", optarg);
            break;
        default: cli_usage_fail(argv[0], "unexpected option");
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!o.features) cli_usage_fail(argv[0], "--features is required");
    if (!o.out) cli_usage_fail(argv[0], "-o is required");
    common_client(&o.c, argv[0], o.out, o.cache, sizeof o.cache, &o.client);
    return llm_label_run(&o);
}

static void score_usage(FILE *f) {
    fprintf(f, "usage: musae score --labels L.jsonl --features FEATURES.h5 --endpoint URL --llm-model NAME [options]\n\n"
               "Detection scoring of labels by an audio LLM, delphi's protocol (docs/LLM_LABEL.md): per labelled feature,\n"
               "its decile clips (50, less the exemplars its labeler was shown) and clips where it never fires (50),\n"
               "shuffled, 5 per request with the label; the model answers a list of 0/1. Balanced accuracy, precision,\n"
               "recall, F1 and, from the log-probs when the server returns them, AUROC go into each line's\n"
               "scores.detection (docs/LABELS.md).\n\n"
               "  --labels L           LABELS.jsonl (required); rewritten atomically unless -o is given\n"
               "  --features F         FEATURES.h5 the labels were made from (required)\n"
               "  -o, --out O          write the scored lines here instead\n"
               "  --labeler NAME       score only this labeler's lines (default: every line with status ok)\n"
               "  --batch B            excerpts per request (default 5)\n"
               "  --positives N        decile samples at most (default 50)\n"
               "  --negatives N        non-firing clips at most (default 50)\n"
               "  --no-logprobs        do not ask for log-probs (AUROC is then null)\n"
               "  --clap DIR           CLAP scores instead (its options: musae score --clap DIR --help; docs/CLAP.md)\n" LLM_COMMON_USAGE);
}

int llm_score_main(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        score_usage(stdout);
        return 0;
    }
    llm_score_opts s = {0};
    llm_common_defaults(&s.c);
    s.batch = 5, s.n_pos = 50, s.n_neg = 50;
    enum { OPT_LABELS = LLM_OPT_LAST, OPT_FEATURES, OPT_LABELER, OPT_BATCH, OPT_POS, OPT_NEG, OPT_NO_LP };
    static const struct option opts[] = {LLM_COMMON_OPTIONS,
                                         {"labels", required_argument, NULL, OPT_LABELS},
                                         {"features", required_argument, NULL, OPT_FEATURES},
                                         {"out", required_argument, NULL, 'o'},
                                         {"labeler", required_argument, NULL, OPT_LABELER},
                                         {"batch", required_argument, NULL, OPT_BATCH},
                                         {"positives", required_argument, NULL, OPT_POS},
                                         {"negatives", required_argument, NULL, OPT_NEG},
                                         {"no-logprobs", no_argument, NULL, OPT_NO_LP},
                                         {0}};
    char why[256];
    int64_t v;
    for (int o; (o = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        if (common_opt(&s.c, argv[0], o, optarg)) continue;
        switch (o) {
        case 'o': s.out = optarg; break;
        case OPT_LABELS: s.labels = optarg; break;
        case OPT_FEATURES: s.features = optarg; break;
        case OPT_LABELER: s.labeler = optarg; break;
        case OPT_NO_LP: s.no_logprobs = 1; break;
        case OPT_BATCH:
        case OPT_POS:
        case OPT_NEG: {
            const char *flag = o == OPT_BATCH ? "--batch" : o == OPT_POS ? "--positives" : "--negatives";
            if (cli_parse_int(flag, optarg, o == OPT_BATCH ? 1 : 0, o == OPT_BATCH ? 64 : 50, &v, why, sizeof why))
                cli_usage_fail(argv[0], "%s", why);
            *(o == OPT_BATCH ? &s.batch : o == OPT_POS ? &s.n_pos : &s.n_neg) = (int)v;
            break;
        }
        default: cli_usage_fail(argv[0], "unexpected option");
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!s.labels) cli_usage_fail(argv[0], "--labels is required");
    if (!s.features) cli_usage_fail(argv[0], "--features is required");
    common_client(&s.c, argv[0], s.out ? s.out : s.labels, s.cache, sizeof s.cache, &s.client);
    return llm_score_run(&s);
}
