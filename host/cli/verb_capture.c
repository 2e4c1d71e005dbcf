/* musae capture — an activation store from an audio dataset (eval/capture.h does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/dist/dist.h"

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
            "Under mpirun -np P or srun the ranks split the clips (balanced by duration), each writes its shard\n"
            "ACTS.h5.shards/p<P>-r<rank>.h5 and rank 0 joins them into ACTS.h5, which every reader takes as one\n"
            "store; a rank whose launcher or peer died stops at its next commit. Resume with any number of ranks.\n"
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
    enum { OPT_MODEL = CLI_OPT_FIRST, OPT_AUDIO, OPT_LAYERS, OPT_CLIP, OPT_MIN, OPT_CAPTIONS, OPT_BATCH, OPT_DTYPE,
           OPT_MAX_CLIPS };
    static const struct option opts[] = {
        {"model", required_argument, NULL, OPT_MODEL},       {"audio", required_argument, NULL, OPT_AUDIO},
        {"layers", required_argument, NULL, OPT_LAYERS},     {"output", required_argument, NULL, 'o'},
        {"clip-seconds", required_argument, NULL, OPT_CLIP}, {"min-seconds", required_argument, NULL, OPT_MIN},
        {"captions", no_argument, NULL, OPT_CAPTIONS},       {"batch", required_argument, NULL, OPT_BATCH},
        {"dtype", required_argument, NULL, OPT_DTYPE},       {"max-clips", required_argument, NULL, OPT_MAX_CLIPS},
        CLI_DEVICE_OPTIONS, {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        switch (c) {
        case OPT_MODEL: o.model_dir = optarg; break;
        case OPT_AUDIO: o.audio = optarg; break;
        case OPT_LAYERS: layers = optarg; break;
        case 'o': o.out = optarg; break;
        case OPT_CLIP: o.clip_seconds = cli_double("--clip-seconds", optarg, 0.02, 3600); break;
        case OPT_MIN: o.min_seconds = cli_double("--min-seconds", optarg, 0.02, 3600); break;
        case OPT_CAPTIONS: o.captions = 1; break;
        case OPT_BATCH: o.batch = (int)cli_int("--batch", optarg, 1, 4096); break;
        case OPT_MAX_CLIPS: o.max_clips = cli_int("--max-clips", optarg, 1, INT64_MAX / 2); break;
        case OPT_DTYPE:
            if (!strcmp(optarg, "f16")) o.dtype = MUSAE_F16;
            else if (!strcmp(optarg, "f32")) o.dtype = MUSAE_F32;
            else musae_fail("--dtype: expected f16 or f32, got '%s'", optarg);
            break;
        case CLI_OPT_DEVICE: case CLI_OPT_PRECISION: cli_device_opt(&dflags, c, optarg); break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!o.model_dir || !o.audio || !layers || !o.out)
        cli_usage_fail(argv[0], "--model, --audio, --layers and -o are required");
    o.n_layers = cli_int_list("--layers", layers, o.layers, MUSAE_STORE_MAX_LAYERS, 0, 100000);
    qsort(o.layers, (size_t)o.n_layers, sizeof(int), cmp_int); /* one order, so "6,2" resumes "2,6" */
    for (int i = 1; i < o.n_layers; i++)
        if (o.layers[i] == o.layers[i - 1]) musae_fail("--layers: layer %d given twice", o.layers[i]);
    /* mpirun / srun: the ranks split the clips, each writes a shard, rank 0 joins them (docs/CAPTURE.md); MPI
     * first, so that each rank takes the GPU of its local rank (host/dist/dist_gpu.h) */
    musae_dist dist;
    musae_dist_init(&dist, &argc, &argv);
    o.dist = &dist;
    dflags.dist = &dist;
    const cli_device dev = cli_device_resolve(&dflags, 1);
    o.ops = dev.ops;
    o.prec = dev.prec;
    capture_report r;
    capture_run(&o, &r);
    musae_dist_finalize(&dist);
    return 0;
}
