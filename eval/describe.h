/* musae describe: music descriptors (tempo, loudness, chroma/key/chords, spectral shape, percussiveness,
 * pitch) of every clip of an audio dataset or of an activation store, and of every 1 s window inside each
 * clip, into DESCRIPTORS.h5 (host/io/descriptors_io.h; docs/DESCRIBE.md has the contract and the algorithms).
 *
 * Clips. --audio walks a folder, a list or one file exactly as `musae capture` does (eval/capture.h: same
 * order, same cutting at 32 kHz, same "file#t=START,END" names, same --clip-seconds / --min-seconds), so the
 * clips of a dataset described with the settings of its capture carry the names the store has. --acts reads a
 * store's /clips/path and describes exactly those clips in that order: each name's file is streamed from its
 * start at 32 kHz as capture read it, and the span's samples are cut out, so the audio is sample-identical to
 * what was captured.
 *
 * Bad input. --audio: a file that cannot be read (missing, not audio, NaN/Inf samples, truncated) is skipped
 * with its reason (a read error mid-file keeps the clips before it, as capture does); a file shorter than
 * --min-seconds is skipped as too short; a clip that is silent (peak below -100 dBFS), constant (a DC offset
 * and nothing else) or clipped (at least 1 % of its samples on flat tops at full scale) is skipped with a
 * message naming it. --acts: every clip of the store gets its row (the order is the contract), so such
 * clips are described with a warning; a source file that cannot be read is an error.
 *
 * Work. Clips are read on the calling thread in batches and analysed in parallel (OpenMP, one clip per
 * thread at a time); results are placed by clip index, so the file is identical for any thread count. */
#ifndef MUSAE_DESCRIBE_H
#define MUSAE_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "host/io/descriptors_io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DESCRIBE_RATE 32000 /* MusicGen's rate: the clips of a store are spans at this rate */

typedef struct {
    const char *audio;      /* a folder, a list file or one audio file; or */
    const char *acts;       /* an activation store whose clips to describe */
    const char *audio_root; /* --acts: relative clip paths are taken under this folder (NULL: as stored) */
    const char *out;        /* DESCRIPTORS.h5 */
    double clip_seconds;    /* --audio: 10 */
    double min_seconds;     /* --audio: shortest clip kept; <= 0: clip_seconds (capture's default) */
} describe_opts;

void describe_opts_defaults(describe_opts *o);

typedef struct {
    int64_t files, files_skipped;
    int64_t clips, clips_skipped, clips_warned, windows;
    double audio_seconds, seconds;
} describe_report;

/* Runs describe and writes o->out (atomically). Bad arguments, nothing describable or (under --acts) an
 * unreadable clip are a musae_fail. Returns 0. rep may be NULL. */
int describe_run(const describe_opts *o, describe_report *rep);

/* Why a clip of n samples cannot be described faithfully, or NULL: "silent (...)", "constant (...)",
 * "clipped (...)". The reason is written into buf. */
const char *describe_clip_problem(const float *x, int64_t n, char *buf, size_t cap);

/* Descriptors of one clip (n >= 1 samples of mono audio at rate) and of its windows: fills *clip and
 * win[0 .. describe_n_windows(n, rate)). Thread-safe; the library's entry point for tests. */
void describe_clip(const float *x, int64_t n, int rate, musae_desc *clip, musae_desc *win);
int64_t describe_n_windows(int64_t n, int rate);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DESCRIBE_H */
