/* musae generate — autoregressive MusicGen generation. The loop lives in model/generate.c; this verb only
 * gathers the conditioning (prompts through T5, model/text_cond.h, or precomputed text states) and the steering
 * direction (eval/steer_dir.h, docs/STEER.md), runs it and writes the codes and the audio. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "eval/capture.h"
#include "eval/steer_dir.h"
#include "model/encodec.h"
#include "model/generate.h"
#include "model/lm_files.h"
#include "model/text_cond.h"

const char verb_generate_summary[] = "generate music codes with MusicGen (CFG, top-k/top-p sampling, greedy)";

typedef struct {
    const char *model_dir, *codes_out, *text_states;
    const char *audio_out; /* -o: decode the codes with the folder's EnCodec */
    int as_float, as_flac;  /* --float, --flac (cli_audio_format) */
    const char *acts, *capture_layers; /* --acts, --capture-layers: generation-time capture (eval/capture.h) */
    const char **prompts; /* [n_prompts] into argv */
    int n_prompts;
    int64_t max_text_tokens; /* 0 = no truncation (HF MusicGen) */
    double seconds;          /* > 0: frames = round(seconds * frame rate) */
    int64_t frames, batch;
    int have_batch, have_guidance;
    double guidance;
    mg_sampler sampler;
    cli_device_flags dev;
    steer_opts steer;
    mg_gen_loop loop;
} gen_args;

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae generate --model DIR (--frames N | --seconds S) (-o OUT.wav | --codes-out FILE) [--seed S]\n"
            "                      [--float | --flac]\n"
            "                      [--prompt TEXT ... | --text-states FILE] [--batch B] [--guidance G]\n"
            "                      [--top-k K] [--top-p P] [--temperature T] [--greedy]\n"
            "                      [--capture-layers L,L.. --acts ACTS.h5] [--device D] [--precision P]\n"
            "                      [--sae DIR --steer F:ALPHA[,F:ALPHA...] (--beta B | --features FEATURES.h5) |\n"
            "                       --steer-vector FILE"
            " --steer-layer L [--steer-alpha A] [--beta B]] [--steer-branch cond|uncond|both]\n"
            "                      [--steer-frames A:B] [--alpha-max A] [--force] [--loop auto|host|device]\n\n"
            "Generates N frames (50 per second) of K codebooks with the MusicGen decoder and writes them as\n"
            "codes int64 [B, K, N] (safetensors, tensor 'codes').\n\n"
            "  --model DIR          MusicGen folder (config.json + safetensors, single or sharded)\n"
            "  --frames N           frames to generate (the model's positions bound N: 2045 for 2048 positions)\n"
            "  --seconds S          or the duration: N = round(S x frame rate), 50 frames per second at 32 kHz\n"
            "  -o OUT               the audio: WAV 16-bit (FLAC when OUT ends in .flac), decoded with the folder's\n"
            "                       EnCodec; with B > 1 items, OUT with _b before the extension\n"
            CLI_AUDIO_USAGE
            "  --codes-out FILE     the codes\n"
            "  --seed S             sampling seed (default 0); the draws are Philox(seed, item, step)\n"
            "  --prompt TEXT        a text description (UTF-8); repeat for a batch, one item per prompt. Tokenized\n"
            "                       with the folder's spiece.model and encoded by its T5, as HF MusicGen does\n"
            "  --max-text-tokens N  truncate prompts to N tokens (the last one </s>); default: keep all, as HF\n"
            "                       MusicGen does, warning past tokenizer_config.json's model_max_length\n"
            "  --text-states FILE   conditioning: text_states f32 [B, S, H] (after enc_to_dec_proj, masked) and\n"
            "                       text_mask int64 [B, S]; without it generation is unconditional\n"
            "  --batch B            items to generate without text (default 1; with text, one per prompt or\n"
            "                       per text-states row)\n"
            "  --guidance G         classifier-free guidance scale with text (default: generation_config.json,\n"
            "                       3.0 for the released models; 1 disables)\n"
            "  --top-k K            sample among the K most likely codes (default 250 as audiocraft; 50 is HF's\n"
            "                       default; 0 disables)\n"
            "  --top-p P            nucleus sampling mass in (0, 1] (default 1 = off)\n"
            "  --temperature T      softmax temperature > 0 (default 1)\n"
            "  --greedy             take the most likely code at every step (HF do_sample=False)\n"
            "  --capture-layers L   with --acts: record the residual stream after these layers on the conditional\n"
            "                       branch while generating, into a new activation store ACTS.h5: one clip per item\n"
            "                       (named OUT#item=b), the row of frame t being position t + 1 as in musae capture\n"
            CLI_DEVICE_USAGE "\n"
            "Steering (docs/STEER.md): adds v to the residual stream after the SAE's layer at every step:\n"
            "  --sae DIR            SAE checkpoint; its musae.json names the layer (and the model, checked)\n"
            "  --steer F:ALPHA,..   v = sum of ALPHA x B x W_dec[F] (decoder rows, in the residual's units)\n"
            "  --beta B             the features' scale: their maximum activation (FEATURES.h5 /features/max_act);\n"
            "                       finite, > 0\n"
            "  --features F.h5      or each feature's own β from musae analyze's FEATURES.h5 (/features/max_act) of\n"
            "                       this SAE (its recorded sae.safetensors sha256 must match)\n"
            "  --steer-vector FILE  any direction instead: safetensors with tensor 'direction' f32 [d_model]; v =\n"
            "                       A x B x direction (A = --steer-alpha, default 1; B = --beta, default 1)\n"
            "  --steer-layer L      the layer after which v is added (--steer-vector; overrides musae.json with --force)\n"
            "  --alpha-max A        allow |ALPHA| up to A (default 1, the paper's range)\n"
            "  --steer-branch BR    CFG rows that get v: cond (default), uncond or both; without CFG the one branch\n"
            "  --steer-frames A:B   only frames A..B-1 (positions A+1..B, where capture stores them); default: every\n"
            "                       position from BOS on\n"
            "  --force              steer with an SAE whose musae.json names another model or layer\n"
            "  --loop L             auto (default), host or device: which generation loop runs (both give the\n"
            "                       same codes; for checks)\n\n"
            "Frames map to decoder steps as HF max_new_tokens: N + 3 steps with the codebook delay pattern;\n"
            "N = 1 or 2 takes N steps without a delay (HF's short case).\n");
}

