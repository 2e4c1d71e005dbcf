/* musae forward — teacher-forced decoder forward over a codes file: logits and residual-stream dumps for
 * inspection and reference checks (formats: ARCHITECTURE.md, "Forward dump"). */
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "model/delay.h"
#include "model/lm_files.h"
#include "model/musicgen.h"
#include "model/text_cond.h"

const char verb_forward_summary[] = "teacher-forced LM forward over codes: logits and hidden states (dump)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae forward --model DIR --codes FILE [--prompt TEXT ... | --text-states FILE]\n"
            "                     [--layers all|none|L,L..] [--no-logits] [--device D] [--precision P] -o DUMP\n\n"
            "Runs the MusicGen decoder over codes [B, K, F] (safetensors, tensor 'codes', int64), teacher-forced:\n"
            "the delay pattern is applied inside, giving T = F + K steps (step 0 = BOS). Writes DUMP (safetensors):\n"
            "  logits      f32 [B, K, T, V]   every step's logits\n"
            "  hidden.<L>  f32 [B, T, H]      residual stream after decoder layer L (no final norm)\n"
            "  delayed     i64 [B, K, T]      the decoder's input sequence\n"
            "  text_states f32 [B, S, H]      the conditioning, when given\n\n"
            "  --model DIR          MusicGen folder (config.json + safetensors, single or sharded)\n"
            "  --codes FILE         codes to score\n"
            "  --prompt TEXT        conditioning: a text description per code row (repeat, in order), through the\n"
            "                       folder's tokenizer, T5 and enc_to_dec_proj as generate does\n"
            "  --max-text-tokens N  truncate prompts to N tokens (default: keep all, as HF MusicGen)\n"
            "  --text-states FILE   or precomputed: text_states f32 [B, S, H] (after enc_to_dec_proj, masked) and\n"
            "                       text_mask int64 [B, S]; without either the forward is unconditional\n"
            "  --layers SPEC        hidden states to dump: all (default), none, or a list like 0,5,11\n"
            "  --no-logits          skip the final norm and heads (only layers up to the deepest dumped run)\n"
            "  -o DUMP              output file\n"
            CLI_DEVICE_USAGE);
}

