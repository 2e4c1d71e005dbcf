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
        const cli_device_flags df = {f->device, NULL};
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
    cli_device_flags dflags = {NULL, NULL};
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
        else if (!strcmp(a, "--epochs")) { NEED(); o.epochs = cli_double(a, v, 1e-6, 1e9); }
        else if (!strcmp(a, "--batch")) { NEED(); o.batch = cli_int(a, v, 1, 1 << 20); }
        else if (!strcmp(a, "--val-fraction")) { NEED(); o.val_fraction = cli_double(a, v, 0, 0.9); }
        else if (!strcmp(a, "--split-seed")) { NEED(); o.split_seed = (uint64_t)cli_int(a, v, 0, INT64_MAX); }
        else if (!strcmp(a, "--shuffle-rows")) { NEED(); o.shuffle_rows = cli_int(a, v, 1, INT64_MAX / 2); }
        else if (!strcmp(a, "--skip-nonfinite")) o.skip_nonfinite = 1;
        else if (!strcmp(a, "--eval-tokens")) { NEED(); o.eval_tokens = cli_int(a, v, 0, INT64_MAX / 2); }
        else if (!strcmp(a, "--batch-topk")) o.recipe.batch_topk = 1;
        else if (!strcmp(a, "--lr")) { NEED(); o.recipe.lr = (float)cli_double(a, v, 1e-12, 10); }
        else if (!strcmp(a, "--benc-lr-mult")) { NEED(); o.recipe.benc_lr_mult = (float)cli_double(a, v, 0, 1000); }
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
        else if (cli_device_flag(&dflags, a, v)) i++;
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
    resolve_device(&dflags, &o, &dist);
    int rc = sae_train_run(&o);
    musae_dist_finalize(&dist);
    return rc;
}
