/* musae score — scores for the labels of LABELS.jsonl (docs/LABELS.md): with --clap, CLAP alignment, contrast and
 * detection AUROC (host/cli/clap_main.h, docs/CLAP.md); otherwise detection by an audio LLM, delphi's protocol
 * (eval/llm_score.c, docs/LLM_LABEL.md). Each takes its own options. */
#include <string.h>

#include "eval/llm_label.h"
#include "host/cli/clap_main.h"
#include "host/cli/cli.h"

const char verb_score_summary[] =
    "score labels in LABELS.jsonl: CLAP alignment and detection (--clap), or LLM detection (delphi's protocol)";

int verb_score(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--clap") || !strncmp(argv[i], "--clap=", 7)) return clap_score_main(argc, argv);
    return llm_score_main(argc, argv);
}
