/* musae encode — audio file → EnCodec codes (the codes contract: safetensors `codes` int64 [1, K, F]).
 * The file streams through the reader (downmix, libsoxr HQ to the codec's rate) into the windowed encoder,
 * so memory stays bounded whatever the length. */
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/io/audio.h"
#include "host/io/path.h"
#include "kernels/ops.h"
#include "model/encodec.h"
#include "model/lm_files.h"

const char verb_encode_summary[] = "audio file (wav, flac, ogg, mp3) -> EnCodec codes (safetensors)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae encode --model DIR IN -o CODES [--start S] [--duration D] [--chunk-frames N] [--device D]\n\n"
            "Encodes an audio file with the model's EnCodec into codes int64 [1, K, F] (safetensors, tensor\n"
            "'codes'), F = ceil(samples / 640) at 32 kHz: 50 frames per second.\n\n"
            "  --model DIR         a MusicGen folder (its audio_encoder) or a standalone EnCodec folder\n"
            "  IN                  WAV, FLAC, OGG/Vorbis or MP3 (anything libsndfile reads); channels are\n"
            "                      averaged to mono and other rates resampled with libsoxr (HQ)\n"
            "  -o CODES            output .safetensors\n"
            "  --start S           skip the first S seconds of the file\n"
            "  --duration D        encode at most D seconds\n"
            "  --chunk-frames N    frames per encoder window (default 200; memory grows with it, the codes\n"
            "                      do not depend on it)\n"
            CLI_DEVICE_ONLY_USAGE);
}

int verb_encode(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = NULL, *in = NULL, *out = NULL;
    double start = 0, duration = 0;
    int chunk = 0;
    cli_device_flags dflags = {0};
    enum { OPT_MODEL = CLI_OPT_FIRST, OPT_START, OPT_DURATION, OPT_CHUNK };
    static const struct option opts[] = {
        {"model", required_argument, NULL, OPT_MODEL},        {"output", required_argument, NULL, 'o'},
        {"start", required_argument, NULL, OPT_START},        {"duration", required_argument, NULL, OPT_DURATION},
        {"chunk-frames", required_argument, NULL, OPT_CHUNK}, CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_MODEL: model = optarg; break;
        case 'o': out = optarg; break;
        case OPT_START: start = cli_double("--start", optarg, 0, 1e7); break;
        case OPT_DURATION: duration = cli_double("--duration", optarg, 1e-3, 1e7); break;
        case OPT_CHUNK: chunk = (int)cli_int("--chunk-frames", optarg, 1, 100000); break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) in = argv[optind++];
    if (optind < argc) cli_usage_fail(argv[0], "one input file, got '%s' and '%s'", in, argv[optind]);
    if (!model || !in || !out) cli_usage_fail(argv[0], "--model, an input file and -o are required");
    if (musae_path_same_file(in, out)) musae_fail("-o %s is the input file: refusing to overwrite it", out);
    char err[1024];
    musae_encodec_config cfg;
    if (musae_encodec_config_load(&cfg, model, err, sizeof err)) musae_fail("%s", err);
    if (encodec_config_supported(&cfg, err, sizeof err)) musae_fail("%s/config.json: %s", model, err);
    musae_audio_reader *r = musae_audio_open(in, cfg.sampling_rate, start, duration, err, sizeof err);
    if (!r) musae_fail("%s", err);
    const musae_audio_info info = *musae_audio_reader_info(r); /* outlives the reader */
    LOG_INFO("%s: %s, %d Hz, %d channel(s), %.2f s%s; encoding %.2f s from %.2f s", in, info.format,
             info.sample_rate, info.channels, (double)info.frames / info.sample_rate,
             info.sample_rate != cfg.sampling_rate ? " (resampled)" : "",
             (double)info.span_frames / info.sample_rate, (double)info.start_frame / info.sample_rate);

    encodec m;
    encodec_load(&m, model, cli_device_resolve(&dflags, 0).ops);
    double t0 = musae_now();
    encodec_encoder *e = encodec_encoder_new(&m, chunk, 0);
    const int64_t total = (info.out_samples + m.hop - 1) / m.hop, block = 32768;
    float *buf = musae_xmalloc((size_t)block * sizeof(float));
    musae_progress p;
    musae_progress_init(&p, "encode", "frames", total);
    int64_t n_samples = 0, shown = 0;
    for (;;) {
        int64_t n = musae_audio_read(r, buf, block, err, sizeof err);
        if (n < 0) musae_fail("%s", err);
        if (n == 0) break;
        encodec_encoder_push(e, buf, n);
        n_samples += n;
        musae_progress_add(&p, encodec_encoder_frames(e) - shown, NULL);
        shown = encodec_encoder_frames(e);
    }
    musae_audio_close(r);
    free(buf);
    if (n_samples == 0) musae_fail("%s: no samples in the selected span", in);
    encodec_encoder_finish(e);
    const int64_t F = encodec_encoder_frames(e);
    musae_progress_add(&p, F - shown, NULL);
    musae_progress_finish(&p, NULL);
    double secs = musae_now() - t0, audio_s = (double)n_samples / cfg.sampling_rate;

    char rate[32], samples[32], start_s[32];
    snprintf(rate, sizeof rate, "%d", cfg.sampling_rate);
    snprintf(samples, sizeof samples, "%lld", (long long)n_samples);
    snprintf(start_s, sizeof start_s, "%.6f", (double)info.start_frame / info.sample_rate);
    const char *meta[] = {"source", in, "sample_rate", rate, "samples", samples, "start_s", start_s,
                          "musae_version", MUSAE_VERSION};
    mg_write_codes(out, encodec_encoder_codes(e), 1, m.n_q, F, meta, (int)(sizeof meta / sizeof meta[0] / 2));
    LOG_INFO("wrote %s: codes [1, %d, %lld] (%.2f s of audio) in %.2f s, %.1fx real time", out, m.n_q, (long long)F,
             audio_s, secs, audio_s / secs);
    encodec_encoder_free(e);
    encodec_free(&m);
    return 0;
}
