/* Activation capture and the spliced SAE evaluation, end to end through the musae binary on the tiny model:
 *   - rows equal `musae forward`'s hidden.<L>[clip, t + 1] bit for bit (f32 store; the f16 store holds their
 *     f16 rounding), for files at 32 kHz and resampled from 44.1 kHz stereo, and with --captions against
 *     forward --text-states; --batch 4 writes the same store as --batch 1;
 *   - a capture killed by SIGKILL three times and resumed ends equal to an uninterrupted one, every clip once;
 *   - an identity SAE (k = d) spliced in recovers 100% of the loss, a zero SAE 0%;
 *   - generation-time capture matches a teacher-forced forward of the generated codes;
 *   - bad input: unreadable files, too short files, folders without audio, a list naming a file twice,
 *     resuming with other layers / another model / other clip settings. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "eval/capture.h"
#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/ops.h"
#include "model/encodec.h"
#include "model/lm_files.h"
#include "model/text_cond.h"
#include "test.h"

#include "capture_test.h"
#include "cli.h"

static char g_model[1024];

/* "...#t=1,2" → start and end in seconds. */
static void clip_span(const char *name, double *a, double *b) {
    const char *t = strstr(name, "#t=");
    MUSAE_ASSERT(t, "clip name %s", name);
    *a = strtod(t + 3, NULL);
    *b = strtod(strchr(t, ',') + 1, NULL);
}

/* Two stores hold the same clips, rows and frames (compared as the floats they decode to). */
static int stores_equal(const char *a_rel, const char *b_rel, int verbose) {
    musae_store *a = open_store(a_rel), *b = open_store(b_rel);
    if (!a || !b) return 0;
    const musae_store_info *ia = musae_store_get_info(a), *ib = musae_store_get_info(b);
    int ok = ia->n_rows == ib->n_rows && ia->n_clips == ib->n_clips && ia->n_layers == ib->n_layers &&
             ia->d_model == ib->d_model && ia->dtype == ib->dtype && !strcmp(ia->model, ib->model);
    if (!ok && verbose)
        fprintf(stderr, "stores differ: rows %lld/%lld clips %lld/%lld\n", (long long)ia->n_rows,
                (long long)ib->n_rows, (long long)ia->n_clips, (long long)ib->n_clips);
    for (int64_t c = 0; ok && c < ia->n_clips; c++) {
        char *pa = musae_store_clip_path(a, c), *pb = musae_store_clip_path(b, c);
        ok = !strcmp(pa, pb) && ia->clip_frames[c] == ib->clip_frames[c] && ia->clip_offset[c] == ib->clip_offset[c];
        if (!ok && verbose) fprintf(stderr, "clip %lld: %s vs %s\n", (long long)c, pa, pb);
        free(pa), free(pb);
    }
    const int64_t N = ia->n_rows, H = ia->d_model;
    if (ok && N > 0) {
        int32_t *ca = musae_xmalloc(sizeof(int32_t) * (size_t)N), *ta = musae_xmalloc(sizeof(int32_t) * (size_t)N);
        int32_t *cb = musae_xmalloc(sizeof(int32_t) * (size_t)N), *tb = musae_xmalloc(sizeof(int32_t) * (size_t)N);
        musae_store_read_frames(a, 0, N, ca, ta);
        musae_store_read_frames(b, 0, N, cb, tb);
        ok = !memcmp(ca, cb, sizeof(int32_t) * (size_t)N) && !memcmp(ta, tb, sizeof(int32_t) * (size_t)N);
        free(ca), free(ta), free(cb), free(tb);
        float *ra = musae_xmalloc(sizeof(float) * (size_t)(N * H)), *rb = musae_xmalloc(sizeof(float) * (size_t)(N * H));
        for (int l = 0; ok && l < ia->n_layers; l++) {
            musae_store_read_rows(a, ia->layers[l], 0, N, ra);
            musae_store_read_rows(b, ib->layers[l], 0, N, rb);
            ok = ia->layers[l] == ib->layers[l] && !memcmp(ra, rb, sizeof(float) * (size_t)(N * H));
            if (!ok && verbose) fprintf(stderr, "layer %d rows differ (max %g)\n", ia->layers[l],
                                        test_max_abs_diff(ra, rb, (size_t)(N * H)));
        }
        free(ra), free(rb);
    }
    musae_store_close(a);
    musae_store_close(b);
    return ok;
}

/* ---- rows == musae forward -------------------------------------------------------------------------------- */

/* Encodes every clip of a store from its source file (whole file read and resampled at once, then sliced:
 * what the capture's streaming cut must reproduce), runs `musae forward` on all of them, and compares. */
