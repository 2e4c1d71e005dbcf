/* musae analyze — per-feature statistics of one or more SAEs over a store's clips (eval/analyze.h, FEATURES.h5:
 * docs/ANALYZE.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/analyze.h"
#include "eval/analyze_merge.h"
#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/dist/dist_gpu.h"
#include "kernels/cuda/cuda_device.h"

const char verb_analyze_summary[] = "per-feature statistics, top/quantile/random clips and the keep filter (FEATURES.h5)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae analyze --sae DIR[,DIR...] --acts ACTS.h5 -o FEATURES.h5 [options]\n\n"
            "Encodes every row of the store's clips at the SAE's layer with the SAE as trained (top-k, or a\n"
            "batch-top-k SAE's inference threshold) in one streaming pass, and writes per feature: active frames,\n"
            "frame density, clip rate (fraction of clips whose time-mean is > 0), max and mean activation, a\n"
            "histogram, the top clips with their peak frames, 5 clips per decile of clip max, 20 random clips\n"
            "where it never fires, the keep filter, dead latents, decoder neighbours; and per clip the features\n"
            "whose time-mean is > 0 (docs/ANALYZE.md). Several SAEs of one layer share the pass: -o is then a\n"
            "folder that receives <sae folder name>.h5 for each.\n\n"
            "  --split val|all    val (default): the clips the trainer held out (musae.json data); all: every clip\n"
            "  --top N            top clips kept per feature (default 20)\n"
            "  --min-rate R       keep: clip rate >= R (default 0.01)\n"
            "  --max-rate R       keep: clip rate <= R (default 0.25)\n"
            "  --seed S           Philox seed of the random clips (default 0)\n"
            "  --block-rows B     rows encoded at once (default 4096)\n"
            "  --regroup N        per-clip table entries regrouped by feature at once, 8 bytes each (default\n"
            "                     2097152 = 16 MiB; the table itself stays on disk)\n"
            "  --device D         cpu (default; also what auto picks), or cuda: the row blocks are encoded on the\n"
            "                     GPU (CUDA builds), the statistics stay on the CPU; the same output within\n"
            "                     docs/ANALYZE.md's rules\n\n"
            "Under mpirun -np P or srun the ranks take disjoint clips (balanced by frames) and rank 0 writes the\n"
            "merged statistics: the same file, bit for bit, as one process writes. Every rank must be given the\n"
            "same arguments and read the same store and SAEs.\n");
}

static int bad_option(const char *reason) {
    fprintf(stderr, "musae: error: analyze: %s (see musae analyze --help)\n", reason);
    return 1;
}

/* The folder's last component ("runs/sae_k32/" -> "sae_k32"). */
static void base_name(const char *dir, char *out, size_t n) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
    const char *b = strrchr(tmp, '/');
    snprintf(out, n, "%s", b ? b + 1 : tmp);
}

