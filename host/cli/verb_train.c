/* musae train — top-k SAE training on an activation store (a grid of layers × expansions × k in one pass). */
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/dist/dist.h"
#include "sae/sae_dist.h"
#include "sae/train.h"

const char verb_train_summary[] = "train top-k sparse autoencoders on an activation store (grids in one pass)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae train --acts FILE --layer L[,L..] --k K[,K..] --expansion E[,E..] -o DIR [options]\n\n"
            "Trains every combination of layer, k and expansion (M = E·d latents) from the same shuffled stream.\n"
            "One SAE is written to DIR; a grid to DIR/layer<L>_k<K>_x<E>/ (sparsify layout: sae.safetensors,\n"
            "cfg.json, plus musae.json). Metrics go to DIR/metrics.jsonl.\n\n"
            "data:\n"
            "  --tokens N          training tokens (default 100000000)\n"
            "  --batch B           tokens per step (default 4096)\n"
            "  --val-fraction F    clips held out for evaluation (default 0.05)\n"
            "  --split-seed S      which clips are held out (default 0)\n"
            "  --shuffle-rows R    shuffle buffer in rows (default 131072; memory is 2·R·d·dtype per layer)\n"
            "  --skip-nonfinite    skip rows with NaN/Inf (counted) instead of failing\n"
            "  --eval-tokens N     held-out tokens to evaluate at the end (default 1048576; 0 = none)\n"
            "recipe:\n"
            "  --batch-topk        select the top B·k of each batch instead of k per row\n"
            "  --lr X              Adam lr (default 2e-4/sqrt(M/16384))\n"
            "  --warmup N          linear warmup steps (default 1000)\n"
            "  --decay F           linear decay to 0 over the last fraction F of the steps (default 0)\n"
            "  --k-aux N           AuxK latents per row (default d/2)\n"
            "  --auxk-alpha X      AuxK weight (default 1/32; 0 disables)\n"
            "  --dead-tokens N     tokens without firing before a latent is dead (default 10000000)\n"
            "  --b-dec median|mean|zero   b_dec init from the first --init-rows rows (default median)\n"
            "  --init-rows N       rows for the input scale and b_dec (default 32768)\n"
            "  --seed S            init and data order (default 0); --data-seed S overrides the data order\n"
            "run:\n"
            "  --save-every N      steps between resume states (default 1000)\n"
            "  --log-every N       steps between metric lines (default 50)\n"
            "  --resume            continue the unfinished run in DIR (bit-identical to an uninterrupted run)\n"
            "  --keep-state        keep DIR/state (the exact training state) after finishing\n"
            "distributed (launched by mpirun -np P or srun; every rank reads the whole batch, rank 0 writes):\n"
            "  --dist data|latent  data: each rank takes B/P rows of the batch, gradients all-reduced (default);\n"
            "                      latent: each rank holds M/P latents, top-k candidates exchanged\n");
}

