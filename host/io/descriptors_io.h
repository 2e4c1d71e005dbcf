/* DESCRIPTORS.h5: music descriptors of every clip and of every 1 s window inside it (`musae describe`,
 * docs/DESCRIBE.md is the contract). One writer, one reader, both here; the analysis is eval/describe.h.
 *
 * Layout (serial HDF5, readable by h5py and h5dump):
 *   /clips/path        [C] variable-length UTF-8   clip names, "file#t=START,END" (a store's names and order
 *                                                  under --acts)
 *   /clips/duration_s  [C] f32                     seconds described
 *   /clip/<field>      [C] f32 or int32            one per scalar field below, attribute `unit`
 *   /clip/chroma       [C, 12] f32                 mean chroma, C..B, each frame max-normalised
 *   /clip/chords       [C, 3] int32                the three most frequent chords (0..11 major C..B,
 *                                                  12..23 minor C..B), -1 padded
 *   /window/<field>, /window/chroma [W, 12], /window/chords [W, 3]   the same for each window
 *   /window/clip       [W] int32                   the clip of each window
 *   /window/start_s    [W] f32                     the window's start within its clip
 *   root attrs: musae_version (str), source (str), sample_rate (int32), clip_seconds, window_seconds (f64),
 *               n_clips, n_windows (int64)
 *
 * Serial HDF5 is not thread-safe and store.c holds its own lock: call these from one thread, with no store
 * stream open (describe reads the store's names first and writes this file at the end). */
#ifndef MUSAE_DESCRIPTORS_IO_H
#define MUSAE_DESCRIPTORS_IO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The scalar fields, X(name, unit): f32 fields use NaN only where the unit says so; the int32 ones use -1
 * for "none". The order is the order of the datasets' creation and of the struct below. */
#define MUSAE_DESC_F32_FIELDS(X)                                                                           \
    X(tempo_bpm, "BPM (NaN = no beat)")                                                                    \
    X(beat_confidence, "aubio tempo confidence (0 = none)")                                                \
    X(onset_rate_hz, "onsets per second")                                                                  \
    X(lufs, "LUFS (mono, floor -70)")                                                                      \
    X(loudness_range_lu, "LU")                                                                             \
    X(true_peak_dbtp, "dBTP (floor -120)")                                                                 \
    X(key_confidence, "Pearson r of the best key profile (0 = none)")                                      \
    X(spectral_centroid_hz, "Hz")                                                                          \
    X(spectral_rolloff_hz, "Hz (85 % of magnitude)")                                                       \
    X(spectral_flatness, "ratio 0..1")                                                                     \
    X(spectral_bandwidth_hz, "Hz")                                                                         \
    X(zcr, "zero crossings per sample")                                                                    \
    X(rms_db, "dBFS (floor -120)")                                                                         \
    X(percussive_ratio, "percussive share of energy 0..1")                                                 \
    X(f0_median_hz, "Hz (NaN = unvoiced)")                                                                 \
    X(voiced_fraction, "fraction of frames 0..1")

#define MUSAE_DESC_I32_FIELDS(X)                                                                           \
    X(key, "pitch class 0 = C .. 11 = B, -1 = none")                                                       \
    X(mode, "0 major, 1 minor, -1 = none")

enum { MUSAE_DESC_CHROMA = 12, MUSAE_DESC_CHORDS = 3, MUSAE_DESC_NO_CHORD = 24 };

/* How many f32 fields, and their names in MUSAE_DESC_F32_FIELDS order (the JSON keys of steer.jsonl). */
#define MUSAE_DESC_COUNT_F(n, u) +1
enum { MUSAE_DESC_N_F32 = 0 MUSAE_DESC_F32_FIELDS(MUSAE_DESC_COUNT_F) };
#undef MUSAE_DESC_COUNT_F
extern const char *const musae_desc_f32_names[MUSAE_DESC_N_F32];

/* One row: a clip or a window. */
typedef struct {
#define MUSAE_DESC_F(n, u) float n;
#define MUSAE_DESC_I(n, u) int32_t n;
    MUSAE_DESC_F32_FIELDS(MUSAE_DESC_F)
    MUSAE_DESC_I32_FIELDS(MUSAE_DESC_I)
#undef MUSAE_DESC_F
#undef MUSAE_DESC_I
    float chroma[MUSAE_DESC_CHROMA];
    int32_t chords[MUSAE_DESC_CHORDS];
} musae_desc;

typedef struct {
    char source[4096];      /* what was described: the --audio or --acts argument */
    int sample_rate;        /* of the analysis */
    double clip_seconds;    /* the clip length asked for (clips may be shorter: tails) */
    double window_seconds;  /* 1 */
    int64_t n_clips, n_windows;
    char **path;            /* [n_clips] */
    float *duration_s;      /* [n_clips] */
    musae_desc *clip;       /* [n_clips] */
    musae_desc *window;     /* [n_windows] */
    int32_t *window_clip;   /* [n_windows] */
    float *window_start_s;  /* [n_windows] */
} musae_descriptors;

/* Writes d to path atomically (a temporary file beside it, fsync, rename, fsync of the folder): a failed or
 * killed run leaves no file, or the previous one, under that name. 0, or -1 with a one-line reason in err. */
int musae_descriptors_write(const char *path, const musae_descriptors *d, char *err, size_t errlen);
/* Reads and validates a descriptors file (every dataset present with its dtype and shape, /window/clip in
 * range). 0, or -1 with a one-line reason naming the file and the dataset. */
int musae_descriptors_read(const char *path, musae_descriptors *d, char *err, size_t errlen);
void musae_descriptors_free(musae_descriptors *d);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DESCRIPTORS_IO_H */