int verb_analyze(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    /* mpirun / srun: the ranks share the clips and rank 0 writes the merged statistics (docs/ANALYZE.md); every
     * rank must have been given the same arguments, compared before getopt_long reorders them */
    musae_dist dist;
    musae_dist_init(&dist, &argc, &argv);
    analyze_same_command(&dist, argc, argv);
    analyze_opts o;
    analyze_opts_defaults(&o);
    o.dist = &dist;
    const char *out = NULL, *device = NULL;
    char *sae_list = NULL;
    static const struct option longopts[] = {
        {"sae", required_argument, 0, 's'},      {"acts", required_argument, 0, 'a'},
        {"split", required_argument, 0, 'p'},    {"top", required_argument, 0, 'n'},
        {"min-rate", required_argument, 0, 'l'}, {"max-rate", required_argument, 0, 'u'},
        {"seed", required_argument, 0, 'e'},     {"block-rows", required_argument, 0, 'b'},
        {"device", required_argument, 0, 'd'},   {"regroup", required_argument, 0, 'g'},
        {0, 0, 0, 0}};
    char reason[600];
    int64_t v;
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': sae_list = optarg; break;
        case 'a': o.acts = optarg; break;
        case 'o': out = optarg; break;
        case 'p':
            if (!strcmp(optarg, "val")) o.split_all = 0;
            else if (!strcmp(optarg, "all")) o.split_all = 1;
            else {
                snprintf(reason, sizeof reason, "--split: expected val or all, got '%s'", optarg);
                return bad_option(reason);
            }
            break;
        case 'n':
            if (cli_parse_int("--top", optarg, 1, 10000, &v, reason, sizeof reason)) return bad_option(reason);
            o.top = (int)v;
            break;
        case 'l':
            if (cli_parse_double("--min-rate", optarg, 0, 1, &o.min_rate, reason, sizeof reason)) return bad_option(reason);
            break;
        case 'u':
            if (cli_parse_double("--max-rate", optarg, 0, 1, &o.max_rate, reason, sizeof reason)) return bad_option(reason);
            break;
        case 'e':
            if (cli_parse_int("--seed", optarg, 0, INT64_MAX, &v, reason, sizeof reason)) return bad_option(reason);
            o.seed = (uint64_t)v;
            break;
        case 'b':
            if (cli_parse_int("--block-rows", optarg, 1, 1 << 20, &o.block_rows, reason, sizeof reason))
                return bad_option(reason);
            break;
        case 'd': device = optarg; break;
        case 'g':
            if (cli_parse_int("--regroup", optarg, 1, INT64_MAX / 16, &o.regroup_entries, reason, sizeof reason))
                return bad_option(reason);
            break;
        default: cli_getopt_why(ch, argc, argv, reason, sizeof reason); return bad_option(reason);
        }
    }
    if (cli_getopt_why(-1, argc, argv, reason, sizeof reason)) return bad_option(reason);
    if (!sae_list || !o.acts || !out) return bad_option("--sae, --acts and -o are required");
    if (o.min_rate > o.max_rate) return bad_option("--min-rate is above --max-rate");
    if (device && strcmp(device, "cpu") && strcmp(device, "auto") && strcmp(device, "cuda")) {
        snprintf(reason, sizeof reason, "--device: expected cpu, cuda or auto, got '%s'", device);
        return bad_option(reason);
    }
    if (device && !strcmp(device, "cuda")) {
#ifdef MUSAE_CUDA
        char why[512] = "", how[128] = "";
        const int n = musae_cuda_device_count(why, sizeof why);
        if (n <= 0) musae_fail("analyze: --device cuda: no usable CUDA device (%s)", why);
        /* one GPU per local rank under mpirun/srun, chosen before the encoder creates anything on it */
        const int index = musae_dist_gpu(dist.world > 1 ? dist.local_rank : -1, n, how, sizeof how);
        if (musae_cuda_select(index, why, sizeof why))
            musae_fail("analyze: --device cuda: cannot use CUDA device %d (%s): %s", index, how, why);
        LOG_INFO("analyze: encoding on CUDA device %d of %d (%s)", index, n, how);
        o.device_cuda = 1;
#else
        musae_fail("analyze: --device cuda: musae was built without CUDA (configure with -DMUSAE_CUDA=ON)");
#endif
    }
    char *list = musae_xstrdup(sae_list), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o.n_sae == ANALYZE_MAX_SAE) {
            snprintf(reason, sizeof reason, "--sae: at most %d SAEs in one pass", ANALYZE_MAX_SAE);
            free(list);
            return bad_option(reason);
        }
        o.sae[o.n_sae++] = tok;
    }
    if (o.n_sae == 0) {
        free(list);
        return bad_option("--sae names no folder");
    }
    char outs[ANALYZE_MAX_SAE][4200];
    if (o.n_sae == 1) snprintf(outs[0], sizeof outs[0], "%s", out);
    else { /* a folder of <name>.h5 */
        if (mkdir(out, 0755) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", out, strerror(errno));
        for (int i = 0; i < o.n_sae; i++) {
            char b[4096];
            base_name(o.sae[i], b, sizeof b);
            snprintf(outs[i], sizeof outs[i], "%s/%s.h5", out, b);
            for (int j = 0; j < i; j++)
                if (!strcmp(outs[i], outs[j]))
                    musae_fail("%s and %s would both write %s (SAE folders need distinct names)", o.sae[j], o.sae[i],
                               outs[i]);
        }
    }
    for (int i = 0; i < o.n_sae; i++) o.out[i] = outs[i];
    int rc = analyze_run(&o);
    free(list);
    musae_dist_finalize(&dist);
    return rc;
}
