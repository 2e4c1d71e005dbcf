/* musae train — top-k SAE training on an activation store (a grid of layers × expansions × k in one pass). */
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "kernels/cuda/cuda_device.h"
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
            "  --tokens N          training tokens (default: --epochs passes over the training split)\n"
            "  --epochs F          passes over the training split when --tokens is not given (default 10;\n"
            "                      more than 10 is warned about: repeated data generalizes worse)\n"
            "  --batch B           tokens per step (default 4096)\n"
            "  --val-fraction F    clips held out for evaluation (default 0.05)\n"
            "  --split-seed S      which clips are held out (default 0)\n"
            "  --shuffle-rows R    shuffle buffer in rows (default 131072; memory is 2·R·d·dtype per layer)\n"
            "  --skip-nonfinite    skip rows with NaN/Inf (counted) instead of failing\n"
            "  --eval-tokens N     held-out tokens to evaluate at the end (default 1048576; 0 = none)\n"
            "recipe:\n"
            "  --batch-topk        select the top B·k of each batch instead of k per row\n"
            "  --lr X              Adam lr (default 4e-4/sqrt(M/16384))\n"
            "  --benc-lr-mult X    the encoder bias's lr is X times --lr (default 2)\n"
            "  --warmup N          linear warmup steps (default min(1000, 5%% of the steps))\n"
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
            "  --resume            continue the unfinished run in DIR (bit-identical to an uninterrupted run on the\n"
            "                      same device)\n"
            "  --keep-state        keep DIR/state (the exact training state) after finishing\n"
            "distributed (launched by mpirun -np P or srun; every rank reads the whole batch, rank 0 writes):\n"
            "  --dist data|latent  data: each rank takes B/P rows of the batch, gradients all-reduced (default);\n"
            "                      latent: each rank holds M/P latents, top-k candidates exchanged\n"
            "device:\n"
            "  --device D          cuda, cpu or auto (default: the GPU when one is usable, else the CPU, saying why).\n"
            "                      On the GPU: one GPU, or --dist data over NCCL (per-row top-k); --dist latent\n"
            "                      and batch-top-k data-parallel runs are CPU only (auto picks the CPU for them)\n"
            "  --precision P       the GPU trainer's arithmetic: bf16 (default; bf16 GEMM operands and gathers,\n"
            "                      fp32 accumulation, masters and Adam) or f32 (matches the CPU); the CPU trainer\n"
            "                      is f32 only: --device cpu --precision bf16 is refused, auto on a CPU logs f32\n"
            "A state saved on one device resumes on the other (--resume).\n");
}

/* "f32" (or "fp32", the other verbs' spelling) or "bf16"; NULL: not given. */
static musae_dtype parse_precision(const char *v) {
    if (!strcmp(v, "f32") || !strcmp(v, "fp32")) return MUSAE_F32;
    if (!strcmp(v, "bf16")) return MUSAE_BF16;
    musae_fail("--precision: expected f32 or bf16, got '%s'", v);
}

/* --device and --precision for the SAE trainer: cli_device_resolve's rule (auto = the GPU when one is usable,
 * else the CPU, with a line saying which and why; cuda without a usable GPU fails with the reason), plus the
 * runs the GPU trainer does not take (sae_train_gpu_unsupported), which auto leaves to the CPU. Under mpirun
 * every rank needs a GPU (all-reduced), and the count is asked without cli_device_resolve's CUDA table, which
 * would open a context on device 0 in every rank before NCCL picks each rank's device. */
