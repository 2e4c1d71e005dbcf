/* End to end through the musae binary: prompts → T5 → greedy MusicGen codes, identical to HF
 * MusicgenForConditionalGeneration.generate(do_sample=False) on the tiny model for a batch of 2 prompts of
 * different lengths, with guidance 3.0 and without (golden/lm_generate.safetensors, text_cfg3 /
 * text_nocfg). Then the text-side bad input: invalid UTF-8, a model folder without spiece.model, a prompt
 * flag without a value, prompts together with text states. */
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/io/safetensors.h"
#include "cli.h"

/* lm_generate.safetensors __metadata__ "prompts" (checked below) */
#define P1 "80s pop track with bassy drums and synth"
#define P2 "90s rock song with loud guitars and heavy drums!"

static void check_case(const char *golden, const char *key, const char *guidance) {
    char out[64], path[1024];
    snprintf(out, sizeof out, "codes_%s.safetensors", key);
    int rc = run("generate --model %s/tiny-musicgen --prompt '" P1 "' --prompt '" P2 "' --seconds 0.4 --greedy "
                 "--guidance %s --codes-out %s",
                 test_fixtures(), guidance, out);
    char *err = slurp("err.txt");
    CHECK(rc == 0, "generate (guidance %s) exited %d: %s", guidance, rc, err);
    free(err);
    if (rc) return;
    snprintf(path, sizeof path, "%s/%s", g_dir, out);
    int64_t gs[3], ws[3], *got = read_codes(path, "codes", NULL, gs);
    char name[64];
    snprintf(name, sizeof name, "%s.codes", key);
    int64_t *want = read_codes(golden, name, NULL, ws);
    if (got && want) {
        CHECK(gs[0] == ws[0] && gs[1] == ws[1] && gs[2] == ws[2],
              "codes [%" PRId64 ",%" PRId64 ",%" PRId64 "], HF [%" PRId64 ",%" PRId64 ",%" PRId64 "]", gs[0], gs[1],
              gs[2], ws[0], ws[1], ws[2]);
        int64_t n = gs[0] * gs[1] * gs[2], diff = 0;
        for (int64_t i = 0; i < n && gs[2] == ws[2]; i++) diff += got[i] != want[i];
        CHECK(diff == 0, "%s: %" PRId64 " of %" PRId64 " codes differ from HF", key, diff, n);
        printf("%s: prompts -> %" PRId64 "x%" PRId64 "x%" PRId64 " greedy codes, %" PRId64 " differ from HF\n", key,
               gs[0], gs[1], gs[2], diff);
    }
    free(got), free(want);
}

static void expect_failure(const char *what, const char *needle, const char *fmt, const char *arg) {
    int rc = run(fmt, arg);
    char *err = slurp("err.txt");
    CHECK(rc == 1, "%s: exit %d, expected 1 (%s)", what, rc, err);
    CHECK(strstr(err, needle) != NULL, "%s: stderr '%s' does not say '%s'", what, err, needle);
    free(err);
}

int main(void) {
    scratch_open("t5_generate");
    char golden[1024], err[512];
    snprintf(golden, sizeof golden, "%s/golden/lm_generate.safetensors", test_fixtures());
    musae_st st;
    if (musae_st_open(&st, golden, err, sizeof err) == 0) {
        const char *p = musae_st_meta(&st, "prompts");
        CHECK(p && !strcmp(p, "[\"" P1 "\", \"" P2 "\"]"), "golden prompts are %s", p ? p : "(none)");
        musae_st_close(&st);
    }
    check_case(golden, "text_cfg3", "3");
    check_case(golden, "text_nocfg", "1");

    const char *fx = test_fixtures();
    char model[1024];
    snprintf(model, sizeof model, "%s/tiny-musicgen", fx);
    expect_failure("invalid UTF-8", "prompt 2: not valid UTF-8 (byte 0xff at offset 3)",
                   "generate --model %s --prompt ok --prompt \"$(printf 'bad\\377')\" --frames 2 --codes-out c.st",
                   model);
    expect_failure("--prompt without a value", "--prompt needs a value",
                   "generate --model %s --frames 2 --codes-out c.st --prompt", model);
    expect_failure("--prompt and --text-states", "give one",
                   "generate --model %s --frames 2 --codes-out c.st --prompt a --text-states x.st", model);
    /* a model folder without the tokenizer: links to everything but spiece.model */
    CHECK(sh("mkdir -p notok && for f in config.json generation_config.json model.safetensors; do "
             "ln -sf %s/$f notok/$f; done", model) == 0,
          "cannot build the folder without spiece.model");
    expect_failure("missing spiece.model", "notok/spiece.model: cannot load",
                   "generate --model %s --prompt 'calm piano' --frames 2 --codes-out c.st", "notok");
    /* without --prompt the same folder still generates unconditionally: the tokenizer is only read for text */
    CHECK(run("generate --model notok --frames 2 --greedy --codes-out c.st") == 0,
          "the unconditional run asked for spiece.model");
    /* an empty prompt is a valid one: [</s>] */
    CHECK(run("generate --model %s --prompt '' --frames 2 --greedy --codes-out c.st", model) == 0,
          "an empty prompt failed");

    scratch_close();
    TEST_END();
}
