/* musae describe — music descriptors of every clip and 1 s window (eval/describe.h does the work). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/describe.h"
#include "host/cli/cli.h"
#include "host/core/check.h"

const char verb_describe_summary[] = "audio dataset or store clips -> tempo, loudness, key, chords, spectra per clip and 1 s window";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae describe --audio DIR|LIST|FILE [--clip-seconds S] [--min-seconds S] -o DESCRIPTORS.h5\n"
            "       musae describe --acts ACTS.h5 [--audio-root DIR] -o DESCRIPTORS.h5\n\n"
            "Measures every clip, and every 1 s window inside it, at 32 kHz mono: tempo and beat confidence, onset\n"
            "rate (aubio); integrated loudness, loudness range, true peak (libebur128); chroma, key and mode\n"
            "(Krumhansl-Schmuckler), the three most frequent chords; spectral centroid, rolloff, flatness, bandwidth,\n"
            "zero-crossing rate, RMS; percussive share (HPSS); median f0 and voiced fraction (aubio yin).\n"
            "The file's layout and every algorithm are in docs/DESCRIBE.md.\n\n"
            "  --audio SRC          a folder (walked recursively, sorted by path), a list file (one path per line,\n"
            "                       optionally TAB and a caption) or one audio file, cut into clips as musae capture\n"
            "                       cuts them, with the same names (\"file#t=START,END\")\n"
            "  --clip-seconds S     clip length (default 10, at most 600)\n"
            "  --min-seconds S      keep a file's last, shorter piece (or a shorter file) when it lasts at least S\n"
            "                       (default: the clip length, as capture)\n"
            "  --acts ACTS.h5       describe exactly the clips of this activation store, in its order\n"
            "  --audio-root DIR     with --acts: clip paths that are relative are taken under DIR (default: as\n"
            "                       stored, i.e. relative to the folder capture ran in)\n"
            "  -o DESCRIPTORS.h5    the output (written atomically: a failed run leaves no file under this name)\n\n"
            "Unreadable, NaN-bearing and too-short files, and silent, constant (DC) and clipped clips, are skipped\n"
            "with a message each (under --acts every clip is kept and such clips are described with a warning).\n"
            "Clips run in parallel on OMP_NUM_THREADS threads; the output does not depend on the thread count.\n");
}

int verb_describe(int argc, char **argv) {
    static const struct option opts[] = {
        {"audio", required_argument, NULL, 'a'},        {"acts", required_argument, NULL, 's'},
        {"audio-root", required_argument, NULL, 'r'},   {"clip-seconds", required_argument, NULL, 'c'},
        {"min-seconds", required_argument, NULL, 'm'},  {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0},
    };
    describe_opts o;
    describe_opts_defaults(&o);
    opterr = 0;
    optind = 1;
    int ch, span_given = 0;
    char why[600];
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': o.audio = optarg; break;
        case 's': o.acts = optarg; break;
        case 'r': o.audio_root = optarg; break;
        /* 600 s: a clip's spectrogram and HPSS planes take about 0.5 GB per analysing thread at that length */
        case 'c': o.clip_seconds = cli_double("--clip-seconds", optarg, 0.02, 600), span_given = 1; break;
        case 'm': o.min_seconds = cli_double("--min-seconds", optarg, 0.02, 600), span_given = 1; break;
        case 'o': o.out = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            cli_getopt_why(ch, argc, argv, why, sizeof why);
            fprintf(stderr, "musae describe: %s; see musae describe --help\n", why);
            return 1;
        }
    }
    if (cli_getopt_why(-1, argc, argv, why, sizeof why)) {
        fprintf(stderr, "musae describe: %s; see musae describe --help\n", why);
        return 1;
    }
    if (!!o.audio == !!o.acts) {
        fprintf(stderr, "musae describe: give one of --audio and --acts; see musae describe --help\n");
        return 1;
    }
    if (!o.out) {
        fprintf(stderr, "musae describe: -o DESCRIPTORS.h5 is required; see musae describe --help\n");
        return 1;
    }
    if (o.acts && span_given) {
        fprintf(stderr, "musae describe: --clip-seconds and --min-seconds apply to --audio only (--acts takes the "
                        "store's clips); see musae describe --help\n");
        return 1;
    }
    if (o.audio_root && !o.acts) {
        fprintf(stderr, "musae describe: --audio-root applies to --acts only; see musae describe --help\n");
        return 1;
    }
    return describe_run(&o, NULL);
}