static void resolve_device(const cli_device_flags *f, sae_train_opts *o, const musae_dist *dist) {
    const char *dev = f->device ? f->device : "auto";
    if (strcmp(dev, "auto") && strcmp(dev, "cuda") && strcmp(dev, "cpu"))
        musae_fail("--device: expected cuda, cpu or auto, got '%s'", dev);
    const int asked_bf16 = f->precision && parse_precision(f->precision) == MUSAE_BF16;
    const int cuda = !strcmp(dev, "cuda");
    o->device = MUSAE_DEVICE_CPU;
    if (!strcmp(dev, "cpu")) {
        if (asked_bf16) musae_fail("--precision bf16: the CPU trainer is f32 only (bf16 is the GPU trainer's mode)");
        LOG_INFO("device: cpu (--device cpu)");
    } else if (dist->world == 1) {
        const cli_device_flags df = {f->device, NULL, NULL};
        o->device = cli_device_resolve(&df, 0).ops->device;
    } else {
        char why[512] = "";
        int64_t usable = musae_cuda_device_count(why, sizeof why) > 0;
        musae_dist_allreduce_i64(dist, &usable, 1, MUSAE_DIST_MIN);
        const char *cannot = sae_train_gpu_unsupported(o);
        if (!usable && !why[0]) snprintf(why, sizeof why, "another rank has no usable CUDA device");
        if (cannot && cuda) musae_fail("--device cuda: %s", cannot);
        if (!usable && cuda) musae_fail("--device cuda: no usable CUDA device (%s)", why);
        if (!usable || cannot) {
            LOG_INFO("device: cpu (auto: %s)", cannot ? cannot : why);
        } else {
            o->device = MUSAE_DEVICE_CUDA;
            LOG_INFO("device: cuda (%s; %d ranks, one GPU each)", cuda ? "--device cuda" : "auto: GPUs are usable",
                     dist->world);
        }
    }
    if (o->device == MUSAE_DEVICE_CUDA) {
        o->precision = f->precision ? parse_precision(f->precision) : MUSAE_BF16;
        LOG_INFO("precision: %s (%s)", musae_dtype_name(o->precision), f->precision ? "--precision" : "default on the GPU");
    } else {
        o->precision = MUSAE_F32;
        if (asked_bf16) LOG_WARN("precision: f32, not the bf16 asked for: the CPU trainer is f32 only");
    }
}