static void check_against_forward(const char *store_rel, const char *text_rel, int f16) {
    musae_store *s = open_store(store_rel);
    CHECK(s != NULL, "open %s", store_rel);
    if (!s) return;
    const musae_store_info *in = musae_store_get_info(s);
    CHECK(in->complete == 1, "%s is complete", store_rel);
    CHECK(in->dtype == (f16 ? MUSAE_F16 : MUSAE_F32), "%s dtype", store_rel);
    encodec codec;
    encodec_load(&codec, g_model, musae_ops_cpu());
    const int64_t B = in->n_clips, K = codec.n_q, H = in->d_model;
    int64_t F = -1, *codes = NULL;
    for (int64_t c = 0; c < B; c++) {
        char *name = musae_store_clip_path(s, c);
        double a, b;
        clip_span(name, &a, &b);
        *strstr(name, "#t=") = 0;
        char err[1024];
        int64_t n;
        float *x = musae_audio_load(name[0] == '/' ? name : at(name), 32000, 0, 0, &n, err, sizeof err);
        MUSAE_ASSERT(x, "%s", err);
        const int64_t s0 = llround(a * 32000), s1 = llround(b * 32000);
        MUSAE_ASSERT(s1 <= n, "clip past the end");
        int64_t f;
        int64_t *cc = encodec_encode(&codec, x + s0, s1 - s0, &f);
        if (F < 0) F = f, codes = musae_xmalloc(sizeof(int64_t) * (size_t)(B * K * F));
        MUSAE_ASSERT(f == F, "clips of one length");
        memcpy(codes + c * K * F, cc, sizeof(int64_t) * (size_t)(K * F));
        CHECK(in->clip_frames[c] == F && in->clip_offset[c] == c * F, "clip %lld: %d frames at row %lld",
              (long long)c, in->clip_frames[c], (long long)in->clip_offset[c]);
        free(cc), free(x), free(name);
    }
    encodec_free(&codec);
    mg_write_codes(at("fw_codes.safetensors"), codes, B, K, F, NULL, 0);
    free(codes);
    char lay[64] = "";
    for (int l = 0; l < in->n_layers; l++)
        snprintf(lay + strlen(lay), sizeof lay - strlen(lay), "%s%d", l ? "," : "", in->layers[l]);
    char ts[1100] = "";
    if (text_rel) snprintf(ts, sizeof ts, "--text-states %s", text_rel);
    CHECK(run("forward --model %s --codes fw_codes.safetensors %s --layers %s --no-logits -o fw.safetensors", g_model,
              ts, lay) == 0, "musae forward");
    musae_st st;
    char err[1024];
    MUSAE_ASSERT(musae_st_open(&st, at("fw.safetensors"), err, sizeof err) == 0, "%s", err);
    const int64_t T = F + K;
    float *rows = musae_xmalloc(sizeof(float) * (size_t)(B * F * H));
    int32_t *clip = musae_xmalloc(sizeof(int32_t) * (size_t)(B * F)), *t = musae_xmalloc(sizeof(int32_t) * (size_t)(B * F));
    musae_store_read_frames(s, 0, B * F, clip, t);
    int frames_ok = 1;
    for (int64_t i = 0; i < B * F; i++) frames_ok &= clip[i] == i / F && t[i] == i % F;
    CHECK(frames_ok, "/frames/clip and /frames/t number the rows");
    for (int l = 0; l < in->n_layers; l++) {
        char nm[32];
        snprintf(nm, sizeof nm, "hidden.%d", in->layers[l]);
        float *hid = musae_st_load(&st, nm, MUSAE_F32, 3, (int64_t[]){B, T, H});
        musae_store_read_rows(s, in->layers[l], 0, B * F, rows);
        int64_t bad = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t f = 0; f < F; f++) /* frame f of clip b is position f + 1 */
                for (int64_t h = 0; h < H; h++) {
                    float want = hid[(b * T + f + 1) * H + h];
                    if (f16) want = musae_f16_to_f32(musae_f32_to_f16(want));
                    const float got = rows[(b * F + f) * H + h];
                    bad += memcmp(&want, &got, sizeof(float)) != 0;
                }
        CHECK(bad == 0, "%s layer %d: %lld of %lld values differ from forward's hidden.%d[b, t + 1]%s", store_rel,
              in->layers[l], (long long)bad, (long long)(B * F * H), in->layers[l], f16 ? " rounded to f16" : "");
        /* and the alignment is not vacuous: position t (BOS-shifted) would not match */
        int64_t same_shift = 0;
        for (int64_t h = 0; h < H; h++) same_shift += hid[(0 * T + 1) * H + h] == hid[(0 * T + 2) * H + h];
        CHECK(same_shift < H, "neighbouring positions differ");
        free(hid);
    }
    musae_st_close(&st);
    free(rows), free(clip), free(t);
    musae_store_close(s);
}