int verb_forward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model_dir = NULL, *codes_path = NULL, *text_path = NULL, *out_path = NULL, *layer_spec = "all";
    const char **prompts = musae_xcalloc((size_t)argc, sizeof *prompts);
    int n_prompts = 0;
    int64_t max_text_tokens = 0;
    int want_logits = 1;
    cli_device_flags dflags = {0};
    enum { OPT_MODEL = CLI_OPT_FIRST, OPT_CODES, OPT_PROMPT, OPT_MAX_TEXT, OPT_TEXT_STATES, OPT_LAYERS, OPT_NO_LOGITS };
    static const struct option opts[] = {
        {"model", required_argument, NULL, OPT_MODEL},              {"codes", required_argument, NULL, OPT_CODES},
        {"prompt", required_argument, NULL, OPT_PROMPT},            {"max-text-tokens", required_argument, NULL, OPT_MAX_TEXT},
        {"text-states", required_argument, NULL, OPT_TEXT_STATES},  {"layers", required_argument, NULL, OPT_LAYERS},
        {"no-logits", no_argument, NULL, OPT_NO_LOGITS},            CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_MODEL: model_dir = optarg; break;
        case OPT_CODES: codes_path = optarg; break;
        case OPT_PROMPT: prompts[n_prompts++] = optarg; break;
        case OPT_MAX_TEXT: max_text_tokens = cli_int("--max-text-tokens", optarg, 1, INT32_MAX); break;
        case OPT_TEXT_STATES: text_path = optarg; break;
        case OPT_LAYERS: layer_spec = optarg; break;
        case 'o': out_path = optarg; break;
        case OPT_NO_LOGITS: want_logits = 0; break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!model_dir || !codes_path || !out_path) cli_usage_fail(argv[0], "--model, --codes and -o are required");
    if (n_prompts && text_path) musae_fail("--prompt and --text-states are two sources of text: give one");
    if (max_text_tokens && !n_prompts) musae_fail("--max-text-tokens applies to --prompt only");
    const cli_device dev = cli_device_resolve(&dflags, 1);

    char err[1024];
    musae_model_config cfg;
    if (musae_config_load(&cfg, model_dir, err, sizeof err)) musae_fail("%s", err);
    musae_st mst;
    if (musae_st_open(&mst, model_dir, err, sizeof err)) musae_fail("%s", err);
    mg_model m;
    mg_load_from(&m, &mst, &cfg, dev.ops, dev.prec);
    const int64_t K = m.K, V = m.V, H = m.H;

    int n_layers = 0;
    int *layers = musae_xmalloc(sizeof(int) * (size_t)m.n_layers);
    if (!strcmp(layer_spec, "all"))
        for (int l = 0; l < m.n_layers; l++) layers[n_layers++] = l;
    else if (strcmp(layer_spec, "none"))
        n_layers = cli_int_list("--layers", layer_spec, layers, (int)m.n_layers, 0, (int)m.n_layers - 1);
    if (!want_logits && n_layers == 0) musae_fail("--no-logits with --layers none leaves nothing to dump");

    int64_t B, F;
    int64_t *codes = mg_read_codes(codes_path, K, V, &B, &F);
    const int64_t T = F + K;
    if (T > m.max_pos)
        musae_fail("%s: %lld frames need %lld decoder positions; the model has %lld (at most %lld frames)", codes_path,
                   (long long)F, (long long)T, (long long)m.max_pos, (long long)(m.max_pos - K));
    mg_text_states text = {0};
    if (n_prompts) {
        if (n_prompts != B)
            musae_fail("--prompt given %d time(s) for %lld code rows in %s: one prompt per row", n_prompts,
                       (long long)B, codes_path);
        musae_text_cond_run(model_dir, &mst, &cfg, dev.ops, n_prompts, prompts, max_text_tokens, &text);
    } else if (text_path) {
        mg_read_text_states(text_path, H, &text);
        if (text.B != B)
            musae_fail("%s: %lld text rows for %lld code rows in %s", text_path, (long long)text.B, (long long)B,
                       codes_path);
    }
    musae_st_close(&mst);
    const int have_text = text.states != NULL;
    int64_t *delayed = musae_xmalloc((size_t)(B * K * T) * sizeof(int64_t));
    mg_delay_codes(codes, B, K, F, V, delayed);

    /* one item per call: memory stays one sequence deep and progress can be shown */
    float *logits = want_logits ? musae_xmalloc((size_t)(B * K * T * V) * sizeof(float)) : NULL;
    float **hidden = musae_xcalloc((size_t)n_layers, sizeof(float *));
    mg_hook *hooks = musae_xcalloc((size_t)n_layers, sizeof(mg_hook));
    for (int i = 0; i < n_layers; i++) hidden[i] = musae_xmalloc((size_t)(B * T * H) * sizeof(float));
    mg_state st;
    mg_state_opts o = {.batch = 1, .n_cond = 1, .t_max = T, .t_call = T, .incremental = 0, .logits = want_logits};
    mg_state_init(&st, &m, &o);
    musae_progress pg;
    musae_progress_init(&pg, "forward", "items", B);
    for (int64_t b = 0; b < B; b++) {
        for (int i = 0; i < n_layers; i++)
            hooks[i] = (mg_hook){.kind = MG_HOOK_READ, .layer = layers[i], .branch = MG_BRANCH_COND,
                                 .pos_begin = 0, .pos_end = MG_POS_END, .dst = hidden[i] + b * T * H, .dst_t = T};
        if (have_text)
            mg_state_set_text(&st, &m, text.states + b * text.S * H, text.mask + b * text.S, text.S);
        mg_forward(&m, &st, delayed + b * K * T, T, hooks, n_layers, want_logits);
        if (want_logits) mg_logits_bktv(&m, &st, T, logits + b * K * T * V);
        musae_progress_add(&pg, 1, NULL);
    }
    musae_progress_finish(&pg, NULL);

    musae_st_writer *w = musae_st_writer_new();
    if (want_logits) musae_st_writer_add(w, "logits", MUSAE_F32, 4, (int64_t[]){B, K, T, V}, logits);
    for (int i = 0; i < n_layers; i++) {
        char name[32];
        snprintf(name, sizeof name, "hidden.%d", layers[i]);
        musae_st_writer_add(w, name, MUSAE_F32, 3, (int64_t[]){B, T, H}, hidden[i]);
    }
    musae_st_writer_add(w, "delayed", MUSAE_I64, 3, (int64_t[]){B, K, T}, delayed);
    if (have_text) musae_st_writer_add(w, "text_states", MUSAE_F32, 3, (int64_t[]){B, text.S, H}, text.states);
    musae_st_writer_meta(w, "model", model_dir);
    musae_st_writer_meta(w, "codes", codes_path);
    musae_st_writer_meta(w, "device", dev.ops->name);
    musae_st_writer_meta(w, "precision", dev.prec == MUSAE_PREC_BF16 ? "bf16" : "fp32");
    if (musae_st_writer_save(w, out_path, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);
    LOG_INFO("wrote %s: %lld items, %lld steps, %d hidden layers%s", out_path, (long long)B, (long long)T, n_layers,
             want_logits ? ", logits" : "");

    mg_state_free(&st, &m);
    for (int i = 0; i < n_layers; i++) free(hidden[i]);
    free(hidden);
    free(hooks);
    free(logits);
    free(delayed);
    mg_text_states_free(&text);
    free(codes);
    free(layers);
    free(prompts);
    mg_free(&m);
    return 0;
}
