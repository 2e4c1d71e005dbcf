/* musae capture — an activation store from an audio dataset (eval/capture.h does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "host/cli/cli.h"
#include "host/core/check.h"

const char verb_capture_summary[] = "audio dataset -> EnCodec -> teacher-forced LM -> activation store (resumable)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae capture --model DIR --audio DIR|LIST|FILE --layers L,L.. -o ACTS.h5 [options]\n\n"
            "Cuts every audio file into clips, encodes each clip with the folder's EnCodec, runs the MusicGen\n"
            "decoder teacher-forced over the codes and writes the residual stream after each chosen layer into an\n"
            "HDF5 activation store (docs/CAPTURE.md, docs/STORE.md): one row per 20 ms frame, the row of frame t\n"
            "being sequence position t + 1.\n\n"
            "  --model DIR          a MusicGen folder as downloaded (decoder, EnCodec, T5 for --captions)\n"
            "  --audio SRC          a folder (walked recursively; .wav .flac .ogg .opus .mp3 .aiff .au .caf .w64,\n"
            "                       sorted by path; names starting with '.' skipped), a list file (one path per\n"
            "                       line, optionally TAB and a caption; relative to the list's folder; '#' comments)\n"
            "                       or one audio file\n"
            "  --layers L,L..       decoder layers (0-based), e.g. 2,6,12,18,22 for musicgen-small\n"
            "  -o ACTS.h5           the store; if it exists the capture continues it: clips already in it are\n"
            "                       skipped (it must hold the same model, layers, dtype and clip settings)\n"
            "  --clip-seconds S     clip length (default 10; a whole number of 20 ms frames)\n"
            "  --min-seconds S      keep a file's last, shorter piece (or a file shorter than a clip) as a clip of\n"
            "                       its own when it lasts at least S (default: the clip length, i.e. whole clips\n"
            "                       only). Shorter pieces are dropped and files shorter than S are skipped as too\n"
            "                       short; nothing is ever padded\n"
            "  --captions           condition the decoder on the list's captions through T5 (default:\n"
            "                       unconditional, as the paper)\n"
            "  --batch N            whole clips per decoder forward (default 1; the rows do not depend on it;\n"
            "                       tails and --captions clips run one per forward)\n"
            "  --dtype f16|f32      stored precision (default f16)\n"
            "  --max-clips N        stop after N new clips (the store stays incomplete; run again to continue)\n"
            CLI_DEVICE_USAGE "\n"
            "Killed at any moment, the store keeps every clip committed so far (one commit per clip); the same\n"
            "command continues it. Progress shows clips/s, frames/s and the ETA; the summary lists skipped files\n"
            "with the reason and how long each stage took.\n");
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int verb_capture(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    capture_opts o;
    capture_opts_defaults(&o);
    const char *layers = NULL;
    cli_device_flags dflags = {0};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--captions")) {
            o.captions = 1;
            continue;
        }
        if (!v) {
            usage(stderr);
            musae_fail(f[0] == '-' ? "%s needs a value (or is unknown)" : "unexpected argument '%s'", f);
        }
        i++;
        if (cli_device_flag(&dflags, f, v)) continue;
        if (!strcmp(f, "--model")) o.model_dir = v;
        else if (!strcmp(f, "--audio")) o.audio = v;
        else if (!strcmp(f, "--layers")) layers = v;
        else if (!strcmp(f, "-o") || !strcmp(f, "--output")) o.out = v;
        else if (!strcmp(f, "--clip-seconds")) o.clip_seconds = cli_double(f, v, 0.02, 3600);
        else if (!strcmp(f, "--min-seconds")) o.min_seconds = cli_double(f, v, 0.02, 3600);
        else if (!strcmp(f, "--batch")) o.batch = (int)cli_int(f, v, 1, 4096);
        else if (!strcmp(f, "--max-clips")) o.max_clips = cli_int(f, v, 1, INT64_MAX / 2);
        else if (!strcmp(f, "--dtype")) {
            if (!strcmp(v, "f16")) o.dtype = MUSAE_F16;
            else if (!strcmp(v, "f32")) o.dtype = MUSAE_F32;
            else musae_fail("--dtype: expected f16 or f32, got '%s'", v);
        } else {
            usage(stderr);
            musae_fail("unknown option '%s'", f);
        }
    }
    if (!o.model_dir || !o.audio || !layers || !o.out) {
        usage(stderr);
        musae_fail("--model, --audio, --layers and -o are required");
    }
    o.n_layers = cli_int_list("--layers", layers, o.layers, MUSAE_STORE_MAX_LAYERS, 0, 100000);
    qsort(o.layers, (size_t)o.n_layers, sizeof(int), cmp_int); /* one order, so "6,2" resumes "2,6" */
    for (int i = 1; i < o.n_layers; i++)
        if (o.layers[i] == o.layers[i - 1]) musae_fail("--layers: layer %d given twice", o.layers[i]);
    const cli_device dev = cli_device_resolve(&dflags, 1);
    o.ops = dev.ops;
    o.prec = dev.prec;
    capture_report r;
    capture_run(&o, &r);
    return 0;
}
