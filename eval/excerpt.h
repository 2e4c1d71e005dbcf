/* Listenable excerpts of a feature's clips (docs/ANALYZE.md): the source audio around the feature's peak in a
 * clip, as OGG Vorbis, and the feature's per-frame activation over that clip as JSON. `musae excerpt` drives it;
 * the dashboard and the labelers reuse it.
 *
 * A clip's name in the store carries its source and span, "file#t=a,b" (seconds, eval/capture.h). The source is
 * opened as named, else relative to the store's folder. It must still be the file that was captured: its length
 * must agree with the store's clips of that file (the last one ends at e and none is longer than S, so the file
 * lasts at least e and less than e + S, as capture cut it). A missing or changed file is reported by name and the
 * excerpt skipped. The window is `seconds` long, centred on the peak frame's time and shifted to lie inside the
 * clip (the whole clip when it is shorter). Audio is read at 32 kHz mono (host/io/audio.h) and written at 32 kHz. */
#ifndef MUSAE_EXCERPT_H
#define MUSAE_EXCERPT_H

#include <stddef.h>
#include <stdint.h>

#include "eval/features_io.h"
#include "host/io/store.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { EXCERPT_RATE = 32000 };

/* Everything an excerpt needs, opened once for many: the FEATURES file, its SAE and its store. */
/* Per source file, what the store's clips of it imply (the check that a source is still the captured file). */
typedef struct {
    char *file;        /* as named in the clip names */
    double last_end;   /* end of the store's last clip of the file */
    double longest;    /* the longest clip of the file */
} excerpt_span;

typedef struct {
    musae_features f;
    sae_model m;
    musae_store *s;
    char features_path[4096];
    excerpt_span *spans; /* [n_spans] sorted by file: every store clip's name read once at open, not per excerpt */
    int64_t n_spans;
} excerpt_ctx;

/* Opens FEATURES.h5 and the SAE and store it names, or sae_dir / acts when not NULL (files moved since the
 * analysis), refusing an SAE whose sae.safetensors no longer has the recorded sha256. 0, or -1 with a one-line
 * reason in err. */
int excerpt_open(excerpt_ctx *x, const char *features_path, const char *sae_dir, const char *acts, char *err,
                 size_t errlen);
void excerpt_close(excerpt_ctx *x);

/* Splits "file#t=a,b" into file, a and b; 0, or -1 when the name carries no span. */
int excerpt_parse_clip_name(const char *name, char *file, size_t cap, double *a, double *b);
/* A clip's source file as named, else relative to the folder of the store `acts`; "" when neither is readable.
 * How musae excerpt, the dashboard and the CLAP judge find a clip's audio. */
void excerpt_resolve_source(const char *file, const char *acts, char *out, size_t cap);

typedef struct {
    char audio[4200], trace[4200]; /* the files written */
    char source[4200];             /* the source file as opened */
    double start, end;             /* the excerpt, seconds in the source file */
    int32_t peak_frame;
    float peak;
} excerpt_result;

/* Writes <out_dir>/<stem>.ogg and <stem>.json for latent `feature` in clip `clip` (a row of /clips) around
 * `peak_frame` (-1: the trace's first maximum). 0 written; 1 skipped, with the reason (naming the file) in err;
 * -1 failed (err). */
int excerpt_write(excerpt_ctx *x, int feature, int64_t clip, int32_t peak_frame, double seconds, const char *out_dir,
                  const char *stem, excerpt_result *res, char *err, size_t errlen);

/* The excerpt's samples without writing them (the labelers send them to a model): mono at EXCERPT_RATE into
 * *audio (malloc'd, *n_samples long), the window and peak in res (res->audio and res->trace stay empty), and, when
 * trace_out is not NULL, the clip's per-frame activation (malloc'd, f.clip_frames[clip] long). 0; 1 skipped, with
 * the reason (naming the file) in err; -1 failed (err). Nothing is left allocated unless it returns 0. */
int excerpt_audio(excerpt_ctx *x, int feature, int64_t clip, int32_t peak_frame, double seconds, float **audio,
                  int64_t *n_samples, float **trace_out, excerpt_result *res, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_EXCERPT_H */