static void test_alignment(void) {
    sh("mkdir -p data/sub");
    write_audio("data/a.wav", 32000, 1, 2.5, 0);
    write_audio("data/sub/b.wav", 44100, 2, 3.3, 1); /* resampled and downmixed */
    write_audio("data/c.flac", 32000, 1, 1.2, 2);
    /* 1 s clips: a 2 (+0.5 s tail), b 3 (+0.3 s), c 1 (+0.2 s) */
    CHECK(run("capture --model %s --audio data --layers 1,0 --clip-seconds 1 --dtype f32 -o f32.h5", g_model) == 0,
          "capture f32");
    err_has("6 clip(s) of 1 s planned");
    err_has("3 file tail(s) shorter than 1 s dropped");
    musae_store *s = open_store("f32.h5");
    if (s) {
        const musae_store_info *in = musae_store_get_info(s);
        CHECK(in->n_clips == 6 && in->n_rows == 300, "6 clips, 300 rows (got %lld, %lld)", (long long)in->n_clips,
              (long long)in->n_rows);
        CHECK(in->n_layers == 2 && in->layers[0] == 0 && in->layers[1] == 1, "layers sorted 0,1");
        char *p0 = musae_store_clip_path(s, 0), *p5 = musae_store_clip_path(s, 5);
        CHECK(strstr(p0, "data/a.wav#t=0,1") != NULL, "first clip %s (sorted walk)", p0);
        CHECK(strstr(p5, "data/sub/b.wav#t=2,3") != NULL, "last clip %s", p5);
        free(p0), free(p5);
        char id[512];
        capture_model_id(g_model, id, sizeof id);
        CHECK(!strcmp(in->model, id) && !strncmp(id, "tiny-musicgen:", 14), "model attr %s", in->model);
        musae_store_close(s);
    }
    check_against_forward("f32.h5", NULL, 0);

    CHECK(run("capture --model %s --audio data --layers 0,1 --clip-seconds 1 -o f16.h5", g_model) == 0, "capture f16");
    check_against_forward("f16.h5", NULL, 1);

    CHECK(run("capture --model %s --audio data --layers 0,1 --clip-seconds 1 --dtype f32 --batch 4 -o b4.h5",
              g_model) == 0, "capture --batch 4");
    CHECK(stores_equal("f32.h5", "b4.h5", 1), "--batch 4 writes the same store as --batch 1");
    /* nor on the thread count: EnCodec and the decoder cut their work by shape (docs/CAPTURE.md, determinism) */
    CHECK(sh("OMP_NUM_THREADS=3 %s capture --model %s --audio data --layers 0,1 --clip-seconds 1 --dtype f32 "
             "--batch 4 -o t3.h5 >/dev/null 2>err.txt", bin(), g_model) == 0 &&
              stores_equal("f32.h5", "t3.h5", 1),
          "OMP_NUM_THREADS=3 writes the same store as the default team");

    /* a tail kept as a clip of its own with --min-seconds */
    CHECK(run("capture --model %s --audio data/a.wav --layers 1 --clip-seconds 1 --min-seconds 0.4 --dtype f32 "
              "-o tail.h5", g_model) == 0, "capture --min-seconds");
    s = open_store("tail.h5");
    if (s) {
        const musae_store_info *in = musae_store_get_info(s);
        char *p = musae_store_clip_path(s, 2);
        CHECK(in->n_clips == 3 && in->clip_frames[2] == 25 && strstr(p, "a.wav#t=2,2.5"), "tail clip %s, %d frames",
              p, in->n_clips == 3 ? in->clip_frames[2] : -1);
        free(p);
        musae_store_close(s);
    }
}

/* ---- captions ---------------------------------------------------------------------------------------------- */

