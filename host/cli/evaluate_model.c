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
            "usage: musae evaluate --sae DIR --model DIR (--audio DIR|LIST|FILE | --codes FILE) [options]\n\n"
            "Splices the SAE's reconstruction into the decoder's residual stream after its layer (at the positions\n"
            "a capture stores: 1..F of each clip) and compares the next-code cross-entropy with the clean model\n"
            "and with zero-ablation of the same positions. The audio is cut and encoded as `musae capture` does;\n"
            "use clips the SAE was not trained on. One JSON line on stdout (docs/CAPTURE.md defines every field):\n"
            "  ce_clean, ce_sae, ce_zero   mean -log p(code) in nats over the K x F predictions of real codes\n"
            "  ce_increase                 ce_sae - ce_clean\n"
            "  loss_recovered              (ce_zero - ce_sae) / (ce_zero - ce_clean), SAELens/SAEBench's CE loss score\n"
            "  kl_sae, kl_zero, kl_score   KL(clean || spliced), KL(clean || zeroed), (kl_zero - kl_sae) / kl_zero\n"
            "  fvu, mse, l0, cos, dead_frac  reconstruction of the spliced rows\n\n"
            "  --codes FILE         instead of audio: codes [B, K, F] (musae encode / generate); each item is a clip\n"
            "  --layer L            the layer (default: the checkpoint's musae.json; needed for sparsify SAEs)\n"
            "  --clip-seconds S     clip length (default 10)\n"
            "  --min-seconds S      keep shorter tails of at least S seconds (default: whole clips only)\n"
            "  --captions           condition on the list file's captions (default unconditional)\n"
            "  --max-clips N        evaluate on at most N clips\n"
            "  --force              evaluate even if the checkpoint names another layer or model\n"
            CLI_DEVICE_USAGE);
}

int evaluate_model_main(int argc, char **argv) {
    spliced_opts o;
    spliced_opts_defaults(&o);
    cli_device_flags dflags = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--captions")) { o.captions = 1; continue; }
        if (!strcmp(a, "--force")) { o.force = 1; continue; }
        if (!v) musae_fail("%s needs a value (or is unknown; musae evaluate --help)", a);
        i++;
        if (cli_device_flag(&dflags, a, v)) continue;
        if (!strcmp(a, "--sae")) o.sae_dir = v;
        else if (!strcmp(a, "--model")) o.model_dir = v;
        else if (!strcmp(a, "--audio")) o.audio = v;
        else if (!strcmp(a, "--codes")) o.codes = v;
        else if (!strcmp(a, "--layer")) o.layer = (int)cli_int(a, v, 0, 100000);
        else if (!strcmp(a, "--clip-seconds")) o.clip_seconds = cli_double(a, v, 0.02, 3600);
        else if (!strcmp(a, "--min-seconds")) o.min_seconds = cli_double(a, v, 0.02, 3600);
        else if (!strcmp(a, "--max-clips")) o.max_clips = cli_int(a, v, 1, INT64_MAX / 2);
        else musae_fail("evaluate --model: unknown option '%s' (musae evaluate --help)", a);
    }
    if (!o.sae_dir || !o.model_dir || !o.audio == !o.codes) {
        evaluate_model_usage(stderr);
        musae_fail("evaluate --model: --sae, --model and one of --audio or --codes are required");
    }
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
