/* musae evaluate --sae DIR --model DIR --audio SRC: the SAE spliced into the model (eval/spliced.h). */
#include <stdio.h>
#include <string.h>

#include "eval/spliced.h"
#include "host/cli/cli.h"
#include "host/cli/evaluate_model.h"
#include "host/core/check.h"
#include "host/core/log.h"

void evaluate_model_usage(FILE *f) {
    fprintf(f,
            "usage: musae evaluate --sae DIR --model DIR [--audio DIR|LIST|FILE | --codes FILE] [options]\n\n"
            "Splices the SAE's reconstruction into the decoder's residual stream after its layer (at the positions\n"
            "a capture stores: 1..F of each clip) and compares the next-code cross-entropy with the clean model\n"
            "and with zero-ablation of the same positions. By default the clips are the held-out clips of the\n"
            "store the SAE was trained on (its musae.json names the store and the split), cut from their audio\n"
            "files and conditioned (captions) as the capture did. --audio takes other audio, cut and encoded as\n"
            "`musae capture` does, in clips as long as the store's. One JSON line on stdout (docs/CAPTURE.md\n"
            "defines every field):\n"
            "  ce_clean, ce_sae, ce_zero   mean -log p(code) in nats over the K x F predictions of real codes\n"
            "  ce_increase                 ce_sae - ce_clean\n"
            "  loss_recovered              (ce_zero - ce_sae) / (ce_zero - ce_clean), SAELens/SAEBench's CE loss score\n"
            "  kl_sae, kl_zero, kl_score   KL(clean || spliced), KL(clean || zeroed), (kl_zero - kl_sae) / kl_zero\n"
            "  fvu, mse, l0, cos, dead_frac  reconstruction of the spliced rows\n\n"
            "  --codes FILE         instead of audio: codes [B, K, F] (musae encode / generate); each item is a clip\n"
            "  --layer L            the layer (default: the checkpoint's musae.json; needed for sparsify SAEs)\n"
            "  --audio SRC          a folder, list file or audio file instead of the store's held-out clips\n"
            "  --clip-seconds S     with --audio: clip length (default: the SAE's store's, else 10)\n"
            "  --min-seconds S      with --audio: keep shorter tails of at least S seconds (default: the store's,\n"
            "                       else whole clips only)\n"
            "  --captions           with --audio LIST: condition on its captions (default unconditional)\n"
            "  --max-clips N        evaluate on at most N clips\n"
            "  --force              evaluate even if the checkpoint names another layer or model\n"
            CLI_DEVICE_USAGE);
}

int evaluate_model_main(int argc, char **argv) {
    spliced_opts o;
    spliced_opts_defaults(&o);
    cli_device_flags dflags = {0};
    enum { OPT_SAE = CLI_OPT_FIRST, OPT_MODEL, OPT_AUDIO, OPT_CODES, OPT_LAYER, OPT_CLIP, OPT_MIN, OPT_MAX_CLIPS,
           OPT_CAPTIONS, OPT_FORCE };
    static const struct option opts[] = {
        {"sae", required_argument, NULL, OPT_SAE},           {"model", required_argument, NULL, OPT_MODEL},
        {"audio", required_argument, NULL, OPT_AUDIO},       {"codes", required_argument, NULL, OPT_CODES},
        {"layer", required_argument, NULL, OPT_LAYER},       {"clip-seconds", required_argument, NULL, OPT_CLIP},
        {"min-seconds", required_argument, NULL, OPT_MIN},   {"max-clips", required_argument, NULL, OPT_MAX_CLIPS},
        {"captions", no_argument, NULL, OPT_CAPTIONS},       {"force", no_argument, NULL, OPT_FORCE},
        CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
        switch (c) {
        case OPT_SAE: o.sae_dir = optarg; break;
        case OPT_MODEL: o.model_dir = optarg; break;
        case OPT_AUDIO: o.audio = optarg; break;
        case OPT_CODES: o.codes = optarg; break;
        case OPT_LAYER: o.layer = (int)cli_int("--layer", optarg, 0, 100000); break;
        case OPT_CLIP: o.clip_seconds = cli_double("--clip-seconds", optarg, 0.02, 3600); break;
        case OPT_MIN: o.min_seconds = cli_double("--min-seconds", optarg, 0.02, 3600); break;
        case OPT_MAX_CLIPS: o.max_clips = cli_int("--max-clips", optarg, 1, INT64_MAX / 2); break;
        case OPT_CAPTIONS: o.captions = 1; break;
        case OPT_FORCE: o.force = 1; break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!o.sae_dir || !o.model_dir) cli_usage_fail(argv[0], "--sae and --model are required");
    if (o.audio && o.codes) cli_usage_fail(argv[0], "--audio and --codes are two sources of clips: give one");
    const cli_device dev = cli_device_resolve(&dflags, 1);
    o.ops = dev.ops;
    o.prec = dev.prec;
    spliced_result r;
    spliced_evaluate(&o, &r);
    char line[512];
    spliced_summary(line, sizeof line, &r);
    LOG_INFO("%s", line);
    spliced_print_json(stdout, &o, &r);
    return 0;
}