static void test_captions(void) {
    FILE *f = fopen(at("list.txt"), "w");
    fprintf(f, "# path<TAB>caption\ndata/a.wav\tcalm piano with soft strings\n\ndata/c.flac\tfast drums\n");
    fclose(f);
    CHECK(run("capture --model %s --audio list.txt --captions --layers 1 --clip-seconds 1 --dtype f32 -o cap.h5",
              g_model) == 0, "capture --captions");
    /* the text states of clip 0's caption, as forward --text-states takes them */
    musae_model_config cfg;
    char err[1024];
    MUSAE_ASSERT(musae_config_load(&cfg, g_model, err, sizeof err) == 0, "%s", err);
    musae_st st;
    MUSAE_ASSERT(musae_st_open(&st, g_model, err, sizeof err) == 0, "%s", err);
    /* T5 over the caption alone (as the capture runs it), once per clip row */
    const char *prompt = "calm piano with soft strings";
    mg_text_states ts;
    musae_text_cond_run(g_model, &st, &cfg, musae_ops_cpu(), 1, &prompt, 0, &ts);
    musae_st_close(&st);
    int64_t *mask = musae_xmalloc(sizeof(int64_t) * (size_t)(2 * ts.S));
    float *states = musae_xmalloc(sizeof(float) * (size_t)(2 * ts.S * ts.H));
    for (int b = 0; b < 2; b++) {
        for (int64_t i = 0; i < ts.S; i++) mask[b * ts.S + i] = (int64_t)ts.mask[i];
        memcpy(states + b * ts.S * ts.H, ts.states, sizeof(float) * (size_t)(ts.S * ts.H));
    }
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "text_states", MUSAE_F32, 3, (int64_t[]){2, ts.S, ts.H}, states);
    musae_st_writer_add(w, "text_mask", MUSAE_I64, 2, (int64_t[]){2, ts.S}, mask);
    MUSAE_ASSERT(musae_st_writer_save(w, at("text.safetensors"), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    free(mask);
    free(states);
    mg_text_states_free(&ts);
    /* clips 0 and 1 are a.wav's, both with that caption */
    CHECK(run("capture --model %s --audio data/a.wav --layers 1 --clip-seconds 1 --dtype f32 --max-clips 2 -o "
              "uncond_a.h5", g_model) == 0, "unconditional capture of a.wav");
    musae_store *s = open_store("cap.h5"), *u = open_store("uncond_a.h5");
    if (s && u) {
        CHECK(musae_store_get_info(s)->n_clips == 3, "3 clips from the list");
        float *r1 = musae_xmalloc(sizeof(float) * 100 * 32), *r2 = musae_xmalloc(sizeof(float) * 100 * 32);
        musae_store_read_rows(s, 1, 0, 100, r1);
        musae_store_read_rows(u, 1, 0, 100, r2);
        CHECK(test_max_abs_diff(r1, r2, 100 * 32) > 1e-3, "the caption changes the rows");
        free(r1), free(r2);
    }
    if (s) musae_store_close(s);
    if (u) musae_store_close(u);
    /* --batch with captions: one clip per forward, so the same store */
    CHECK(run("capture --model %s --audio list.txt --captions --layers 1 --clip-seconds 1 --dtype f32 --batch 3 "
              "-o cap_b3.h5", g_model) == 0, "capture --captions --batch 3");
    CHECK(stores_equal("cap.h5", "cap_b3.h5", 1), "--captions --batch 3 writes the same store as --batch 1");
    /* a store of a.wav's two clips with their caption, checked against forward --text-states */
    f = fopen(at("list_a.txt"), "w");
    fprintf(f, "data/a.wav\tcalm piano with soft strings\n");
    fclose(f);
    CHECK(run("capture --model %s --audio list_a.txt --captions --layers 1 --clip-seconds 1 --dtype f32 -o "
              "cap_a.h5", g_model) == 0, "capture --captions, one file");
    check_against_forward("cap_a.h5", "text.safetensors", 0);
    CHECK(run("capture --model %s --audio data --captions --layers 1 --clip-seconds 1 -o x.h5", g_model) == 1,
          "--captions on a folder is refused");
    err_has("--captions needs a list file");
}

/* ---- kill and resume --------------------------------------------------------------------------------------- */

/* Starts a capture in the background, waits until it has committed at least `after` clips (its progress log,
 * one line per clip), then SIGKILLs it. Returns its wait status. */
static int capture_and_kill(const char *args, int after) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && MUSAE_PROGRESS_INTERVAL=0 exec %s %s >/dev/null 2>kill_err.txt", g_dir, bin(),
             args);
    sh("rm -f kill_err.txt");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 40000; i++) {
        char *e = slurp("kill_err.txt");
        int n = 0;
        for (const char *p = e; (p = strstr(p, " clips | ")); p++) n++;
        free(e);
        if (n >= after) break;
        usleep(500);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    return st;
}