int verb_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    sae_train_opts o;
    sae_train_opts_defaults(&o);
    int have_data_seed = 0;
    cli_device_flags dflags = {NULL, NULL, NULL};
    enum { OPT_ACTS = CLI_OPT_FIRST, OPT_LAYER, OPT_K, OPT_EXPANSION, OPT_TOKENS, OPT_BATCH, OPT_VF, OPT_SPLIT_SEED,
           OPT_SHUFFLE, OPT_SKIP, OPT_EVAL_TOKENS, OPT_BATCH_TOPK, OPT_LR, OPT_WARMUP, OPT_DECAY, OPT_K_AUX,
           OPT_AUXK_ALPHA, OPT_DEAD, OPT_B_DEC, OPT_INIT_ROWS, OPT_SEED, OPT_DATA_SEED, OPT_SAVE_EVERY, OPT_LOG_EVERY,
           OPT_RESUME, OPT_KEEP_STATE, OPT_DIST, OPT_EPOCHS, OPT_BENC_LR_MULT };
    static const struct option opts[] = {
        {"acts", required_argument, NULL, OPT_ACTS},             {"out", required_argument, NULL, 'o'},
        {"layer", required_argument, NULL, OPT_LAYER},           {"layers", required_argument, NULL, OPT_LAYER},
        {"k", required_argument, NULL, OPT_K},                   {"expansion", required_argument, NULL, OPT_EXPANSION},
        {"tokens", required_argument, NULL, OPT_TOKENS},         {"batch", required_argument, NULL, OPT_BATCH},
        {"val-fraction", required_argument, NULL, OPT_VF},       {"split-seed", required_argument, NULL, OPT_SPLIT_SEED},
        {"shuffle-rows", required_argument, NULL, OPT_SHUFFLE},  {"skip-nonfinite", no_argument, NULL, OPT_SKIP},
        {"eval-tokens", required_argument, NULL, OPT_EVAL_TOKENS}, {"batch-topk", no_argument, NULL, OPT_BATCH_TOPK},
        {"lr", required_argument, NULL, OPT_LR},                 {"warmup", required_argument, NULL, OPT_WARMUP},
        {"decay", required_argument, NULL, OPT_DECAY},           {"k-aux", required_argument, NULL, OPT_K_AUX},
        {"auxk-alpha", required_argument, NULL, OPT_AUXK_ALPHA}, {"dead-tokens", required_argument, NULL, OPT_DEAD},
        {"b-dec", required_argument, NULL, OPT_B_DEC},           {"init-rows", required_argument, NULL, OPT_INIT_ROWS},
        {"seed", required_argument, NULL, OPT_SEED},             {"data-seed", required_argument, NULL, OPT_DATA_SEED},
        {"save-every", required_argument, NULL, OPT_SAVE_EVERY}, {"log-every", required_argument, NULL, OPT_LOG_EVERY},
        {"resume", no_argument, NULL, OPT_RESUME},               {"keep-state", no_argument, NULL, OPT_KEEP_STATE},
        {"dist", required_argument, NULL, OPT_DIST},             {"epochs", required_argument, NULL, OPT_EPOCHS},
        {"benc-lr-mult", required_argument, NULL, OPT_BENC_LR_MULT}, CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        const char *v = optarg;
        switch (c) {
        case OPT_ACTS: o.acts = v; break;
        case 'o': o.out = v; break;
        case OPT_LAYER: o.n_layers = cli_int_list("--layer", v, o.layers, SAE_GRID_MAX, 0, 1000); break;
        case OPT_K: o.n_k = cli_int_list("--k", v, o.ks, SAE_GRID_MAX, 1, 1 << 20); break;
        case OPT_EXPANSION: o.n_exp = cli_int_list("--expansion", v, o.exps, SAE_GRID_MAX, 1, 1024); break;
        case OPT_TOKENS: o.tokens = cli_int("--tokens", v, 1, INT64_MAX / 2); break;
        case OPT_EPOCHS: o.epochs = cli_double("--epochs", v, 1e-6, 1e9); break;
        case OPT_BATCH: o.batch = cli_int("--batch", v, 1, 1 << 20); break;
        case OPT_VF: o.val_fraction = cli_double("--val-fraction", v, 0, 0.9); break;
        case OPT_SPLIT_SEED: o.split_seed = (uint64_t)cli_int("--split-seed", v, 0, INT64_MAX); break;
        case OPT_SHUFFLE: o.shuffle_rows = cli_int("--shuffle-rows", v, 1, INT64_MAX / 2); break;
        case OPT_SKIP: o.skip_nonfinite = 1; break;
        case OPT_EVAL_TOKENS: o.eval_tokens = cli_int("--eval-tokens", v, 0, INT64_MAX / 2); break;
        case OPT_BATCH_TOPK: o.recipe.batch_topk = 1; break;
        case OPT_LR: o.recipe.lr = (float)cli_double("--lr", v, 1e-12, 10); break;
        case OPT_BENC_LR_MULT: o.recipe.benc_lr_mult = (float)cli_double("--benc-lr-mult", v, 0, 1000); break;
        case OPT_WARMUP: o.recipe.warmup_steps = cli_int("--warmup", v, 0, INT64_MAX / 2); break;
        case OPT_DECAY: o.recipe.decay_frac = cli_double("--decay", v, 0, 1); break;
        case OPT_K_AUX: o.recipe.k_aux = (int)cli_int("--k-aux", v, 0, 1 << 20); break;
        case OPT_AUXK_ALPHA: o.recipe.auxk_alpha = (float)cli_double("--auxk-alpha", v, 0, 100); break;
        case OPT_DEAD: o.recipe.dead_tokens = cli_int("--dead-tokens", v, 0, INT64_MAX / 2); break;
        case OPT_B_DEC:
            if (!strcmp(v, "median")) o.recipe.bdec_init = SAE_BDEC_MEDIAN;
            else if (!strcmp(v, "mean")) o.recipe.bdec_init = SAE_BDEC_MEAN;
            else if (!strcmp(v, "zero")) o.recipe.bdec_init = SAE_BDEC_ZERO;
            else musae_fail("--b-dec: expected median, mean or zero, got '%s'", v);
            break;
        case OPT_INIT_ROWS: o.init_rows = cli_int("--init-rows", v, 1, 1 << 24); break;
        case OPT_SEED: o.recipe.seed = (uint64_t)cli_int("--seed", v, 0, INT64_MAX); break;
        case OPT_DATA_SEED: o.data_seed = (uint64_t)cli_int("--data-seed", v, 0, INT64_MAX), have_data_seed = 1; break;
        case OPT_SAVE_EVERY: o.save_every = cli_int("--save-every", v, 0, INT64_MAX / 2); break;
        case OPT_LOG_EVERY: o.log_every = cli_int("--log-every", v, 1, INT64_MAX / 2); break;
        case OPT_RESUME: o.resume = 1; break;
        case OPT_KEEP_STATE: o.keep_state = 1; break;
        case OPT_DIST:
            if (!strcmp(v, "data")) o.dist_mode = SAE_DIST_DATA;
            else if (!strcmp(v, "latent")) o.dist_mode = SAE_DIST_LATENT;
            else musae_fail("--dist: expected data or latent, got '%s'", v);
            break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, v); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!o.acts || !o.out || !o.n_layers || !o.n_k || !o.n_exp)
        cli_usage_fail(argv[0], "--acts, --layer, --k, --expansion and -o are required");
    if (!have_data_seed) o.data_seed = o.recipe.seed;
    musae_dist dist;
    musae_dist_init(&dist, &argc, &argv);
    o.dist = &dist;
    resolve_device(&dflags, &o, &dist);
    int rc = sae_train_run(&o);
    musae_dist_finalize(&dist);
    return rc;
}
