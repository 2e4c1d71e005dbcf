/* musae decode — EnCodec codes (safetensors `codes` int64 [B, K, F]) → audio, 640 samples per frame at
 * 32 kHz, streamed to the file window by window. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/audio.h"
#include "host/io/path.h"
#include "kernels/ops.h"
#include "model/encodec.h"
#include "model/lm_files.h"

const char verb_decode_summary[] = "EnCodec codes (safetensors) -> audio (wav 16-bit / float, flac)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae decode --model DIR CODES -o OUT [--float | --flac] [--chunk-frames N] [--device D]\n\n"
            "Decodes codes int64 [B, K, F] (safetensors, tensor 'codes') with the model's EnCodec into\n"
            "640·F samples at 32 kHz, mono. With B > 1, item b goes to OUT with _b before the extension.\n\n"
            "  --model DIR         a MusicGen folder (its audio_encoder) or a standalone EnCodec folder\n"
            "  CODES               the codes file (musae encode, musae generate)\n"
            "  -o OUT              output file: WAV 16-bit PCM by default, FLAC when OUT ends in .flac\n"
            CLI_AUDIO_USAGE
            "  --chunk-frames N    frames per decoder window (default 200; memory grows with it, the audio\n"
            "                      does not depend on it)\n"
            CLI_DEVICE_ONLY_USAGE "\n"
            "16-bit formats cannot hold |x| > 1: such samples are clipped, and the count and peak are reported.\n");
}

int verb_decode(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = NULL, *in = NULL, *out = NULL;
    int as_float = 0, as_flac = 0, chunk = 0;
    cli_device_flags dflags = {0};
    enum { OPT_MODEL = CLI_OPT_FIRST, OPT_CHUNK };
    static const struct option opts[] = {
        {"model", required_argument, NULL, OPT_MODEL},  {"output", required_argument, NULL, 'o'},
        {"chunk-frames", required_argument, NULL, OPT_CHUNK}, CLI_AUDIO_OPTIONS, CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_MODEL: model = optarg; break;
        case 'o': out = optarg; break;
        case CLI_OPT_FLOAT: as_float = 1; break;
        case CLI_OPT_FLAC: as_flac = 1; break;
        case OPT_CHUNK: chunk = (int)cli_int("--chunk-frames", optarg, 1, 100000); break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) in = argv[optind++];
    if (optind < argc) cli_usage_fail(argv[0], "one codes file, got '%s' and '%s'", in, argv[optind]);
    if (!model || !in || !out) cli_usage_fail(argv[0], "--model, a codes file and -o are required");
    const musae_audio_format fmt = cli_audio_format(out, as_float, as_flac);

    char err[1024];
    musae_encodec_config cfg;
    if (musae_encodec_config_load(&cfg, model, err, sizeof err)) musae_fail("%s", err);
    if (encodec_config_supported(&cfg, err, sizeof err)) musae_fail("%s/config.json: %s", model, err);
    if (musae_path_same_file(in, out)) musae_fail("-o %s is the codes file being decoded: refusing to overwrite it", out);
    int64_t B, F;
    int64_t *codes = mg_read_codes(in, cfg.num_quantizers, cfg.codebook_size, &B, &F);

    encodec m;
    encodec_load(&m, model, cli_device_resolve(&dflags, 0).ops);
    if (encodec_decode_to_files(&m, codes, B, F, out, fmt, chunk, err, sizeof err)) musae_fail("%s", err);
    free(codes);
    encodec_free(&m);
    return 0;
}