static void test_kill_resume(void) {
    sh("mkdir -p many");
    for (int i = 0; i < 8; i++) {
        char p[64];
        snprintf(p, sizeof p, "many/f%02d.wav", i);
        write_audio(p, 32000, 1, 3.0, 10 + i);
    }
    sh("echo not audio > many/zz_broken.wav");
    const char *args = "capture --model %s --audio many --layers 0,1 --clip-seconds 0.5 -o %s";
    char a[2048];
    snprintf(a, sizeof a, args, g_model, "ref.h5");
    CHECK(run("%s", a) == 0, "uninterrupted capture");
    err_has("zz_broken.wav: cannot read as audio");
    musae_store *ref = open_store("ref.h5");
    const int64_t n_ref = ref ? musae_store_get_info(ref)->n_clips : 0;
    CHECK(n_ref == 48, "48 clips (got %lld)", (long long)n_ref);

    snprintf(a, sizeof a, args, g_model, "killed.h5");
    const int after[3] = {2, 6, 12};
    int64_t last = 0;
    for (int round = 0; round < 3; round++) {
        int st = capture_and_kill(a, after[round] - (int)last);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: killed mid-run", round);
        musae_store *k = open_store("killed.h5");
        CHECK(k != NULL, "round %d: the killed store opens", round);
        if (!k) break;
        const musae_store_info *in = musae_store_get_info(k);
        CHECK(in->n_clips >= after[round] && in->n_clips < n_ref && !in->complete,
              "round %d: %lld clips committed, incomplete", round, (long long)in->n_clips);
        int prefix = 1;
        for (int64_t c = 0; ref && c < in->n_clips; c++) {
            char *x = musae_store_clip_path(k, c), *y = musae_store_clip_path(ref, c);
            prefix &= !strcmp(x, y);
            free(x), free(y);
        }
        CHECK(prefix, "round %d: the committed clips are a prefix of the plan", round);
        last = in->n_clips;
        musae_store_close(k);
        if (round == 0) {
            CHECK(sh("h5dump -H killed.h5 >/dev/null") == 0,
                  "h5dump reads the killed store");
        }
    }
    CHECK(run("%s", a) == 0, "resume");
    err_has("already in killed.h5");
    CHECK(stores_equal("ref.h5", "killed.h5", 1), "killed x3 + resumed store equals the uninterrupted one");
    musae_store *k = open_store("killed.h5");
    if (k) {
        const musae_store_info *in = musae_store_get_info(k);
        int unique = 1;
        for (int64_t c = 0; c < in->n_clips; c++)
            for (int64_t d = c + 1; d < in->n_clips; d++) {
                char *x = musae_store_clip_path(k, c), *y = musae_store_clip_path(k, d);
                unique &= strcmp(x, y) != 0;
                free(x), free(y);
            }
        CHECK(unique && in->complete == 1, "every clip exactly once, complete");
        musae_store_close(k);
    }
    CHECK(run("%s", a) == 0, "a third run has nothing to do");
    err_has("48 already in killed.h5, 0 to capture");
    CHECK(stores_equal("ref.h5", "killed.h5", 1), "and changes nothing");
    if (ref) musae_store_close(ref);
    /* --max-clips stops early; the store stays incomplete and continues */
    snprintf(a, sizeof a, args, g_model, "part.h5");
    CHECK(run("%s --max-clips 5", a) == 0 && run("%s", a) == 0 && stores_equal("ref.h5", "part.h5", 1),
          "--max-clips then continue");
}

/* ---- spliced evaluation ------------------------------------------------------------------------------------ */

/* An SAE folder in sparsify's layout (no musae.json): M = 2d latents, encoder [I; -I], decoder `dec_scale`·[I; -I],
 * k = d. With dec_scale 1 it reconstructs every row exactly (each coordinate gets one nonzero term). */
