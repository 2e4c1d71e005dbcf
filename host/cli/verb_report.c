/* musae report — the first pipeline a new user runs: capture -> train -> analyze -> describe -> label (dsp) ->
 * dashboard into one
 * folder, each step a run of this same binary, each skipped when its output is already complete, so an
 * interrupted report resumes where it stopped (docs/DASHBOARD.md). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/features_io.h"
#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"

const char verb_report_summary[] = "capture, train, analyze, describe, dsp labels and the dashboard in one resumable command";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae report --model DIR --audio SRC --layer L -o OUT [options]\n\n"
            "Runs, into OUT/: musae capture (OUT/acts.h5), musae train (OUT/sae), musae analyze\n"
            "(OUT/features.h5), musae describe (OUT/descriptors.h5), musae label --labeler dsp (OUT/labels.jsonl)\n"
            "and musae dashboard (OUT/site), with the\n"
            "defaults below. A step whose output is complete is skipped (capture continues its store; train\n"
            "resumes its saved state), so the same command after an interruption carries on.\n"
            "The llm and clap labelers need an endpoint or a CLAP folder: run them with musae label and give their\n"
            "LABELS.jsonl files with --labels.\n\n"
            "  --clip-seconds S  clip length for capture (default 10)\n"
            "  --k K             SAE top-k (default 32)\n"
            "  --expansion E     latents = E x d_model (default 8)\n"
            "  --tokens N        training tokens (default: musae train's, a number of passes over the store)\n"
            "  --split val|all   clips analyse runs on (default val: the trainer's held-out clips)\n"
            "  --max-rate R      analyze's keep filter upper clip rate (default 0.25)\n"
            "  --labels FILE     a LABELS.jsonl for the dashboard (repeatable)\n"
            "  --seconds S       dashboard excerpt length (default 5)\n");
}

enum { OPT_MODEL = CLI_OPT_FIRST, OPT_AUDIO, OPT_LAYER, OPT_CLIP, OPT_K, OPT_EXP, OPT_TOKENS, OPT_SPLIT, OPT_MAXRATE,
       OPT_LABELS, OPT_SECONDS };

/* Runs this binary with argv (NULL-terminated); its exit status, or musae_fail when it cannot start. */
static int step(const char *name, char *const *argv) {
    LOG_INFO("report: %s", name);
    fflush(NULL);
    const pid_t pid = fork();
    if (pid < 0) musae_fail("report: cannot start %s: %s", name, strerror(errno));
    if (pid == 0) {
        execv("/proc/self/exe", argv);
        fprintf(stderr, "musae: error: report: cannot run /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void must(const char *name, char *const *argv) {
    const int rc = step(name, argv);
    if (rc) musae_fail("report: the %s step failed (exit %d); fix it and run the same command again", name, rc);
}

/* Whether DIR/musae.json records a finished training (final_metrics written at the end). */
static int trained(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/musae.json", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    char buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    const int ok = j && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "final_metrics"));
    cJSON_Delete(j);
    return ok;
}

int verb_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL},   {"audio", required_argument, 0, OPT_AUDIO},
        {"layer", required_argument, 0, OPT_LAYER},   {"clip-seconds", required_argument, 0, OPT_CLIP},
        {"k", required_argument, 0, OPT_K},           {"expansion", required_argument, 0, OPT_EXP},
        {"tokens", required_argument, 0, OPT_TOKENS}, {"split", required_argument, 0, OPT_SPLIT},
        {"max-rate", required_argument, 0, OPT_MAXRATE}, {"labels", required_argument, 0, OPT_LABELS},
        {"seconds", required_argument, 0, OPT_SECONDS}, {0, 0, 0, 0}};
    const char *model = NULL, *audio = NULL, *out = NULL, *layer = NULL, *clip = "10", *k = "32", *exp = "8",
               *tokens = NULL, *split = "val", *max_rate = "0.25", *seconds = "5";
    const char *labels[16];
    int n_labels = 0, ch;
    while ((ch = cli_getopt(argc, argv, "o:", opts)) != -1) {
        switch (ch) {
        case OPT_MODEL: model = optarg; break;
        case OPT_AUDIO: audio = optarg; break;
        case OPT_LAYER: cli_int("--layer", optarg, 0, 1000), layer = optarg; break;
        case OPT_CLIP: cli_double("--clip-seconds", optarg, 0.02, 3600), clip = optarg; break;
        case OPT_K: cli_int("--k", optarg, 1, 1 << 16), k = optarg; break;
        case OPT_EXP: cli_int("--expansion", optarg, 1, 1024), exp = optarg; break;
        case OPT_TOKENS: cli_int("--tokens", optarg, 1, INT64_MAX / 2), tokens = optarg; break;
        case OPT_SPLIT:
            if (strcmp(optarg, "val") && strcmp(optarg, "all")) cli_usage_fail("report", "--split: val or all, got '%s'", optarg);
            split = optarg;
            break;
        case OPT_MAXRATE: cli_double("--max-rate", optarg, 0, 1), max_rate = optarg; break;
        case OPT_LABELS:
            if (n_labels == 16) cli_usage_fail("report", "at most 16 --labels files");
            labels[n_labels++] = optarg;
            break;
        case OPT_SECONDS: cli_double("--seconds", optarg, 0.02, 3600), seconds = optarg; break;
        case 'o': out = optarg; break;
        }
    }
    if (optind < argc) cli_usage_fail("report", "unexpected argument '%s'", argv[optind]);
    if (!model || !audio || !layer || !out) cli_usage_fail("report", "--model, --audio, --layer and -o are required");
    if (mkdir(out, 0755) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", out, strerror(errno));
    char acts[4200], sae[4200], feats[4200], desc[4200], site[4200], dsp[4200];
    snprintf(acts, sizeof acts, "%s/acts.h5", out);
    snprintf(sae, sizeof sae, "%s/sae", out);
    snprintf(feats, sizeof feats, "%s/features.h5", out);
    snprintf(desc, sizeof desc, "%s/descriptors.h5", out);
    snprintf(site, sizeof site, "%s/site", out);
    snprintf(dsp, sizeof dsp, "%s/labels.jsonl", out);
    /* capture continues a store and skips the clips it already holds: run it every time */
    char *cap[] = {"musae", "capture", "--model", (char *)model, "--audio", (char *)audio, "--layers", (char *)layer,
                   "--clip-seconds", (char *)clip, "-o", acts, NULL};
    must("capture", cap);
    char state[4300];
    snprintf(state, sizeof state, "%s/state", sae);
    if (trained(sae)) {
        LOG_INFO("report: train: skipped (%s/musae.json records a finished run)", sae);
    } else {
        const int resume = access(state, F_OK) == 0;
        char *tr[16] = {"musae", "train", "--acts", acts, "--layer", (char *)layer, "--k", (char *)k, "--expansion",
                        (char *)exp, "-o", sae};
        int nt = 12;
        if (tokens) tr[nt++] = "--tokens", tr[nt++] = (char *)tokens;
        if (resume) tr[nt++] = "--resume";
        tr[nt] = NULL;
        must(resume ? "train (resuming)" : "train", tr);
    }
    if (features_is_file(feats)) {
        LOG_INFO("report: analyze: skipped (%s is complete)", feats);
    } else {
        char *an[] = {"musae", "analyze", "--sae", sae, "--acts", acts, "--split", (char *)split, "--max-rate",
                      (char *)max_rate, "-o", feats, NULL};
        must("analyze", an);
    }
    if (access(desc, R_OK) == 0) {
        LOG_INFO("report: describe: skipped (%s exists; it is written atomically)", desc);
    } else {
        char *de[] = {"musae", "describe", "--acts", acts, "-o", desc, NULL};
        must("describe", de);
    }
    if (access(dsp, R_OK) == 0) {
        LOG_INFO("report: label dsp: skipped (%s exists; it is written atomically)", dsp);
    } else {
        char *la[] = {"musae", "label", "--labeler", "dsp", "--features", feats, "--descriptors", desc, "-o", dsp, NULL};
        must("label dsp", la);
    }
    char *da[64] = {"musae", "dashboard", "--features", feats, "--seconds", (char *)seconds, "--labels", dsp, "-o", site};
    int n = 10;
    for (int i = 0; i < n_labels; i++) da[n++] = "--labels", da[n++] = (char *)labels[i];
    da[n] = NULL;
    must("dashboard (excerpts already in the site are reused)", da);
    return 0;
}
