/* Excerpts: source audio around a feature's peak (OGG Vorbis) and its activation trace (JSON); excerpt.h. */
#include "eval/excerpt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/analyze.h"
#include "host/core/check.h"
#include "host/core/sha256.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"

static void build_spans(excerpt_ctx *x);

int excerpt_open(excerpt_ctx *x, const char *features_path, const char *sae_dir, const char *acts, char *err,
                 size_t errlen) {
    memset(x, 0, sizeof *x);
    snprintf(x->features_path, sizeof x->features_path, "%s", features_path);
    if (features_read(features_path, &x->f, err, errlen)) return -1;
    if (sae_dir) snprintf(x->f.sae, sizeof x->f.sae, "%s", sae_dir);
    if (acts) snprintf(x->f.acts, sizeof x->f.acts, "%s", acts);
    char st[4200], sha[65];
    snprintf(st, sizeof st, "%s/sae.safetensors", x->f.sae);
    if (musae_sha256_file(st, sha)) {
        snprintf(err, errlen, "%s: the SAE it was computed with, %s, cannot be read: %s", features_path, st,
                 strerror(errno));
        goto fail;
    }
    if (strcmp(sha, x->f.sae_sha256)) {
        snprintf(err, errlen, "%s: %s has changed since the analysis (sha256 %.12s..., recorded %.12s...)",
                 features_path, st, sha, x->f.sae_sha256);
        goto fail;
    }
    if (sae_load(x->f.sae, &x->m, err, errlen)) goto fail;
    x->s = musae_store_open(x->f.acts, err, errlen);
    if (!x->s) {
        sae_model_free(&x->m);
        goto fail;
    }
    build_spans(x);
    return 0;
fail:
    features_free(&x->f);
    return -1;
}

void excerpt_close(excerpt_ctx *x) {
    for (int64_t i = 0; i < x->n_spans; i++) free(x->spans[i].file);
    free(x->spans);
    features_free(&x->f);
    sae_model_free(&x->m);
    if (x->s) musae_store_close(x->s);
    memset(x, 0, sizeof *x);
}

int excerpt_parse_clip_name(const char *name, char *file, size_t cap, double *a, double *b) {
    const char *h = strrchr(name, '#');
    if (!h || strncmp(h, "#t=", 3)) return -1;
    char *end;
    *a = strtod(h + 3, &end);
    if (*end != ',') return -1;
    *b = strtod(end + 1, &end);
    if (*end || !(*b > *a) || *a < 0) return -1;
    snprintf(file, cap, "%.*s", (int)(h - name), name);
    return 0;
}

void excerpt_resolve_source(const char *file, const char *acts, char *out, size_t cap) {
    if (access(file, R_OK) == 0) {
        snprintf(out, cap, "%s", file);
        return;
    }
    const char *slash = strrchr(acts, '/');
    if (file[0] != '/' && slash) {
        snprintf(out, cap, "%.*s/%s", (int)(slash - acts), acts, file);
        if (access(out, R_OK) == 0) return;
    }
    out[0] = 0;
}

static int cmp_span(const void *a, const void *b) {
    return strcmp(((const excerpt_span *)a)->file, ((const excerpt_span *)b)->file);
}

/* The spans of every source file named by the store's clips, sorted by file (one pass over /clips/path). */
static void build_spans(excerpt_ctx *x) {
    const musae_store_info *in = musae_store_get_info(x->s);
    x->spans = musae_xcalloc((size_t)in->n_clips + 1, sizeof *x->spans);
    char f[4200];
    double a, b;
    int64_t n = 0;
    for (int64_t c = 0; c < in->n_clips; c++) {
        char *name = musae_store_clip_path(x->s, c);
        if (!excerpt_parse_clip_name(name, f, sizeof f, &a, &b))
            x->spans[n++] = (excerpt_span){.file = musae_xstrdup(f), .last_end = b, .longest = b - a};
        free(name);
    }
    qsort(x->spans, (size_t)n, sizeof *x->spans, cmp_span);
    int64_t m = 0; /* merge the clips of one file */
    for (int64_t i = 0; i < n; i++) {
        if (m > 0 && !strcmp(x->spans[m - 1].file, x->spans[i].file)) {
            x->spans[m - 1].last_end = fmax(x->spans[m - 1].last_end, x->spans[i].last_end);
            x->spans[m - 1].longest = fmax(x->spans[m - 1].longest, x->spans[i].longest);
            free(x->spans[i].file);
        } else {
            x->spans[m++] = x->spans[i];
        }
    }
    x->n_spans = m;
}

/* The span the store's clips of `file` imply: the end of the last one and the longest span (0, 0: none). */
static void store_span(const excerpt_ctx *x, const char *file, double *last_end, double *longest) {
    const excerpt_span key = {.file = (char *)file};
    const excerpt_span *s = bsearch(&key, x->spans, (size_t)x->n_spans, sizeof *x->spans, cmp_span);
    *last_end = s ? s->last_end : 0;
    *longest = s ? s->longest : 0;
}

static int write_json(const char *path, cJSON *j, char *err, size_t errlen) {
    char *s = cJSON_Print(j);
    size_t n = strlen(s);
    s = musae_xrealloc(s, n + 2);
    s[n] = '\n';
    int rc = musae_write_file_atomic(path, s, n + 1);
    free(s);
    if (rc) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    return rc ? -1 : 0;
}

