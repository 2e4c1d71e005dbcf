/* musae info PATH — describe a model folder, a safetensors file (or sharded index), and, as their readers
 * land, activation stores and SAE checkpoints. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/features_io.h"
#include "host/cli/cli.h"
#include "host/core/log.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "sae/sae.h"

const char verb_info_summary[] = "describe a model folder, safetensors file, activation store or SAE checkpoint";

static void print_tensors(const musae_st *st) {
    int64_t total = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const musae_st_tensor *t = &st->tensors[i];
        char s[128];
        musae_shape_str(t->rank, t->shape, s, sizeof s);
        printf("  %-72s %-5s %s\n", t->name, t->dtype, s);
        total += musae_st_numel(t);
    }
    printf("%d tensors, %" PRId64 " parameters (%.2f M), %d file(s)\n", st->n_tensors, total, (double)total / 1e6,
           st->n_files);
    for (int i = 0; i < st->n_meta; i++) printf("metadata %s = %s\n", st->meta_keys[i], st->meta_values[i]);
}

int verb_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: musae info PATH\n\n"
               "PATH is a model folder (config.json + model.safetensors or a sharded index), a .safetensors\n"
               "file, or a model.safetensors.index.json. Prints the config summary and every tensor with its\n"
               "dtype and shape, and the parameter count. An HDF5 activation store (acts.h5) or an SAE\n"
               "checkpoint folder (cfg.json + sae.safetensors) gets its own summary.\n");
        return 0;
    }
    static const struct option opts[] = {{0}};
    while (cli_getopt(argc, argv, "", opts) != -1) continue; /* no options: any is refused */
    if (optind == argc) cli_usage_fail(argv[0], "a PATH is required");
    if (optind + 1 < argc) cli_usage_fail(argv[0], "one PATH, got '%s' and '%s'", argv[optind], argv[optind + 1]);
    const char *path = argv[optind];
    struct stat sb;
    if (stat(path, &sb) != 0) musae_fail("%s: cannot open: %s", path, strerror(errno));
    char err[512];
    if (S_ISREG(sb.st_mode) && features_is_file(path)) { /* musae analyze's output */
        musae_features f;
        if (features_read(path, &f, err, sizeof err)) musae_fail("%s", err);
        features_describe(&f, path, stdout);
        features_free(&f);
        return 0;
    }
    if (S_ISREG(sb.st_mode) && musae_store_is_hdf5(path)) { /* activation store */
        musae_store *s = musae_store_open(path, err, sizeof err);
        if (!s) musae_fail("%s", err);
        musae_store_describe(s, stdout);
        musae_store_close(s);
        return 0;
    }
    if (S_ISDIR(sb.st_mode)) { /* SAE checkpoint: sparsify's cfg.json + sae.safetensors */
        char p1[4096], p2[4096];
        snprintf(p1, sizeof p1, "%s/cfg.json", path);
        snprintf(p2, sizeof p2, "%s/sae.safetensors", path);
        if (access(p1, F_OK) == 0 || access(p2, F_OK) == 0) { /* either file: sae_load says which is missing */
            sae_describe(path, stdout);
            return 0;
        }
    }
    if (S_ISDIR(sb.st_mode)) {
        char cfgpath[4096];
        snprintf(cfgpath, sizeof cfgpath, "%s/config.json", path);
        if (access(cfgpath, R_OK) == 0) {
            musae_model_config cfg;
            if (musae_config_load(&cfg, path, err, sizeof err)) musae_fail("%s", err);
            musae_config_print(&cfg);
        }
    }
    musae_st st;
    if (musae_st_open(&st, path, err, sizeof err)) musae_fail("%s", err);
    print_tensors(&st);
    musae_st_close(&st);
    return 0;
}
