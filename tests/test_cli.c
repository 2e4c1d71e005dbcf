/* The musae command line as a user meets it (issue 14):
 *   (a) every verb parses with getopt_long: a bad option (unknown, without its value, a value given to a flag)
 *       is one line, "<reason>; see musae VERB --help", exit 1, with no usage text before it; so are a
 *       missing required option and a stray operand; options before the verb likewise;
 *   (b) "--name=value" works (synth_acts --layers=0,1, then train --layer=1 and info on the results);
 *   (c) log lines: info is "musae: ...", a warning "musae: warning: ..."; none starts "musae info:", and the
 *       device line says "no usable CUDA device" once;
 *   (d) generate writes float WAV (--float) and FLAC (--flac, or OUT ending in .flac) as decode does; --float
 *       with FLAC, and --float without -o, are refused before anything runs;
 *   (e) capture --captions keeps each clip's caption in /clips/caption; evaluate --model without --audio
 *       evaluates on the SAE's held-out clips (the same rows as evaluate --acts on the val split: equal frame
 *       count, FVU within f32 summation noise), conditioned on their stored captions, and with --audio takes
 *       the store's clip length. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>

#include "host/io/store.h"

#include "cli.h"

static const char *k_verbs[] = {"capture", "decode", "encode", "evaluate", "forward", "generate",
                                "info",    "synth_acts", "train"};

/* The last run's stderr is exactly `line` and a newline: one line, nothing before it. */
static void err_is(const char *line, const char *what) {
    char *e = slurp("err.txt");
    char want[1024];
    snprintf(want, sizeof want, "%s\n", line);
    CHECK(!strcmp(e, want), "%s: stderr is not the one line '%s':\n%s", what, line, e);
    free(e);
}

static void refused(const char *args, const char *line) {
    const int rc = run("%s", args);
    CHECK(rc == 1, "musae %s exited %d, not 1", args, rc);
    err_is(line, args);
}

static void bad_options(void) {
    char args[256], line[512];
    for (size_t i = 0; i < sizeof k_verbs / sizeof k_verbs[0]; i++) {
        const char *v = k_verbs[i];
        snprintf(args, sizeof args, "%s --bogus 1", v);
        snprintf(line, sizeof line, "musae: error: unknown option '--bogus'; see musae %s --help", v);
        refused(args, line);
        snprintf(args, sizeof args, "%s --bogus=1", v);
        refused(args, line);
        snprintf(args, sizeof args, "%s -Z", v);
        snprintf(line, sizeof line, "musae: error: unknown option '-Z'; see musae %s --help", v);
        refused(args, line);
        snprintf(args, sizeof args, "%s --help", v);
        CHECK(run("%s", args) == 0, "musae %s failed", args);
        char *out = slurp("out.txt");
        snprintf(line, sizeof line, "usage: musae %s", v);
        CHECK(strstr(out, line) != NULL, "musae %s --help does not start with its usage:\n%s", v, out);
        free(out);
    }
    /* an option without its value, in verbs with and without a short form */
    refused("decode x.safetensors -o", "musae: error: -o needs a value; see musae decode --help");
    refused("capture --model", "musae: error: --model needs a value; see musae capture --help");
    refused("train --acts a.h5 --k", "musae: error: --k needs a value; see musae train --help");
    refused("evaluate --sae S --acts", "musae: error: --acts needs a value; see musae evaluate --help");
    refused("evaluate --model M --sae", "musae: error: --sae needs a value; see musae evaluate --help");
    refused("forward --device", "musae: error: --device needs a value; see musae forward --help");
    /* a value given to a flag */
    refused("generate --greedy=yes", "musae: error: --greedy takes no value, got 'yes'; see musae generate --help");
    refused("train --resume=1", "musae: error: --resume takes no value, got '1'; see musae train --help");
    /* what is missing or left over */
    refused("decode --model M -o out.wav",
            "musae: error: --model, a codes file and -o are required; see musae decode --help");
    refused("encode a.wav b.wav", "musae: error: one input file, got 'a.wav' and 'b.wav'; see musae encode --help");
    refused("train --acts a.h5 stray", "musae: error: unexpected argument 'stray'; see musae train --help");
    refused("synth_acts --rows 10", "musae: error: -o is required; see musae synth_acts --help");
    refused("info", "musae: error: a PATH is required; see musae info --help");
    refused("info a b", "musae: error: one PATH, got 'a' and 'b'; see musae info --help");
    /* before the verb */
    refused("--bogus", "musae: error: unknown option '--bogus'; see musae --help");
    refused("nosuchverb", "musae: error: unknown verb 'nosuchverb'; see musae --help");
    CHECK(run("--version") == 0, "musae --version failed");
}