int excerpt_audio(excerpt_ctx *x, int feature, int64_t clip, int32_t peak_frame, double seconds, float **audio,
                  int64_t *n_samples, float **trace_out, excerpt_result *res, char *err, size_t errlen) {
    const musae_features *f = &x->f;
    MUSAE_ASSERT(feature >= 0 && feature < f->M && clip >= 0 && clip < f->C, "latent %d, clip %lld", feature,
                 (long long)clip);
    memset(res, 0, sizeof *res);
    *audio = NULL;
    *n_samples = 0;
    if (trace_out) *trace_out = NULL;
    const char *name = f->clip_path[clip];
    char file[4200];
    double a, b;
    if (excerpt_parse_clip_name(name, file, sizeof file, &a, &b)) {
        snprintf(err, errlen, "clip '%s' names no source span (#t=a,b): skipped", name);
        return 1;
    }
    excerpt_resolve_source(file, f->acts, res->source, sizeof res->source);
    if (!res->source[0]) {
        snprintf(err, errlen, "%s: source of clip '%s' is missing (moved?): skipped", file, name);
        return 1;
    }
    musae_audio_reader *r = musae_audio_open(res->source, EXCERPT_RATE, 0, 0, err, errlen);
    if (!r) return 1;
    const double length = (double)musae_audio_reader_info(r)->out_samples / EXCERPT_RATE;
    musae_audio_close(r);
    double last_end, longest;
    store_span(x, file, &last_end, &longest);
    const double tol = 1e-3; /* names carry microseconds; resampling rounds to a sample */
    if (length < last_end - tol || length >= last_end + longest + tol) {
        snprintf(err, errlen,
                 "%s: lasts %.3f s, but the store's clips of it imply %.3f .. %.3f s (changed since capture?): skipped",
                 res->source, length, last_end, last_end + longest);
        return 1;
    }
    /* the trace, then the window around the peak */
    const int64_t n = f->clip_frames[clip];
    float *trace = analyze_clip_trace(&x->m, x->s, f->clip_store_index[clip], feature);
    if (peak_frame < 0) {
        peak_frame = 0;
        for (int64_t t = 1; t < n; t++)
            if (trace[t] > trace[peak_frame]) peak_frame = (int32_t)t;
    }
    const double fr = f->frame_rate, t_peak = a + (peak_frame + 0.5) / fr;
    double s0 = t_peak - seconds / 2, s1 = t_peak + seconds / 2;
    if (s1 - s0 >= b - a) s0 = a, s1 = b;
    else if (s0 < a) s1 += a - s0, s0 = a;
    else if (s1 > b) s0 -= s1 - b, s1 = b;
    *audio = musae_audio_load(res->source, EXCERPT_RATE, s0, s1 - s0, n_samples, err, errlen);
    res->start = s0;
    res->end = s1;
    res->peak_frame = peak_frame;
    res->peak = peak_frame < n ? trace[peak_frame] : 0;
    if (trace_out && *audio) *trace_out = trace;
    else free(trace);
    return *audio ? 0 : -1;
}

int excerpt_write(excerpt_ctx *x, int feature, int64_t clip, int32_t peak_frame, double seconds, const char *out_dir,
                  const char *stem, excerpt_result *res, char *err, size_t errlen) {
    const musae_features *f = &x->f;
    float *audio, *trace;
    int64_t ns;
    int rc = excerpt_audio(x, feature, clip, peak_frame, seconds, &audio, &ns, &trace, res, err, errlen);
    if (rc) return rc;
    const char *name = f->clip_path[clip];
    char file[4200];
    double a, b;
    excerpt_parse_clip_name(name, file, sizeof file, &a, &b);
    const int64_t n = f->clip_frames[clip];
    const double fr = f->frame_rate, s0 = res->start, s1 = res->end;
    peak_frame = res->peak_frame;
    snprintf(res->audio, sizeof res->audio, "%s/%s.ogg", out_dir, stem);
    snprintf(res->trace, sizeof res->trace, "%s/%s.json", out_dir, stem);
    {
        musae_audio_writer *w = musae_audio_writer_open(res->audio, EXCERPT_RATE, 1, MUSAE_AUDIO_VORBIS, err, errlen);
        rc = w ? 0 : -1;
        if (w && musae_audio_write(w, audio, ns, err, errlen)) {
            musae_audio_writer_abort(w);
            rc = -1;
        } else if (w) rc = musae_audio_writer_close(w, NULL, err, errlen);
    }
    if (!rc) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "feature", feature);
        cJSON_AddNumberToObject(j, "clip", (double)clip);
        cJSON_AddNumberToObject(j, "store_index", (double)f->clip_store_index[clip]);
        cJSON_AddStringToObject(j, "clip_name", name);
        cJSON_AddStringToObject(j, "source", res->source);
        cJSON_AddNumberToObject(j, "clip_start", a);
        cJSON_AddNumberToObject(j, "clip_end", b);
        cJSON_AddNumberToObject(j, "excerpt_start", s0);
        cJSON_AddNumberToObject(j, "excerpt_end", s1);
        cJSON_AddNumberToObject(j, "frame_rate", fr);
        cJSON_AddNumberToObject(j, "peak_frame", peak_frame);
        cJSON_AddNumberToObject(j, "peak", peak_frame < n ? trace[peak_frame] : 0);
        cJSON_AddStringToObject(j, "features", x->features_path);
        cJSON *arr = cJSON_AddArrayToObject(j, "activation"); /* one value per frame; null for a non-finite row */
        for (int64_t t = 0; t < n; t++)
            cJSON_AddItemToArray(arr, isfinite(trace[t]) ? cJSON_CreateNumber(trace[t]) : cJSON_CreateNull());
        rc = write_json(res->trace, j, err, errlen);
        cJSON_Delete(j);
    }
    free(audio);
    free(trace);
    return rc;
}
