/* musae score — scores for the labels of LABELS.jsonl (docs/LABELS.md): detection by an audio LLM, delphi's
 * protocol (eval/llm_score.c, docs/LLM_LABEL.md). */
#include "eval/llm_label.h"
#include "host/cli/cli.h"

const char verb_score_summary[] = "score labels in LABELS.jsonl by LLM detection (delphi's protocol on audio)";

int verb_score(int argc, char **argv) { return llm_score_main(argc, argv); }