static void write_sae(const char *rel, int d, float dec_scale) {
    const int M = 2 * d;
    float *We = calloc((size_t)(M * d), sizeof(float)), *Wd = calloc((size_t)(M * d), sizeof(float));
    float *be = calloc((size_t)M, sizeof(float)), *bd = calloc((size_t)d, sizeof(float));
    for (int i = 0; i < d; i++) {
        We[i * d + i] = 1, We[(d + i) * d + i] = -1;
        Wd[i * d + i] = dec_scale, Wd[(d + i) * d + i] = -dec_scale;
    }
    sh("mkdir -p %s", rel);
    char p[1200], err[1024];
    snprintf(p, sizeof p, "%s/sae.safetensors", rel);
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "encoder.weight", MUSAE_F32, 2, (int64_t[]){M, d}, We);
    musae_st_writer_add(w, "encoder.bias", MUSAE_F32, 1, (int64_t[]){M}, be);
    musae_st_writer_add(w, "W_dec", MUSAE_F32, 2, (int64_t[]){M, d}, Wd);
    musae_st_writer_add(w, "b_dec", MUSAE_F32, 1, (int64_t[]){d}, bd);
    MUSAE_ASSERT(musae_st_writer_save(w, at(p), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    snprintf(p, sizeof p, "%s/cfg.json", rel);
    FILE *f = fopen(at(p), "w");
    fprintf(f, "{\"activation\": \"topk\", \"d_in\": %d, \"num_latents\": %d, \"k\": %d}\n", d, M, d);
    fclose(f);
    free(We), free(Wd), free(be), free(bd);
}

static double json_num(const char *s, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(s, k);
    if (!p) return NAN;
    p += strlen(k);
    return !strncmp(p, "null", 4) ? NAN : strtod(p, NULL);
}

static void test_spliced(void) {
    write_sae("sae_id", 32, 1.0f);
    write_sae("sae_zero", 32, 0.0f);
    /* greedy codes: the random model predicts them well, so zeroing a layer hurts (CE_zero > CE_clean) */
    CHECK(run("generate --model %s --frames 40 --batch 2 --greedy --codes-out g.safetensors", g_model) == 0, "generate");
    for (int layer = 0; layer < 2; layer++) {
        CHECK(run("evaluate --sae sae_id --model %s --codes g.safetensors --layer %d", g_model, layer) == 0,
              "evaluate identity SAE, layer %d", layer);
        char *o = slurp("out.txt");
        const double lr = json_num(o, "loss_recovered"), ce0 = json_num(o, "ce_clean"), cez = json_num(o, "ce_zero");
        CHECK(cez > ce0 + 0.5, "layer %d: zero-ablation hurts (CE %g vs clean %g)", layer, cez, ce0);
        CHECK(fabs(lr - 1.0) < 1e-4, "layer %d: identity SAE recovers 100%% (got %.8g)", layer, lr);
        err_has("loss recovered: 1.0000;");
        CHECK(fabs(json_num(o, "ce_increase")) < 1e-5 && json_num(o, "kl_sae") < 1e-6, "layer %d: no CE increase, no KL",
              layer);
        CHECK(json_num(o, "fvu") < 1e-12 && json_num(o, "l0") <= 32 && json_num(o, "l0") > 25, "layer %d: FVU 0, L0 <= d",
              layer);
        CHECK(json_num(o, "predictions") == 2 * 4 * 40 && json_num(o, "clips") == 2, "K x F predictions per clip");
        free(o);
        CHECK(run("evaluate --sae sae_zero --model %s --codes g.safetensors --layer %d", g_model, layer) == 0,
              "evaluate zero SAE");
        o = slurp("out.txt");
        CHECK(fabs(json_num(o, "loss_recovered")) < 1e-6 && fabs(json_num(o, "ce_sae") - json_num(o, "ce_zero")) < 1e-6,
              "layer %d: a zero reconstruction recovers 0%% (got %g)", layer, json_num(o, "loss_recovered"));
        CHECK(fabs(json_num(o, "fvu") - 1.0) < 0.2, "zero reconstruction FVU ~ 1 (%g)", json_num(o, "fvu"));
        free(o);
    }
    /* from audio, as a capture cuts it */
    CHECK(run("evaluate --sae sae_id --model %s --audio data --clip-seconds 1 --layer 1", g_model) == 0,
          "evaluate on audio");
    char *o = slurp("out.txt");
    /* the random model predicts these codes worse than chance and zeroing "helps": loss recovered is undefined */
    const double lr = json_num(o, "loss_recovered");
    CHECK(json_num(o, "clips") == 6 && json_num(o, "fvu") < 1e-12 && fabs(json_num(o, "ce_increase")) < 1e-5 &&
          (json_num(o, "ce_zero") > json_num(o, "ce_clean") ? fabs(lr - 1.0) < 1e-4 : isnan(lr)),
          "audio clips: identity changes nothing: %s", o);
    /* the log says in words what the JSON writes as null */
    if (isnan(lr)) {
        CHECK(strstr(o, "\"loss_recovered\":null") != NULL, "undefined loss recovered is null in the JSON: %s", o);
        err_has("loss recovered: undefined (zero-ablation does not raise the CE)");
    } else {
        err_has("loss recovered: 1.0000");
    }
    free(o);
    CHECK(run("evaluate --sae sae_id --model %s --codes g.safetensors", g_model) == 1, "a sparsify SAE needs --layer");
    err_has("give --layer");
}

/* ---- generation-time capture ------------------------------------------------------------------------------- */

static void test_generate_capture(void) {
    CHECK(run("generate --model %s --frames 30 --batch 2 --greedy --codes-out gen.safetensors --capture-layers 1,0 "
              "--acts gen.h5", g_model) == 0, "generate --capture-layers");
    CHECK(run("forward --model %s --codes gen.safetensors --layers 0,1 --no-logits -o gen_fw.safetensors", g_model) == 0,
          "forward of the generated codes");
    musae_store *s = open_store("gen.h5");
    musae_st st;
    char err[1024];
    MUSAE_ASSERT(musae_st_open(&st, at("gen_fw.safetensors"), err, sizeof err) == 0, "%s", err);
    if (s) {
        const musae_store_info *in = musae_store_get_info(s);
        CHECK(in->n_clips == 2 && in->n_rows == 60 && in->layers[0] == 0 && in->layers[1] == 1, "2 clips of 30 rows");
        char *p = musae_store_clip_path(s, 1);
        CHECK(!strcmp(p, "gen.safetensors#item=1"), "clip name %s", p);
        free(p);
        const int64_t T = 34, H = 32;
        float *rows = musae_xmalloc(sizeof(float) * 60 * 32);
        for (int l = 0; l < 2; l++) {
            char nm[32];
            snprintf(nm, sizeof nm, "hidden.%d", l);
            float *hid = musae_st_load(&st, nm, MUSAE_F32, 3, (int64_t[]){2, T, H});
            musae_store_read_rows(s, l, 0, 60, rows);
            double md = 0;
            for (int64_t b = 0; b < 2; b++)
                for (int64_t f = 0; f < 30; f++)
                    for (int64_t h = 0; h < H; h++) {
                        const double d = fabs(rows[(b * 30 + f) * H + h] - hid[(b * T + f + 1) * H + h]);
                        md = d > md ? d : md;
                    }
            /* KV-cached steps vs one teacher-forced pass, then f16 */
            CHECK(md < 2e-2, "layer %d: generation rows match the teacher-forced forward (max diff %g)", l, md);
            free(hid);
        }
        free(rows);
        musae_store_close(s);
    }
    musae_st_close(&st);
    CHECK(run("generate --model %s --frames 30 --codes-out g3.safetensors --acts g3.h5", g_model) == 1,
          "--acts without --capture-layers");
    err_has("--capture-layers and --acts go together");
    CHECK(run("generate --model %s --frames 30 --codes-out g3.safetensors --capture-layers 5 --acts g3.h5", g_model) == 1,
          "a layer the model lacks");
    err_has("layer 5 does not exist");
}

/* ---- bad input --------------------------------------------------------------------------------------------- */

static void test_bad_input(void) {
    sh("mkdir -p empty/deeper && echo x > empty/notes.txt");
    CHECK(run("capture --model %s --audio empty --layers 1 -o e.h5", g_model) == 1, "a folder without audio");
    err_has("no audio files in 2 folder(s)");
    CHECK(run("capture --model %s --audio nowhere --layers 1 -o e.h5", g_model) == 1, "a missing source");
    err_has("nowhere: No such file");
    FILE *f = fopen(at("dup.txt"), "w");
    fprintf(f, "data/a.wav\n%s/data/a.wav\ndata/a.wav\tagain\n", ".");
    fclose(f);
    CHECK(run("capture --model %s --audio dup.txt --layers 1 -o e.h5", g_model) == 1, "a list naming a file twice");
    err_has("dup.txt:2: './data/a.wav' is listed again (first on line 1)");
    /* unreadable and too short files are skipped with the reason; the rest is captured */
    sh("mkdir -p mixed && cp data/a.wav mixed/ && echo garbage > mixed/bad.wav && : > mixed/empty.flac");
    write_audio("mixed/short.wav", 32000, 1, 0.3, 5);
    CHECK(run("capture --model %s --audio mixed --layers 1 --clip-seconds 1 -o mixed.h5", g_model) == 0,
          "a dataset with bad files");
    err_has("3 file(s) skipped");
    err_has("mixed/bad.wav: cannot read as audio");
    err_has("mixed/short.wav: too short: 0.30 s");
    err_has("mixed/empty.flac");
    sh("mkdir -p allbad && cp mixed/bad.wav mixed/short.wav allbad/");
    CHECK(run("capture --model %s --audio allbad --layers 1 --clip-seconds 1 -o allbad.h5", g_model) == 1,
          "a dataset where every file is skipped fails");
    err_has("nothing to capture, all 2 file(s) were skipped");
    err_has("allbad/short.wav: too short");
    CHECK(access(at("allbad.h5"), F_OK) != 0, "and leaves no empty store");
    /* a store written with other settings is refused, with the reason */
    CHECK(run("capture --model %s --audio mixed --layers 0,1 --clip-seconds 1 -o mixed.h5", g_model) == 1,
          "other layers");
    err_has("holds layers 1; this run asks for 0,1");
    CHECK(run("capture --model %s --audio mixed --layers 1 --clip-seconds 2 -o mixed.h5", g_model) == 1,
          "other clip length");
    err_has("was cut into 1 s clips; this run asks for 2 s");
    CHECK(run("capture --model %s --audio mixed --layers 1 --clip-seconds 1 --dtype f32 -o mixed.h5", g_model) == 1,
          "other dtype");
    err_has("holds f16 rows");
    sh("mkdir -p other && cp -r %s other/ && echo ' ' >> other/tiny-musicgen/config.json", g_model);
    CHECK(run("capture --model other/tiny-musicgen --audio mixed --layers 1 --clip-seconds 1 -o mixed.h5") == 1,
          "another model");
    err_has("holds activations of model 'tiny-musicgen:");
    err_has("refusing to mix models");
    CHECK(run("capture --model %s --audio mixed --layers 5 -o z.h5", g_model) == 1, "a layer out of range");
    err_has("layer 5 does not exist");
    CHECK(run("capture --model %s --audio mixed --layers 1 --clip-seconds 0.03 -o z.h5", g_model) == 1,
          "a clip length that is not whole frames");
    err_has("not a whole number of frames");
    CHECK(run("capture --model %s --audio mixed --layers 1 --clip-seconds 100 -o z.h5", g_model) == 1,
          "clips longer than the model's positions");
    err_has("decoder positions");
    CHECK(run("capture --model %s --audio mixed --layers 1,1 -o z.h5", g_model) == 1, "a layer twice");
    err_has("--layers: layer 1 given twice");
    CHECK(run("capture --audio mixed --layers 1 -o z.h5") == 1, "--model missing");
    err_has("--model, --audio, --layers and -o are required");
}

/* The store records the CPU arithmetic of its rows (kernels/cpu/isa.h: at the amx level the LM's products run in
 * bf16x3, other bits than the FMA kernels'), and a run with the other one is refused, saying how to match. */
static char *store_arith(const char *path, char *out, size_t cap) {
    char err[600];
    musae_store *s = musae_store_open(at(path), err, sizeof err);
    CHECK(s != NULL, "%s", err);
    snprintf(out, cap, "%s", s ? musae_store_get_info(s)->cpu_arith : "?");
    if (s) musae_store_close(s);
    return out;
}

static void test_arith(void) {
    const char *cap = "%s capture --model %s --audio data --layers 1 --clip-seconds 1 -o %s >/dev/null 2>err.txt";
    const char *cap_bf16 = "%s capture --model %s --audio data --layers 1 --clip-seconds 1 --device cpu --precision bf16 "
                           "-o %s >/dev/null 2>err.txt";
    const char *cap_fma = "MUSAE_ISA=avx512 %s capture --model %s --audio data --layers 1 --clip-seconds 1 -o %s "
                          ">/dev/null 2>err.txt";
    char got[32];
    CHECK(sh(cap, bin(), g_model, "ar.h5") == 0, "capture at the level in use");
    CHECK(!strcmp(store_arith("ar.h5", got, sizeof got), cpu_gemm_arith()), "cpu_arith '%s', want '%s'", got,
          cpu_gemm_arith());
    /* bf16 weights are another arithmetic: recorded, and not mixed with fp32 rows either way */
    CHECK(sh(cap_bf16, bin(), g_model, "arb.h5") == 0, "capture with bf16 weights");
    CHECK(!strcmp(store_arith("arb.h5", got, sizeof got), "cpu-bf16w"), "cpu_arith with bf16 weights '%s'", got);
    CHECK(sh(cap, bin(), g_model, "arb.h5") == 1, "an fp32 run continuing a bf16-weight store is refused");
    err_has("arb.h5 holds rows computed with cpu-bf16w; this run computes ");
    err_has("continue it with the --device and --precision it was captured with");
    CHECK(sh(cap_bf16, bin(), g_model, "ar.h5") == 1, "a bf16-weight run continuing an fp32 store is refused");
    err_has("this run computes cpu-bf16w: refusing to mix them in one store");
    /* a store from before the attribute (removed here) is continued, with a warning that it cannot be checked */
    CHECK(sh("cp ar.h5 old.h5") == 0, "a copy of ar.h5");
    {
        hid_t f = H5Fopen(at("old.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
        CHECK(f >= 0 && H5Adelete(f, "cpu_arith") >= 0, "removing old.h5's cpu_arith");
        if (f >= 0) H5Fclose(f);
    }
    CHECK(!strcmp(store_arith("old.h5", got, sizeof got), ""), "old.h5 still has cpu_arith '%s'", got);
    CHECK(sh(cap, bin(), g_model, "old.h5") == 0, "a store without cpu_arith is continued");
    err_has("old.h5 does not record the arithmetic of its rows");
    if (musae_isa_get() < MUSAE_ISA_AMX) {
        printf("arith part: the level in use is %s, so only %s runs here (the refusal needs AMX)\n",
               musae_isa_name(musae_isa_get()), cpu_gemm_arith());
        return;
    }
    CHECK(sh(cap_fma, bin(), g_model, "ar.h5") == 1, "an fma-fp32 run continuing an amx-bf16x3 store is refused");
    err_has("ar.h5 holds rows computed with amx-bf16x3; this run computes fma-fp32: refusing to mix them");
    err_has("continue it on a CPU with AMX");
    CHECK(sh(cap_fma, bin(), g_model, "ar2.h5") == 0, "capture at avx512");
    CHECK(!strcmp(store_arith("ar2.h5", got, sizeof got), "fma-fp32"), "cpu_arith at avx512 '%s'", got);
    CHECK(sh(cap, bin(), g_model, "ar2.h5") == 1, "an amx-bf16x3 run continuing an fma-fp32 store is refused");
    err_has("ar2.h5 holds rows computed with fma-fp32; this run computes amx-bf16x3");
    err_has("run with MUSAE_ISA=avx512");
    CHECK(sh(cap_fma, bin(), g_model, "ar2.h5") == 0, "the same arithmetic continues it");
}

int main(void) {
    scratch_open("capture");
    snprintf(g_model, sizeof g_model, "%s/tiny-musicgen", test_fixtures());
    test_alignment();
    test_captions();
    test_kill_resume();
    test_spliced();
    test_generate_capture();
    test_arith();
    test_bad_input();
    scratch_close();
    TEST_END();
}
