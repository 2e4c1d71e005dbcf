/* `musae dashboard`: a static site over one FEATURES.h5 (docs/DASHBOARD.md) that opens from the file system
 * with no server and no network — an index of every feature (a JS data file, sorted, filtered and paged in the
 * browser), a page per feature (histogram, decoder neighbours, labels with their evidence, top and decile clips
 * as OGG excerpts with a spectrogram and the activation trace under it, steering results) and a summary page.
 *
 * Split along seams: eval/dashboard_html.c (the page buffer, HTML/URL/JS escaping, atomic page files),
 * eval/dashboard_png.c (a minimal PNG encoder over zlib and the spectrogram image), eval/dashboard_data.c
 * (LABELS.jsonl and steer.jsonl readers), eval/dashboard.c (excerpts and the pages). */
#ifndef MUSAE_DASHBOARD_H
#define MUSAE_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { DASH_MAX_LABEL_FILES = 16, DASH_MAX_LABELERS = 16 };

typedef struct {
    const char *features;                        /* FEATURES.h5 (required) */
    const char *labels[DASH_MAX_LABEL_FILES];    /* LABELS.jsonl files (docs/LABELS.md) */
    int n_labels;
    const char *steer;                           /* folder holding steer.jsonl, or NULL */
    const char *out;                             /* the site folder (created) */
    const char *sae_dir, *acts;                  /* where the SAE / store moved, or NULL (as musae excerpt) */
    int top;                                     /* top clips with audio per feature (5) */
    int per_decile;                              /* decile samples with audio per decile (1) */
    double seconds;                              /* excerpt length (5) */
    int no_audio;                                /* 1: no excerpts at all (statistics and labels only) */
} dashboard_opts;

void dashboard_opts_defaults(dashboard_opts *o);
/* Writes the whole site. 0, or -1 with a one-line reason (naming the file and the field) in err. */
int dashboard_run(const dashboard_opts *o, char *err, size_t errlen);

/* ---- the page buffer and escaping (dashboard_html.c) ---------------------------------------------------- */
typedef struct {
    char *p;
    size_t n, cap;
} dash_buf;

void db_free(dash_buf *b);
void db_put(dash_buf *b, const char *s);
void db_putn(dash_buf *b, const char *s, size_t n);
void db_printf(dash_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text for HTML content or a quoted attribute: & < > " ' escaped. */
void db_html(dash_buf *b, const char *s);
/* A path for src/href: every byte outside [A-Za-z0-9-._~/] percent-encoded (spaces, quotes, '#', '?', UTF-8). */
void db_url(dash_buf *b, const char *s);
/* A JSON string literal (quotes included) safe anywhere in a script: '<', '>', '&', U+2028/9 as \u escapes. */
void db_js_string(dash_buf *b, const char *s);
/* A finite number as JSON (%.6g), or null. */
void db_js_number(dash_buf *b, double v);
/* Writes the buffer to path through path.tmp renamed into place (a reader never sees half a page).
 * 0, or -1 with the reason in err. */
int db_save(const dash_buf *b, const char *path, char *err, size_t errlen);

/* ---- images (dashboard_png.c) --------------------------------------------------------------------------- */
/* An 8-bit RGB PNG of w x h pixels (rgb [h, w, 3], rows top first). 0, or -1 with the reason in err. */
int dash_png_write(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t errlen);
/* The spectrogram of n mono samples at rate as a PNG: one column per STFT frame (eval/dsp.h: Hann, 4096
 * points, hop 1024), DASH_SPEC_ROWS log-spaced rows from 40 Hz to rate/2 (top = high), dB over a 80 dB range
 * below the excerpt's peak through a dark-to-bright colour map. 0, or -1 with the reason in err. */
enum { DASH_SPEC_ROWS = 96 };
int dash_spectrogram_png(const char *path, const float *x, int64_t n, int rate, char *err, size_t errlen);

/* ---- labels and steering results (dashboard_data.c) ----------------------------------------------------- */
typedef struct {
    int32_t feature;
    int labeler;       /* index into labelers[] */
    cJSON *line;       /* the whole line (owned) */
} dash_label;

typedef struct {
    char *labelers[DASH_MAX_LABELERS];
    int n_labelers;
    dash_label *v;     /* [n] sorted by feature, then file order */
    int64_t n;
} dash_labels;

/* Reads LABELS.jsonl files (docs/LABELS.md); a line that is not a JSON object with an integer `feature` in
 * 0..M-1 and a string `labeler` is refused with file:line and the field. 0, or -1 with the reason in err. */
int dash_labels_read(dash_labels *L, const char *const *files, int n_files, int64_t M, char *err, size_t errlen);
void dash_labels_free(dash_labels *L);
/* The first line of feature f (v index), or -1; lines of f are [*i0, *i1). */
void dash_labels_range(const dash_labels *L, int32_t f, int64_t *i0, int64_t *i1);

typedef struct {
    int32_t feature;   /* the steered feature; -1 for the baseline and the passthrough (they serve every feature) */
    int32_t fi;        /* its index in the study's features (the `act` and `clap` arrays), -1 when feature is */
    double alpha;
    char kind[16];     /* baseline | passthrough | steered | random | other */
    int64_t prompt, seed;
    int draw;          /* random: which draw; else -1 */
    const char *wav;   /* `audio` as written, NULL when the study has no audio */
    char *src;         /* resolved: absolute, or relative to the steer folder (NULL without audio) */
    cJSON *line;
    int64_t seq;       /* line order in the file */
} dash_steer;

typedef struct {
    dash_steer *v;     /* [n] sorted by feature (baselines first), alpha, file order */
    int64_t n;
    int64_t *feat;     /* [nf] the study's features (DIR/study.json `features`) */
    int nf;
} dash_steers;

/* Reads a `musae steer` folder (docs/STEER.md): DIR/study.json's `features` and DIR/steer.jsonl, whose lines need
 * `kind` (baseline|passthrough|steered|random|other), `alpha` (number), `prompt` and `seed` (integers), `feature`
 * (a studied latent of 0..M-1 for steered, random and other) and `audio` (string or null). 0, or -1 with file:line
 * and the field. */
int dash_steer_read(dash_steers *S, const char *dir, int64_t M, char *err, size_t errlen);
/* The line of kind `kind` (draw 0 for random) for (feature, alpha, prompt, seed), or NULL; baselines ignore
 * feature and alpha. */
const dash_steer *dash_steer_find(const dash_steers *S, const char *kind, int32_t feature, double alpha,
                                  int64_t prompt, int64_t seed);
void dash_steer_free(dash_steers *S);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DASHBOARD_H */
