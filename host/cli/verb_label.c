/* musae label — a label for every kept feature from one labeler (docs/LABELS.md). On this branch only the llm
 * labeler (eval/llm_label.h); the labeldsp branch owns this file and dispatches --labeler llm to
 * llm_label_main the same way. */
#include <stdio.h>
#include <string.h>

#include "eval/llm_label.h"
#include "host/cli/cli.h"

const char verb_label_summary[] = "a label per kept feature into LABELS.jsonl (--labeler llm: an audio LLM)";

int verb_label(int argc, char **argv) {
    /* the labeler is looked up before the options are parsed: each labeler takes its own */
    const char *labeler = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--labeler") && i + 1 < argc) labeler = argv[i + 1];
        else if (!strncmp(argv[i], "--labeler=", 10)) labeler = argv[i] + 10;
    }
    if (labeler && !strcmp(labeler, "llm")) return llm_label_main(argc, argv);
    if (cli_wants_help(argc, argv)) {
        printf("usage: musae label --labeler llm [options]   (see musae label --labeler llm --help)\n");
        return 0;
    }
    if (!labeler) cli_usage_fail("label", "--labeler llm is required");
    cli_usage_fail("label", "--labeler: expected llm, got '%s'", labeler);
}