int verb_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    sae_train_opts o;
    sae_train_opts_defaults(&o);
    int have_data_seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                                             \
    do {                                                                                                   \
        if (!v) musae_fail("%s needs a value", a);                                                         \
        i++;                                                                                               \
    } while (0)
        if (!strcmp(a, "--acts")) { NEED(); o.acts = v; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) { NEED(); o.out = v; }
        else if (!strcmp(a, "--layer") || !strcmp(a, "--layers")) { NEED(); o.n_layers = cli_int_list(a, v, o.layers, SAE_GRID_MAX, 0, 1000); }
        else if (!strcmp(a, "--k")) { NEED(); o.n_k = cli_int_list(a, v, o.ks, SAE_GRID_MAX, 1, 1 << 20); }
        else if (!strcmp(a, "--expansion")) { NEED(); o.n_exp = cli_int_list(a, v, o.exps, SAE_GRID_MAX, 1, 1024); }
        else if (!strcmp(a, "--tokens")) { NEED(); o.tokens = cli_int(a, v, 1, INT64_MAX / 2); }
        else if (!strcmp(a, "--batch")) { NEED(); o.batch = cli_int(a, v, 1, 1 << 20); }
        else if (!strcmp(a, "--val-fraction")) { NEED(); o.val_fraction = cli_double(a, v, 0, 0.9); }
        else if (!strcmp(a, "--split-seed")) { NEED(); o.split_seed = (uint64_t)cli_int(a, v, 0, INT64_MAX); }
        else if (!strcmp(a, "--shuffle-rows")) { NEED(); o.shuffle_rows = cli_int(a, v, 1, INT64_MAX / 2); }
        else if (!strcmp(a, "--skip-nonfinite")) o.skip_nonfinite = 1;
        else if (!strcmp(a, "--eval-tokens")) { NEED(); o.eval_tokens = cli_int(a, v, 0, INT64_MAX / 2); }
        else if (!strcmp(a, "--batch-topk")) o.recipe.batch_topk = 1;
        else if (!strcmp(a, "--lr")) { NEED(); o.recipe.lr = (float)cli_double(a, v, 1e-12, 10); }
        else if (!strcmp(a, "--warmup")) { NEED(); o.recipe.warmup_steps = cli_int(a, v, 0, INT64_MAX / 2); }
        else if (!strcmp(a, "--decay")) { NEED(); o.recipe.decay_frac = cli_double(a, v, 0, 1); }
        else if (!strcmp(a, "--k-aux")) { NEED(); o.recipe.k_aux = (int)cli_int(a, v, 0, 1 << 20); }
        else if (!strcmp(a, "--auxk-alpha")) { NEED(); o.recipe.auxk_alpha = (float)cli_double(a, v, 0, 100); }
        else if (!strcmp(a, "--dead-tokens")) { NEED(); o.recipe.dead_tokens = cli_int(a, v, 0, INT64_MAX / 2); }
        else if (!strcmp(a, "--b-dec")) {
            NEED();
            if (!strcmp(v, "median")) o.recipe.bdec_init = SAE_BDEC_MEDIAN;
            else if (!strcmp(v, "mean")) o.recipe.bdec_init = SAE_BDEC_MEAN;
            else if (!strcmp(v, "zero")) o.recipe.bdec_init = SAE_BDEC_ZERO;
            else musae_fail("--b-dec: expected median, mean or zero, got '%s'", v);
        }
        else if (!strcmp(a, "--init-rows")) { NEED(); o.init_rows = cli_int(a, v, 1, 1 << 24); }
        else if (!strcmp(a, "--seed")) { NEED(); o.recipe.seed = (uint64_t)cli_int(a, v, 0, INT64_MAX); }
        else if (!strcmp(a, "--data-seed")) { NEED(); o.data_seed = (uint64_t)cli_int(a, v, 0, INT64_MAX); have_data_seed = 1; }
        else if (!strcmp(a, "--save-every")) { NEED(); o.save_every = cli_int(a, v, 0, INT64_MAX / 2); }
        else if (!strcmp(a, "--log-every")) { NEED(); o.log_every = cli_int(a, v, 1, INT64_MAX / 2); }
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--keep-state")) o.keep_state = 1;
        else if (!strcmp(a, "--dist")) {
            NEED();
            if (!strcmp(v, "data")) o.dist_mode = SAE_DIST_DATA;
            else if (!strcmp(v, "latent")) o.dist_mode = SAE_DIST_LATENT;
            else musae_fail("--dist: expected data or latent, got '%s'", v);
        }
        else musae_fail("train: unknown option '%s' (musae train --help)", a);
#undef NEED
    }
    if (!o.acts || !o.out || !o.n_layers || !o.n_k || !o.n_exp) {
        usage(stderr);
        musae_fail("train: --acts, --layer, --k, --expansion and -o are required");
    }
    if (!have_data_seed) o.data_seed = o.recipe.seed;
    musae_dist dist;
    musae_dist_init(&dist, &argc, &argv);
    o.dist = &dist;
    int rc = sae_train_run(&o);
    musae_dist_finalize(&dist);
    return rc;
}
