/* musae evaluate — FVU, L0, cosine and dead fraction of an SAE checkpoint on a store's held-out split (and,
 * for planted-concept stores, the fraction of true directions recovered). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/cli/evaluate_model.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/json.h"
#include "sae/train.h"

const char verb_evaluate_summary[] = "evaluate an SAE on a store (FVU, L0) or spliced into the model (--model: CE, loss recovered)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae evaluate --sae DIR --acts FILE --layer L [options]\n\n"
            "Reads a checkpoint folder (musae's or sparsify's sae.safetensors + cfg.json) and reports the\n"
            "held-out FVU, MSE, L0, mean cosine and the fraction of latents that never fired, one JSON line on\n"
            "stdout. Stores with /truth/directions (musae synth_acts) also get `recovered`: the fraction of\n"
            "true directions whose best decoder row has cosine > 0.9.\n\n"
            "  --split val|train|all   which clips (default val, with the checkpoint's split settings)\n"
            "  --val-fraction F        override the held-out fraction (default: from musae.json, else 0.05)\n"
            "  --tokens N              at most N rows (default 0 = the whole split)\n"
            "  --batch B               rows per batch (default 4096; batch-top-k SAEs select per batch)\n"
            "  --skip-nonfinite        skip rows with NaN/Inf instead of failing\n"
            "  --force                 evaluate even if the checkpoint names another layer or model\n");
}

int verb_evaluate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        printf("\nor, spliced into the model:\n");
        evaluate_model_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) /* --model: the SAE judged inside the model (host/cli/evaluate_model.c) */
        if (!strcmp(argv[i], "--model") || !strncmp(argv[i], "--model=", 8)) return evaluate_model_main(argc, argv);
    const char *sae_dir = NULL, *acts = NULL;
    int layer = -1, force = 0, skip = 0, have_vf = 0;
    musae_split split = MUSAE_SPLIT_VAL;
    double vf = 0.05;
    int64_t tokens = 0, batch = 4096;
    enum { OPT_SAE = CLI_OPT_FIRST, OPT_ACTS, OPT_LAYER, OPT_TOKENS, OPT_BATCH, OPT_VF, OPT_SPLIT, OPT_FORCE, OPT_SKIP };
    static const struct option opts[] = {
        {"sae", required_argument, NULL, OPT_SAE},         {"acts", required_argument, NULL, OPT_ACTS},
        {"layer", required_argument, NULL, OPT_LAYER},     {"tokens", required_argument, NULL, OPT_TOKENS},
        {"batch", required_argument, NULL, OPT_BATCH},     {"val-fraction", required_argument, NULL, OPT_VF},
        {"split", required_argument, NULL, OPT_SPLIT},     {"force", no_argument, NULL, OPT_FORCE},
        {"skip-nonfinite", no_argument, NULL, OPT_SKIP},   {0}};
    for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
        switch (c) {
        case OPT_SAE: sae_dir = optarg; break;
        case OPT_ACTS: acts = optarg; break;
        case OPT_LAYER: layer = (int)cli_int("--layer", optarg, 0, 1000); break;
        case OPT_TOKENS: tokens = cli_int("--tokens", optarg, 0, INT64_MAX / 2); break;
        case OPT_BATCH: batch = cli_int("--batch", optarg, 1, 1 << 20); break;
        case OPT_VF: vf = cli_double("--val-fraction", optarg, 0, 0.9); have_vf = 1; break;
        case OPT_SPLIT:
            if (!strcmp(optarg, "val")) split = MUSAE_SPLIT_VAL;
            else if (!strcmp(optarg, "train")) split = MUSAE_SPLIT_TRAIN;
            else if (!strcmp(optarg, "all")) split = MUSAE_SPLIT_ALL;
            else musae_fail("--split: expected val, train or all, got '%s'", optarg);
            break;
        case OPT_FORCE: force = 1; break;
        case OPT_SKIP: skip = 1; break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!sae_dir || !acts || layer < 0) cli_usage_fail(argv[0], "--sae, --acts and --layer are required");
    char err[600];
    sae_model m;
    if (sae_load(sae_dir, &m, err, sizeof err)) musae_fail("%s", err);
    musae_store *s = musae_store_open(acts, err, sizeof err);
    if (!s) musae_fail("%s", err);
    const musae_store_info *in = musae_store_get_info(s);
    if (in->d_model != m.d)
        musae_fail("%s has d_in %d but %s holds %d-dimensional activations", sae_dir, m.d, acts, in->d_model);
    if (musae_store_layer_index(s, layer) < 0) musae_fail("%s: no layer %d in the store", acts, layer);
    if (m.layer >= 0 && m.layer != layer && !force)
        musae_fail("%s was trained on layer %d, not %d (--force to evaluate anyway)", sae_dir, m.layer, layer);
    if (m.model[0] && in->model[0] && !musae_store_same_model(m.model, in->model) && !force)
        musae_fail("%s was trained on activations of '%s', the store holds '%s' (--force to evaluate anyway)", sae_dir,
                   m.model, in->model);
    uint64_t split_seed = 0;
    if (!have_vf && m.has_split) { /* the split the SAE was trained with, so val really is held out */
        vf = m.val_fraction;
        split_seed = m.split_seed;
    }
    sae_eval_result r = sae_evaluate_store(&m, s, layer, split, vf, split_seed, tokens, batch, skip);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "sae", sae_dir);
    cJSON_AddStringToObject(j, "acts", acts);
    cJSON_AddNumberToObject(j, "layer", layer);
    cJSON_AddStringToObject(j, "split", split == MUSAE_SPLIT_VAL ? "val" : split == MUSAE_SPLIT_TRAIN ? "train" : "all");
    sae_eval_to_json(j, &r);
    musae_json_print_line(stdout, j);
    musae_store_close(s);
    sae_model_free(&m);
    return 0;
}