/* A number that may be NaN or infinite: steer_plan_build refuses those with the reason (a finite β > 0, |α| in
 * range); only text that is no number at all is refused here. */
static double any_number(const char *flag, const char *s) {
    char *end = NULL;
    const double v = strtod(s, &end);
    if (!*s || *end) musae_fail("%s: expected a number, got '%s'", flag, s);
    return v;
}

static void parse(int argc, char **argv, gen_args *a) {
    memset(a, 0, sizeof *a);
    a->batch = 1;
    a->prompts = musae_xcalloc((size_t)argc, sizeof *a->prompts);
    a->sampler = (mg_sampler){.greedy = 0, .temperature = 1.0f, .top_k = 250, .top_p = 1.0f, .seed = 0};
    steer_opts_defaults(&a->steer);
    int have_frames = 0;
    enum { OPT_MODEL = CLI_OPT_FIRST, OPT_PROMPT, OPT_MAX_TEXT, OPT_SECONDS, OPT_CODES_OUT, OPT_TEXT_STATES, OPT_ACTS,
           OPT_CAPTURE, OPT_FRAMES, OPT_SEED, OPT_BATCH, OPT_GUIDANCE, OPT_TOP_K, OPT_TOP_P, OPT_TEMPERATURE,
           OPT_GREEDY, OPT_SAE, OPT_STEER, OPT_STEER_VECTOR, OPT_STEER_ALPHA, OPT_BETA, OPT_ALPHA_MAX,
           OPT_STEER_BRANCH, OPT_STEER_FRAMES, OPT_STEER_LAYER, OPT_FORCE, OPT_LOOP, OPT_FEATURES };
    static const struct option opts[] = {
        {"model", required_argument, NULL, OPT_MODEL},           {"prompt", required_argument, NULL, OPT_PROMPT},
        {"max-text-tokens", required_argument, NULL, OPT_MAX_TEXT}, {"seconds", required_argument, NULL, OPT_SECONDS},
        {"codes-out", required_argument, NULL, OPT_CODES_OUT},   {"output", required_argument, NULL, 'o'},
        {"text-states", required_argument, NULL, OPT_TEXT_STATES}, {"acts", required_argument, NULL, OPT_ACTS},
        {"capture-layers", required_argument, NULL, OPT_CAPTURE}, {"frames", required_argument, NULL, OPT_FRAMES},
        {"seed", required_argument, NULL, OPT_SEED},             {"batch", required_argument, NULL, OPT_BATCH},
        {"guidance", required_argument, NULL, OPT_GUIDANCE},     {"top-k", required_argument, NULL, OPT_TOP_K},
        {"top-p", required_argument, NULL, OPT_TOP_P},           {"temperature", required_argument, NULL, OPT_TEMPERATURE},
        {"greedy", no_argument, NULL, OPT_GREEDY},               {"sae", required_argument, NULL, OPT_SAE},
        {"steer", required_argument, NULL, OPT_STEER},           {"steer-vector", required_argument, NULL, OPT_STEER_VECTOR},
        {"steer-alpha", required_argument, NULL, OPT_STEER_ALPHA}, {"beta", required_argument, NULL, OPT_BETA},
        {"alpha-max", required_argument, NULL, OPT_ALPHA_MAX},   {"steer-branch", required_argument, NULL, OPT_STEER_BRANCH},
        {"steer-frames", required_argument, NULL, OPT_STEER_FRAMES}, {"steer-layer", required_argument, NULL, OPT_STEER_LAYER},
        {"force", no_argument, NULL, OPT_FORCE},                 {"loop", required_argument, NULL, OPT_LOOP},
        {"features", required_argument, NULL, OPT_FEATURES},
        CLI_AUDIO_OPTIONS, CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        const char *v = optarg;
        switch (c) {
        case OPT_MODEL: a->model_dir = v; break;
        case OPT_PROMPT: a->prompts[a->n_prompts++] = v; break;
        case OPT_MAX_TEXT: a->max_text_tokens = cli_int("--max-text-tokens", v, 1, INT32_MAX); break;
        case OPT_SECONDS: a->seconds = cli_double("--seconds", v, 1e-3, 1e5); break;
        case OPT_CODES_OUT: a->codes_out = v; break;
        case 'o': a->audio_out = v; break;
        case OPT_TEXT_STATES: a->text_states = v; break;
        case OPT_ACTS: a->acts = v; break;
        case OPT_CAPTURE: a->capture_layers = v; break;
        case OPT_FRAMES: a->frames = cli_int("--frames", v, 1, INT32_MAX), have_frames = 1; break;
        case OPT_SEED: a->sampler.seed = (uint64_t)cli_int("--seed", v, 0, INT64_MAX); break;
        case OPT_BATCH: a->batch = cli_int("--batch", v, 1, 65536), a->have_batch = 1; break;
        case OPT_GUIDANCE: a->guidance = cli_double("--guidance", v, 0.0, 1000.0), a->have_guidance = 1; break;
        case OPT_TOP_K: a->sampler.top_k = (int)cli_int("--top-k", v, 0, INT32_MAX); break;
        case OPT_TOP_P: a->sampler.top_p = (float)cli_double("--top-p", v, 1e-6, 1.0); break;
        case OPT_TEMPERATURE: a->sampler.temperature = (float)cli_double("--temperature", v, 1e-6, 1e6); break;
        case OPT_GREEDY: a->sampler.greedy = 1; break;
        case OPT_SAE: a->steer.sae_dir = v; break;
        case OPT_STEER: a->steer.spec = v; break;
        case OPT_STEER_VECTOR: a->steer.vector = v; break;
        /* α and β ranges are checked by steer_plan_build, which names the refusal; here only "a number" */
        case OPT_STEER_ALPHA: a->steer.vector_alpha = any_number("--steer-alpha", v); break;
        case OPT_BETA: a->steer.beta = any_number("--beta", v), a->steer.have_beta = 1; break;
        case OPT_ALPHA_MAX: a->steer.alpha_max = cli_double("--alpha-max", v, 1e-30, 1e30); break;
        case OPT_STEER_BRANCH: a->steer.branch = v; break;
        case OPT_STEER_FRAMES: a->steer.frames = v; break;
        case OPT_STEER_LAYER: a->steer.layer = (int)cli_int("--steer-layer", v, 0, 100000); break;
        case OPT_FORCE: a->steer.force = 1; break;
        case OPT_FEATURES: a->steer.features = v; break;
        case OPT_LOOP:
            if (!strcmp(v, "auto")) a->loop = MG_LOOP_AUTO;
            else if (!strcmp(v, "host")) a->loop = MG_LOOP_HOST;
            else if (!strcmp(v, "device")) a->loop = MG_LOOP_DEVICE;
            else cli_usage_fail(argv[0], "--loop: expected auto, host or device, got '%s'", v);
            break;
        case CLI_OPT_FLOAT: a->as_float = 1; break;
        case CLI_OPT_FLAC: a->as_flac = 1; break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&a->dev, c, v); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (have_frames && a->seconds > 0) cli_usage_fail(argv[0], "--frames and --seconds exclude each other: give one length");
    if (!a->model_dir || have_frames == (a->seconds > 0) || (!a->codes_out && !a->audio_out))
        cli_usage_fail(argv[0], "--model, -o and/or --codes-out, and one of --frames or --seconds are required");
    if ((a->as_float || a->as_flac) && !a->audio_out) cli_usage_fail(argv[0], "--float and --flac apply to -o");
    if (a->audio_out) cli_audio_format(a->audio_out, a->as_float, a->as_flac); /* refused now, not after generating */
    if (a->n_prompts && a->text_states) musae_fail("--prompt and --text-states are two sources of text: give one");
    if (a->max_text_tokens && !a->n_prompts) musae_fail("--max-text-tokens applies to --prompt only");
    if (!a->acts != !a->capture_layers) musae_fail("--capture-layers and --acts go together");
    if (steer_opts_any(&a->steer) && !a->steer.spec && !a->steer.vector)
        musae_fail("--sae, --beta, --features, --steer-branch, --steer-frames and --steer-layer go with --steer or "
                   "--steer-vector");
}

/* The conditioning of the B items: prompts through T5 (weights from the open st), precomputed text
 * states, or none. */
static int64_t load_conditioning(const gen_args *a, const mg_model *m, musae_st *st, const musae_model_config *cfg,
                                 mg_text_states *ts, mg_text *text) {
    memset(text, 0, sizeof *text);
    if (!a->text_states && !a->n_prompts) return a->batch;
    if (a->n_prompts)
        musae_text_cond_run(a->model_dir, st, cfg, m->ops, a->n_prompts, a->prompts, a->max_text_tokens, ts);
    else mg_read_text_states(a->text_states, m->H, ts);
    if (a->have_batch && a->batch != ts->B)
        musae_fail("--batch %lld disagrees with the %lld %s", (long long)a->batch, (long long)ts->B,
                   a->n_prompts ? "prompts" : "rows of the text states");
    *text = (mg_text){.states = ts->states, .mask = ts->mask, .S = ts->S};
    return ts->B;
}

static void write_outputs(const gen_args *a, const mg_gen_params *p, const steer_plan *sp, const int64_t *codes,
                          int64_t B, int64_t K, int64_t F) {
    char seed[32], guid[32], topk[32], topp[32], temp[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->sampler.seed);
    snprintf(guid, sizeof guid, "%g", (double)p->guidance);
    snprintf(topk, sizeof topk, "%d", a->sampler.top_k);
    snprintf(topp, sizeof topp, "%g", (double)a->sampler.top_p);
    snprintf(temp, sizeof temp, "%g", (double)a->sampler.temperature);
    const char *meta[] = {"model", a->model_dir, "seed", seed, "guidance", guid, "top_k", topk, "top_p", topp,
                          "temperature", temp, "greedy", a->sampler.greedy ? "1" : "0",
                          "text_states", a->text_states ? a->text_states : "",
                          "steer", sp->json ? sp->json : "", "prompts", NULL};
    /* the prompts as a JSON array of strings, so the file says what it was conditioned on */
    cJSON *arr = cJSON_CreateStringArray(a->prompts, a->n_prompts);
    char *prompts = cJSON_PrintUnformatted(arr);
    meta[sizeof meta / sizeof meta[0] - 1] = prompts;
    mg_write_codes(a->codes_out, codes, B, K, F, meta, (int)(sizeof meta / sizeof meta[0] / 2));
    cJSON_free(prompts);
    cJSON_Delete(arr);
    LOG_INFO("wrote %s: codes [%lld, %lld, %lld]", a->codes_out, (long long)B, (long long)K, (long long)F);
}

int verb_generate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    gen_args a;
    parse(argc, argv, &a);
    const cli_device dev = cli_device_resolve(&a.dev, 1);

    char err[1024];
    musae_model_config cfg;
    if (musae_config_load(&cfg, a.model_dir, err, sizeof err)) musae_fail("%s", err);
    musae_st st;
    if (musae_st_open(&st, a.model_dir, err, sizeof err)) musae_fail("%s", err);
    mg_model m;
    mg_load_from(&m, &st, &cfg, dev.ops, dev.prec);
    if (a.seconds > 0) {
        if (!cfg.has_audio)
            musae_fail("--seconds: %s/config.json has no audio_encoder frame rate; use --frames", a.model_dir);
        a.frames = (int64_t)llround(a.seconds * cfg.audio.frame_rate);
        if (a.frames < 1)
            musae_fail("--seconds %g is less than one frame (%d per second)", a.seconds, cfg.audio.frame_rate);
    }
    if (mg_check_frames(&m, a.frames, err, sizeof err)) musae_fail("--frames: %s", err);

    mg_text_states ts = {0};
    mg_text text;
    const int64_t B = load_conditioning(&a, &m, &st, &cfg, &ts, &text);
    musae_st_close(&st);
    mg_gen_params p = {
        .steps = mg_delay_plan_frames(m.K, a.frames).steps,
        .guidance = (float)(a.have_guidance ? a.guidance : cfg.guidance_scale),
        .sampler = a.sampler,
        .progress = 1,
        .loop = a.loop,
    };
    if (!text.states && p.guidance > 1.0f)
        LOG_INFO("no text conditioning: guidance %g has nothing to guide and is not applied", (double)p.guidance);
    LOG_INFO("generating %lld frames for %lld item(s): %lld steps, %s", (long long)a.frames, (long long)B,
             (long long)p.steps, a.sampler.greedy ? "greedy" : "sampling");

    /* steering first: a capture READ after it at the same layer sees the steered residual */
    steer_plan sp = {0};
    float *steer_vec = NULL;
    mg_hook *hooks = NULL;
    int n_hooks = 0;
    if (a.steer.spec || a.steer.vector) {
        steer_plan_build(&a.steer, &m, a.model_dir, a.frames, text.states && p.guidance > 1.0f, &sp);
        steer_vec = m.ops->alloc((size_t)m.H * sizeof(float));
        m.ops->upload(steer_vec, sp.vec, (size_t)m.H * sizeof(float));
        hooks = musae_xrealloc(hooks, sizeof(mg_hook));
        hooks[n_hooks++] = steer_plan_hook(&sp, steer_vec);
        LOG_INFO("steering: %s", sp.json);
    }
    capture_gen *cap = NULL;
    if (a.acts) {
        int layers[MUSAE_STORE_MAX_LAYERS];
        const int nl = cli_int_list("--capture-layers", a.capture_layers, layers, MUSAE_STORE_MAX_LAYERS, 0, 100000);
        cap = capture_gen_begin(a.acts, a.model_dir, &m, layers, nl, B, p.steps, MUSAE_F16);
        int n_cap = 0;
        const mg_hook *ch = capture_gen_hooks(cap, &n_cap);
        hooks = musae_xrealloc(hooks, sizeof(mg_hook) * (size_t)(n_hooks + n_cap));
        memcpy(hooks + n_hooks, ch, sizeof(mg_hook) * (size_t)n_cap);
        n_hooks += n_cap;
    }
    int64_t *codes = musae_xmalloc((size_t)(B * m.K * a.frames) * sizeof(int64_t));
    const int64_t F = mg_generate(&m, B, &text, &p, hooks, n_hooks, NULL, NULL, codes);
    if (cap) capture_gen_finish(cap, a.audio_out ? a.audio_out : a.codes_out, F);
    MUSAE_ASSERT(F == a.frames, "generated %lld frames, asked for %lld", (long long)F, (long long)a.frames);
    if (a.codes_out) write_outputs(&a, &p, &sp, codes, B, m.K, F);
    if (a.audio_out) {
        const musae_audio_format fmt = cli_audio_format(a.audio_out, a.as_float, a.as_flac);
        encodec codec;
        encodec_load(&codec, a.model_dir, dev.ops);
        if (encodec_decode_to_files(&codec, codes, B, F, a.audio_out, fmt, 0, err, sizeof err)) musae_fail("%s", err);
        encodec_free(&codec);
    }

    free(codes);
    free(hooks);
    if (steer_vec) m.ops->free(steer_vec);
    steer_plan_free(&sp);
    mg_text_states_free(&ts);
    mg_free(&m);
    free(a.prompts);
    return 0;
}