/* The integer at top-level `key` of the JSON file g_dir/rel; -1 when absent. */
static int json_int(const char *rel, const char *key) {
    char *text = slurp(rel);
    cJSON *j = cJSON_Parse(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    const int r = cJSON_IsNumber(v) ? v->valueint : -1;
    cJSON_Delete(j);
    free(text);
    return r;
}

static void equals_form(void) {
    CHECK(run("synth_acts --rows=600 --d=8 --concepts=16 --k-true=2 --clip-frames=50 --layers=0,1 --seed=3 -o s.h5")
              == 0, "synth_acts with --name=value failed");
    CHECK(run("info s.h5") == 0, "info on the store failed");
    char *out = slurp("out.txt");
    CHECK(strstr(out, "0, 1") || strstr(out, "[0,1]") || strstr(out, "0,1"), "the store does not hold layers 0 and 1:\n%s",
          out);
    free(out);
    CHECK(run("train --acts=s.h5 --layer=1 --k=2 --expansion=2 --tokens=1000 --batch=100 --warmup=2 --device=cpu "
              "--eval-tokens=0 -o A") == 0, "train with --name=value failed");
    CHECK(json_int("A/cfg.json", "k") == 2, "A/cfg.json does not have k 2");
    CHECK(json_int("A/musae.json", "layer") == 1, "A/musae.json is not for layer 1");
}

/* Lines of the last run's stderr that start with `prefix`. */
static int err_lines_starting(const char *prefix) {
    char *e = slurp("err.txt");
    int n = 0;
    for (char *p = e; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        if (!strncmp(p, prefix, strlen(prefix))) n++;
    free(e);
    return n;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void log_lines(void) {
    const char *model = at("model");
    char args[2048];
    snprintf(args, sizeof args, "ln -s '%s/tiny-musicgen' model", test_fixtures());
    CHECK(sh("%s", args) == 0, "cannot link the fixture model");
    CHECK(run("generate --model %s --frames 4 --greedy --codes-out c.safetensors", model) == 0, "generate failed");
    CHECK(err_lines_starting("musae info:") == 0, "a log line reads like `musae info`");
    CHECK(err_lines_starting("musae: device: ") == 1, "no single 'musae: device: ' info line");
    char *e = slurp("err.txt");
    CHECK(count(e, "no usable CUDA device") <= 1, "'no usable CUDA device' said more than once:\n%s", e);
    CHECK(strstr(e, "musae: device: cpu (auto: no usable CUDA device: ") != NULL ||
              strstr(e, "musae: device: cuda (auto: a GPU is usable") != NULL, "no device line:\n%s", e);
    free(e);
    /* a warning carries its level */
    CHECK(run("generate --model %s --frames 4 --greedy --guidance 3 --codes-out c.safetensors", model) == 0,
          "generate failed");
    CHECK(run("decode --model %s c.safetensors -o c.wav --device cpu", model) == 0, "decode failed");
    CHECK(err_lines_starting("musae: wrote ") == 1, "decode's info line is not 'musae: wrote ...'");
}

/* The WAV format tag (1 PCM, 3 IEEE float) and bits per sample of g_dir/rel; 0 when it is not a WAV. */
static int wav_format(const char *rel, int *bits) {
    unsigned char h[36] = {0};
    FILE *f = fopen(at(rel), "rb");
    if (!f) return 0;
    const size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n < sizeof h || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVEfmt ", 8)) return 0;
    *bits = h[34] | h[35] << 8;
    return h[20] | h[21] << 8;
}

/* Whether two WAV files hold the same samples: the bytes of their "data" chunks (the headers may differ: a float
 * WAV's PEAK chunk carries the time it was written). */
static int same_wav_data(const char *a, const char *b) {
    char *fa = slurp(a), *fb = slurp(b);
    FILE *f1 = fopen(at(a), "rb"), *f2 = fopen(at(b), "rb");
    long n1 = 0, n2 = 0;
    if (f1) fseek(f1, 0, SEEK_END), n1 = ftell(f1), fclose(f1);
    if (f2) fseek(f2, 0, SEEK_END), n2 = ftell(f2), fclose(f2);
    const char *d1 = n1 > 12 ? memmem(fa + 12, (size_t)n1 - 12, "data", 4) : NULL;
    const char *d2 = n2 > 12 ? memmem(fb + 12, (size_t)n2 - 12, "data", 4) : NULL;
    const int same = d1 && d2 && n1 - (d1 - fa) == n2 - (d2 - fb) && n1 - (d1 - fa) > 8 &&
                     !memcmp(d1, d2, (size_t)(n1 - (d1 - fa)));
    free(fa), free(fb);
    return same;
}

static int is_flac(const char *rel) {
    char m[4] = {0};
    FILE *f = fopen(at(rel), "rb");
    if (!f) return 0;
    const size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(m, "fLaC", 4);
}

static void generate_formats(void) {
    const char *model = at("model");
    int bits = 0;
    CHECK(run("generate --model %s --frames 20 --greedy -o g.wav --float", model) == 0, "generate --float failed");
    CHECK(wav_format("g.wav", &bits) == 3 && bits == 32, "generate --float did not write 32-bit float WAV (%d bits)",
          bits);
    CHECK(run("generate --model %s --frames 20 --greedy -o p.wav", model) == 0, "generate failed");
    CHECK(wav_format("p.wav", &bits) == 1 && bits == 16, "generate did not write 16-bit PCM WAV by default");
    CHECK(run("generate --model %s --frames 20 --greedy -o f.flac", model) == 0, "generate .flac failed");
    CHECK(is_flac("f.flac"), "generate -o f.flac did not write FLAC");
    CHECK(run("generate --model %s --frames 20 --greedy -o f2.out --flac", model) == 0, "generate --flac failed");
    CHECK(is_flac("f2.out"), "generate --flac did not write FLAC");
    /* the same bytes as decode writes from the same codes */
    CHECK(run("generate --model %s --frames 20 --greedy -o g2.wav --float --codes-out g2.safetensors", model) == 0,
          "generate --float --codes-out failed");
    CHECK(run("decode --model %s g2.safetensors -o d2.wav --float", model) == 0, "decode --float failed");
    CHECK(same_wav_data("g2.wav", "d2.wav"), "generate --float and decode --float wrote different samples");
    char args[2048];
    snprintf(args, sizeof args, "generate --model %s --frames 20 -o x.flac --float", model);
    refused(args, "musae: error: --float and FLAC output exclude each other (FLAC holds integers)");
    CHECK(!dir_has("x.flac"), "the refused run wrote x.flac");
    snprintf(args, sizeof args, "generate --model %s --frames 20 --codes-out x.safetensors --float", model);
    refused(args, "musae: error: --float and --flac apply to -o; see musae generate --help");
}

/* A number at top-level `key` of the JSON text; NAN when absent. */
static double json_num(const char *text, const char *key) {
    cJSON *j = cJSON_Parse(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    const double r = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return r;
}

static void evaluate_defaults(void) {
    const char *model = at("model");
    CHECK(sh("mkdir -p audio && sox -n -r 32000 -c 1 audio/a.wav synth 2 pluck A3 pluck C4 && "
             "sox -n -r 44100 -c 2 audio/b.wav synth 2 sawtooth C3 vol 0.3 && "
             "sox -n -r 32000 -c 1 audio/c.wav synth 2 sine 200-1600 vol 0.5 && "
             "sox -n -r 22050 -c 1 audio/d.wav synth 2 triangle 330 tremolo 6 80 vol 0.5") == 0, "sox failed");
    FILE *f = fopen(at("audio/list.txt"), "w");
    fprintf(f, "a.wav\tcalm plucked guitar\nb.wav\tbuzzy synth bass\nc.wav\ta rising sine\nd.wav\twobbly organ\n");
    fclose(f);
    CHECK(run("capture --model %s --audio audio/list.txt --captions --layers 1 --clip-seconds 0.5 --dtype f32 "
              "-o cap.h5", model) == 0, "capture --captions failed");
    char err[512];
    musae_store *st = musae_store_open(at("cap.h5"), err, sizeof err);
    CHECK(st != NULL, "%s", err);
    if (!st) return;
    const int64_t n_clips = musae_store_get_info(st)->n_clips;
    CHECK(n_clips == 16, "cap.h5 holds %lld clips, not 4 files x 4", (long long)n_clips);
    static const char *want[4][2] = {{"a.wav#", "calm plucked guitar"}, {"b.wav#", "buzzy synth bass"},
                                     {"c.wav#", "a rising sine"}, {"d.wav#", "wobbly organ"}};
    for (int64_t c = 0; c < n_clips; c++) {
        char *path = musae_store_clip_path(st, c), *cap = musae_store_clip_caption(st, c);
        int ok = 0;
        for (int i = 0; i < 4; i++) ok |= strstr(path, want[i][0]) && cap && !strcmp(cap, want[i][1]);
        CHECK(ok, "clip %lld (%s) has caption '%s'", (long long)c, path, cap ? cap : "(none)");
        free(path), free(cap);
    }
    musae_store_close(st);
    CHECK(sh("h5dump -d /clips/caption cap.h5 | grep -q 'wobbly organ'") == 0, "h5dump does not show /clips/caption");

    CHECK(run("train --acts cap.h5 --layer 1 --k 4 --expansion 2 --tokens 4000 --batch 100 --warmup 5 "
              "--val-fraction 0.3 --split-seed 1 --eval-tokens 0 --device cpu -o S") == 0, "train failed");
    CHECK(run("evaluate --sae S --acts cap.h5 --layer 1") == 0, "evaluate --acts failed");
    char *store_json = slurp("out.txt");
    CHECK(run("evaluate --sae S --model %s", model) == 0, "evaluate --model without --audio failed");
    char *spliced = slurp("out.txt");
    const double rows = json_num(store_json, "tokens"), frames = json_num(spliced, "frames");
    const double fvu_store = json_num(store_json, "fvu"), fvu_spliced = json_num(spliced, "fvu");
    CHECK(rows > 0 && frames == rows, "the held-out split has %g rows in the store, the spliced run saw %g frames",
          rows, frames);
    CHECK(fabs(fvu_spliced - fvu_store) <= 1e-4 * fvu_store, "FVU %.8g spliced on the held-out clips, %.8g on the "
          "store's held-out rows (the same rows, captions included)", fvu_spliced, fvu_store);
    CHECK(strstr(spliced, "\"acts\":\"cap.h5\",\"split\":\"val\"") != NULL, "the JSON does not name the store:\n%s",
          spliced);
    err_has("musae: clips of 0.5 s (as the SAE's training store was cut");
    free(store_json), free(spliced);
    /* other audio: cut as the store was, 0.5 s = 25 frames a clip */
    CHECK(run("evaluate --sae S --model %s --audio audio/list.txt --captions --max-clips 3", model) == 0,
          "evaluate --audio failed");
    char *o = slurp("out.txt");
    CHECK(json_num(o, "clips") == 3 && json_num(o, "frames") == 75, "3 clips of 0.5 s are not 75 frames:\n%s", o);
    free(o);
    char args[2048];
    snprintf(args, sizeof args, "evaluate --sae S --model %s --clip-seconds 1", model);
    CHECK(run("%s", args) == 1, "--clip-seconds without --audio was taken");
    err_has("musae: error: --clip-seconds, --min-seconds and --captions go with --audio: the held-out clips of "
            "cap.h5 are cut and conditioned as they were captured\n");
    CHECK(sh("cp -r S S2 && sed -i 's/\"acts\":[^,]*,/\"acts\":\"gone.h5\",/' S2/musae.json") == 0, "cannot edit S2");
    snprintf(args, sizeof args, "evaluate --sae S2 --model %s", model);
    CHECK(run("%s", args) == 1, "an SAE whose store is gone was evaluated");
    err_has("S2/musae.json names the store gone.h5: ");
}

int main(void) {
    scratch_open("cli");
    bad_options();
    equals_form();
    log_lines();
    generate_formats();
    evaluate_defaults();
    scratch_close();
    TEST_END();
}
