/* The dashboard's feature page: statistics, the activation histogram, decoder neighbours, every label with its
 * evidence, steering results, and the top and decile clips, each an OGG excerpt (eval/excerpt.h, cut once:
 * an excerpt already in the site for the same feature and clip is reused) with its spectrogram and the
 * feature's activation trace under it. A clip without audio is a marked gap saying why. dashboard.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/dashboard_int.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/audio.h"

static int exists(const char *p) { return access(p, R_OK) == 0; }

/* A whole file into memory (NUL-terminated), or NULL. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    dash_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) db_putn(&b, tmp, n);
    fclose(f);
    if (!b.p) db_put(&b, "");
    return b.p;
}

/* ---- one clip ------------------------------------------------------------------------------------------- */
typedef struct {
    int ok;             /* audio and trace present */
    int png;            /* spectrogram present */
    char why[1200];     /* the gap's reason when !ok */
    char stem[64];
    double ex0, ex1, clip0, fr;
    float *act;         /* [n_act], NaN where null */
    int64_t n_act;
} clip_view;

/* The trace JSON of an excerpt, if it is the one for (feature, clip) of this FEATURES file (same path as given,
 * same clip name): an excerpt left in SITE by another analysis is cut again, not shown. */
static int read_trace(const dash_ctx *c, clip_view *v, const char *path, int feature, int64_t clip) {
    char *s = slurp(path);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    const cJSON *fe = cJSON_GetObjectItemCaseSensitive(j, "feature"), *cl = cJSON_GetObjectItemCaseSensitive(j, "clip"),
                *a = cJSON_GetObjectItemCaseSensitive(j, "activation"),
                *e0 = cJSON_GetObjectItemCaseSensitive(j, "excerpt_start"), *e1 = cJSON_GetObjectItemCaseSensitive(j, "excerpt_end"),
                *c0 = cJSON_GetObjectItemCaseSensitive(j, "clip_start"), *fr = cJSON_GetObjectItemCaseSensitive(j, "frame_rate");
    int ok = cJSON_IsNumber(fe) && fe->valuedouble == feature && cJSON_IsNumber(cl) && cl->valuedouble == (double)clip &&
             cJSON_IsArray(a) && cJSON_IsNumber(e0) && cJSON_IsNumber(e1) && cJSON_IsNumber(c0) && cJSON_IsNumber(fr) &&
             e1->valuedouble > e0->valuedouble && fr->valuedouble > 0;
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(j, "features"), *cn = cJSON_GetObjectItemCaseSensitive(j, "clip_name");
    ok = ok && cJSON_IsString(fs) && !strcmp(fs->valuestring, c->o->features) && cJSON_IsString(cn) &&
         !strcmp(cn->valuestring, c->x.f.clip_path[clip]);
    if (ok) {
        v->ex0 = e0->valuedouble, v->ex1 = e1->valuedouble, v->clip0 = c0->valuedouble, v->fr = fr->valuedouble;
        v->n_act = cJSON_GetArraySize(a);
        v->act = musae_xmalloc(sizeof(float) * (size_t)(v->n_act ? v->n_act : 1));
        int64_t t = 0;
        for (const cJSON *e = a->child; e; e = e->next) v->act[t++] = cJSON_IsNumber(e) ? (float)e->valuedouble : NAN;
    }
    cJSON_Delete(j);
    return ok;
}

/* Cuts (or reuses) the excerpt of `clip` for `feature` into SITE/audio and draws its spectrogram. -1 only for
 * a failure that must stop the run (a write error); a clip that cannot be heard is a gap (v->ok = 0). */
static int make_clip(dash_ctx *c, int feature, int64_t clip, int32_t peak_frame, clip_view *v, char *err, size_t errlen) {
    memset(v, 0, sizeof *v);
    snprintf(v->stem, sizeof v->stem, "f%d_c%lld", feature, (long long)clip);
    if (!c->have_audio) {
        snprintf(v->why, sizeof v->why, "%s", c->no_audio_why);
        return 0;
    }
    char dir[4200], ogg[4300], js[4300], png[4300];
    snprintf(dir, sizeof dir, "%s/audio", c->o->out);
    snprintf(ogg, sizeof ogg, "%s/%s.ogg", dir, v->stem);
    snprintf(js, sizeof js, "%s/%s.json", dir, v->stem);
    snprintf(png, sizeof png, "%s/%s.png", dir, v->stem);
    int reused = exists(ogg) && read_trace(c, v, js, feature, clip);
    if (!reused) {
        remove(png); /* a spectrogram left by another excerpt under this name */
        excerpt_result res;
        /* thread-safe: the store's reads hold the HDF5 lock, the encoder and the audio writer are per call */
        const int rc = excerpt_write(&c->x, feature, clip, peak_frame, c->o->seconds, dir, v->stem, &res, v->why, sizeof v->why);
        if (rc < 0) {
            snprintf(err, errlen, "%s", v->why);
            return -1;
        }
        if (rc > 0) {
#pragma omp atomic
            c->n_gaps++;
            return 0;
        }
        if (!read_trace(c, v, js, feature, clip)) {
            snprintf(err, errlen, "%s: the trace just written cannot be read back", js);
            return -1;
        }
#pragma omp atomic
        c->n_excerpts++;
    } else {
#pragma omp atomic
        c->n_reused++;
    }
    v->ok = 1;
    v->png = exists(png);
    if (!v->png) {
        int64_t n = 0;
        char why[600];
        float *x = musae_audio_load(ogg, EXCERPT_RATE, 0, 0, &n, why, sizeof why);
        v->png = x && dash_spectrogram_png(png, x, n, EXCERPT_RATE, why, sizeof why) == 0;
        if (!v->png) LOG_WARN("dashboard: %s: no spectrogram: %s", ogg, why);
        free(x);
    }
    return 0;
}

/* The activation under the spectrogram: frame t sits at clip0 + (t + 0.5)/fr seconds, x in 0..1000 over the
 * excerpt, y from 0 (bottom) to the feature's max activation (top); non-finite frames break the line. */
static void trace_svg(dash_buf *b, const clip_view *v, float vmax) {
    db_put(b, "<svg class=\"trace\" viewBox=\"0 0 1000 60\" preserveAspectRatio=\"none\"><path d=\"");
    int pen = 0;
    for (int64_t t = 0; t < v->n_act; t++) {
        const double ts = v->clip0 + (t + 0.5) / v->fr, x = (ts - v->ex0) / (v->ex1 - v->ex0) * 1000;
        if (x < 0 || x > 1000 || !isfinite(v->act[t])) {
            pen = 0;
            continue;
        }
        const double y = 58 - 54 * (vmax > 0 ? fmin(1.0, fmax(0.0, v->act[t] / vmax)) : 0);
        db_printf(b, "%c%.1f %.1f ", pen ? 'L' : 'M', x, y);
        pen = 1;
    }
    db_put(b, "\"/></svg>");
}

static void clip_card(dash_buf *b, const dash_ctx *c, const char *title, int64_t clip, float clip_max, const clip_view *v,
                      float vmax) {
    const musae_features *f = &c->x.f;
    db_put(b, "<div class=\"clip\"><div class=\"cliphead\">");
    db_html(b, title);
    db_put(b, " · <span class=\"name\">");
    db_html(b, f->clip_path[clip]);
    db_printf(b, "</span> · clip max %.4g</div>\n", clip_max);
    if (v->ok) {
        db_put(b, "<div class=\"view\">");
        if (v->png) {
            db_put(b, "<img class=\"spec\" alt=\"spectrogram\" src=\"../audio/");
            db_url(b, v->stem);
            db_put(b, ".png\">");
        } else {
            db_put(b, "<div class=\"gap\">no spectrogram</div>");
        }
        trace_svg(b, v, vmax);
        db_put(b, "<div class=\"playhead\"></div></div>\n<audio controls preload=\"metadata\" src=\"../audio/");
        db_url(b, v->stem);
        db_printf(b, ".ogg\"></audio><div class=\"muted\">%.2f–%.2f s of the source</div>", v->ex0, v->ex1);
    } else {
        db_put(b, "<div class=\"gap\">no audio: ");
        db_html(b, v->why);
        db_put(b, "</div>");
    }
    db_put(b, "</div>\n");
}

/* ---- the other sections ---------------------------------------------------------------------------------- */
static void hist_svg(dash_buf *b, const musae_features *f, int64_t i) {
    const int64_t *h = f->hist + i * FEATURES_HIST_BINS;
    int64_t hmax = 0;
    for (int k = 0; k < FEATURES_HIST_BINS; k++) hmax = h[k] > hmax ? h[k] : hmax;
    db_put(b, "<svg class=\"hist\" width=\"700\" height=\"150\" viewBox=\"0 0 700 150\">");
    for (int k = 0; k < FEATURES_HIST_BINS && hmax > 0; k++) {
        const double hh = 120.0 * log1p((double)h[k]) / log1p((double)hmax);
        db_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"9\" height=\"%.1f\"><title>[%.4g, %.4g): %lld</title></rect>",
                  10 + k * 10, 125 - hh, hh, f->hist_edges[k], f->hist_edges[k + 1], (long long)h[k]);
    }
    for (int k = 0; k <= FEATURES_HIST_BINS; k += 16)
        db_printf(b, "<text x=\"%d\" y=\"142\">%.3g</text>", 10 + k * 10 - (k ? 12 : 0), f->hist_edges[k]);
    db_put(b, "</svg><div class=\"muted\">active values per log-spaced bin (bar height: log count; hover a bar)</div>\n");
}

/* A JSON value as short text: strings as they are, numbers %.4g, anything else printed compactly. */
static void json_text(dash_buf *b, const cJSON *v) {
    if (cJSON_IsString(v)) db_html(b, v->valuestring);
    else if (cJSON_IsNumber(v)) db_printf(b, "%.4g", v->valuedouble);
    else {
        char *s = cJSON_PrintUnformatted(v);
        db_html(b, s);
        free(s);
    }
}

static void kv_table(dash_buf *b, const cJSON *o) {
    db_put(b, "<table class=\"ev\">");
    for (const cJSON *e = o ? o->child : NULL; e; e = e->next) {
        db_put(b, "<tr><td>");
        db_html(b, e->string);
        db_put(b, "</td><td>");
        json_text(b, e);
        db_put(b, "</td></tr>");
    }
    db_put(b, "</table>");
}

static void labels_section(dash_buf *b, const dash_ctx *c, int64_t i) {
    int64_t i0, i1;
    dash_labels_range(&c->L, (int32_t)i, &i0, &i1);
    db_put(b, "<h2>Labels</h2>\n");
    if (i0 == i1) db_put(b, "<p class=\"muted\">no labeler labelled this feature</p>\n");
    for (int64_t k = i0; k < i1; k++) {
        const cJSON *l = c->L.v[k].line;
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(l, "label"), *score = cJSON_GetObjectItemCaseSensitive(l, "score"),
                    *status = cJSON_GetObjectItemCaseSensitive(l, "status"), *error = cJSON_GetObjectItemCaseSensitive(l, "error");
        db_put(b, "<div class=\"label\"><b>");
        db_html(b, c->L.labelers[c->L.v[k].labeler]);
        db_put(b, "</b> · ");
        db_html(b, cJSON_IsString(status) ? status->valuestring : "?");
        if (cJSON_IsNumber(score)) db_printf(b, " · score %.4g", score->valuedouble);
        db_put(b, "<div class=\"text\">");
        if (cJSON_IsString(label)) db_html(b, label->valuestring);
        else if (cJSON_IsString(error)) db_html(b, error->valuestring);
        db_put(b, "</div>");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(l, "scores");
        if (cJSON_IsObject(sc)) {
            db_put(b, "<div class=\"muted\">scores</div>");
            kv_table(b, sc);
        }
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(l, "evidence");
        int n = 0;
        for (const cJSON *e = cJSON_IsArray(ev) ? ev->child : NULL; e; e = e->next, n++) {
            db_printf(b, "<div class=\"muted\">evidence %d</div>", n + 1);
            if (cJSON_IsObject(e)) kv_table(b, e);
            else json_text(b, e);
        }
        db_put(b, "</div>\n");
    }
}

/* Copies the steering audio into SITE/steer/ once, so the site stays self-contained. */
static int copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) return -1;
    dash_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) db_putn(&b, tmp, n);
    const int bad = ferror(f);
    fclose(f);
    char err[600];
    const int rc = bad ? -1 : db_save(&b, to, err, sizeof err);
    db_free(&b);
    return rc;
}

/* a number of a steer.jsonl line: key of the line, or of its `clap` object (sub = 1), index i of an array (i >= 0) */
static double steer_num(const dash_steer *s, const char *key, int sub, int i) {
    const cJSON *o = sub ? cJSON_GetObjectItemCaseSensitive(s->line, "clap") : s->line;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (i >= 0) v = cJSON_GetArrayItem(v, i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* the measures of feature fi a card shows: its activation, the CLAP alignments (with the baseline's delta), the codes
 * changed and the CLAP distance to the baseline */
static void steer_measures(dash_buf *b, const dash_steer *s, const dash_steer *base, int fi) {
    static const struct {
        const char *name, *key;
        int sub, per_feature, delta;
    } m[] = {{"activation", "act", 0, 1, 1},
             {"CLAP label", "label", 1, 1, 1},
             {"CLAP exemplars", "exemplars", 1, 1, 1},
             {"codes changed", "code_diff", 0, 0, 0},
             {"CLAP distance", "dist", 1, 0, 0}};
    db_put(b, "<table class=\"ev\">");
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        const double v = steer_num(s, m[k].key, m[k].sub, m[k].per_feature ? fi : -1);
        if (!isfinite(v)) continue;
        db_printf(b, "<tr><td>%s</td><td>%.4g", m[k].name, v);
        const double bv = base && base != s ? steer_num(base, m[k].key, m[k].sub, fi) : NAN;
        if (m[k].delta && isfinite(bv)) db_printf(b, " (Δ %+.4g)", v - bv);
        db_put(b, "</td></tr>");
    }
    db_put(b, "</table>");
}

static void steer_player(dash_buf *b, dash_ctx *c, const dash_steer *s, const dash_steer *base, int fi) {
    const int64_t k = s - c->S.v;
    db_printf(b, "<div class=\"clip\"><div class=\"cliphead\"><b>%s</b>", s->kind);
    if (s->draw >= 0) db_printf(b, " (draw %d)", s->draw);
    db_printf(b, " · alpha %.4g · ", s->alpha);
    db_html(b, s->wav ? s->wav : "no audio");
    db_put(b, "</div>");
    if (s->wav) {
        const char *slash = strrchr(s->wav, '/');
        const char *name = slash ? slash + 1 : s->wav;
        char rel[600], dst[4800];
        snprintf(rel, sizeof rel, "s%lld_%s", (long long)s->seq, name);
        snprintf(dst, sizeof dst, "%s/steer/%s", c->o->out, rel);
        /* pages are written in parallel and features share their baselines: one copy at a time, or two threads
         * saving the same file through the same temporary name lose one of the players */
        int have;
#pragma omp critical(dash_steer_copy)
        {
            have = c->steer_copy[k] || (exists(s->src) && copy_file(s->src, dst) == 0);
            if (have) c->steer_copy[k] = 1;
        }
        if (have) {
            db_put(b, "<audio controls preload=\"metadata\" src=\"../steer/");
            db_url(b, rel);
            db_put(b, "\"></audio>");
        } else {
            db_put(b, "<div class=\"gap\">no audio: ");
            db_html(b, s->src);
            db_put(b, " is missing</div>");
        }
    }
    steer_measures(b, s, base, fi);
    db_put(b, "</div>\n");
}

/* Per α, the first DASH_STEER_PAIRS (prompt, seed) pairs of the feature's steered clips, each a row of players side by
 * side: the baseline, the steered clip, the first random draw and the other feature's direction. */
#define DASH_STEER_PAIRS 2
static void steer_section(dash_buf *b, dash_ctx *c, int64_t i) {
    const dash_steers *S = &c->S;
    int64_t k0 = 0;
    while (k0 < S->n && S->v[k0].feature < i) k0++;
    int64_t k1 = k0;
    while (k1 < S->n && S->v[k1].feature == i) k1++;
    if (k0 == k1) return;
    const int fi = S->v[k0].fi;
    db_put(b, "<h2>Steering</h2>\n<p class=\"muted\">each row one prompt and seed (the same sampling draws): the "
              "baseline, the steered clip, a random direction and another feature's direction of the same norm; Δ = "
              "the value minus the baseline's. All clips and the statistics are in the study's steer.jsonl and "
              "summary.json</p>\n");
    for (int64_t k = k0; k < k1;) {
        const double alpha = S->v[k].alpha;
        int shown = 0;
        db_printf(b, "<h3>alpha %.4g</h3>\n", alpha);
        for (; k < k1 && S->v[k].alpha == alpha; k++) {
            const dash_steer *st = &S->v[k];
            if (strcmp(st->kind, "steered") || shown == DASH_STEER_PAIRS) continue;
            shown++;
            const dash_steer *row[4] = {dash_steer_find(S, "baseline", -1, 0, st->prompt, st->seed), st,
                                        dash_steer_find(S, "random", st->feature, alpha, st->prompt, st->seed),
                                        dash_steer_find(S, "other", st->feature, alpha, st->prompt, st->seed)};
            db_printf(b, "<p class=\"muted\">prompt %lld, seed %lld</p>\n<div class=\"steer\">\n",
                      (long long)st->prompt, (long long)st->seed);
            for (int q = 0; q < 4; q++)
                if (row[q]) steer_player(b, c, row[q], row[0], fi);
            db_put(b, "</div>\n");
        }
    }
}

/* ---- the page -------------------------------------------------------------------------------------------- */
int dash_feature_page(dash_ctx *c, int64_t i, char *err, size_t errlen) {
    const musae_features *f = &c->x.f;
    const dashboard_opts *o = c->o;
    dash_buf b = {0};
    const char *st = dash_status(f, i);
    db_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>feature %lld</title>"
                  "<link rel=\"stylesheet\" href=\"../style.css\"></head><body>\n<nav><a href=\"../index.html\">index</a>"
                  "<a href=\"../summary.html\">summary</a>",
              (long long)i);
    if (i > 0) db_printf(&b, "<a href=\"f%lld.html\">← %lld</a>", (long long)i - 1, (long long)i - 1);
    if (i + 1 < f->M) db_printf(&b, "<a href=\"f%lld.html\">%lld →</a>", (long long)i + 1, (long long)i + 1);
    db_printf(&b, "</nav>\n<h1>Feature %lld <span class=\"st-%s\">%s</span></h1>\n", (long long)i,
              !strcmp(st, "too rare") ? "too-rare" : !strcmp(st, "too common") ? "too-common" : st, st);
    db_printf(&b, "<table><tr><th>clip rate</th><td>%.4g</td><th>frame density</th><td>%.4g</td><th>active frames</th>"
                  "<td>%lld</td><th>max act</th><td>%.4g</td><th>mean act</th><td>%.4g</td></tr></table>\n",
              f->clip_rate[i], f->frame_density[i], (long long)f->n_active_frames[i], f->max_act[i], f->mean_act[i]);
    db_put(&b, "<h2>Activation histogram</h2>\n");
    hist_svg(&b, f, i);
    db_put(&b, "<h2>Decoder neighbours</h2>\n<p>");
    for (int k = 0; k < FEATURES_NEIGHBORS; k++) {
        const int32_t j = f->neighbors[i * FEATURES_NEIGHBORS + k];
        if (j >= 0)
            db_printf(&b, "<a href=\"f%d.html\">%d</a> <span class=\"muted\">(cos %.3f)</span> &nbsp; ", j, j,
                      f->neighbor_cos[i * FEATURES_NEIGHBORS + k]);
    }
    db_put(&b, "</p>\n");
    labels_section(&b, c, i);
    steer_section(&b, c, i);
    /* top clips */
    db_put(&b, "<h2>Top clips</h2>\n");
    int shown = 0;
    db_put(&b, "<div class=\"clips\">\n");
    for (int64_t r = 0; r < f->N && r < o->top; r++) {
        const int32_t clip = f->top_clip[i * f->N + r];
        if (clip < 0) break;
        clip_view v;
        if (make_clip(c, (int)i, clip, f->top_clip_frame[i * f->N + r], &v, err, errlen)) goto fail;
        char title[64];
        snprintf(title, sizeof title, "top %lld", (long long)r + 1);
        clip_card(&b, c, title, clip, f->top_clip_max[i * f->N + r], &v, f->max_act[i]);
        free(v.act);
        shown++;
    }
    db_put(&b, "</div>\n");
    if (!shown) db_put(&b, "<p class=\"muted\">the feature never fires on the analysed clips</p>\n");
    /* decile samples, highest decile first */
    db_put(&b, "<h2>Decile samples</h2>\n<div class=\"clips\">\n");
    for (int q = FEATURES_DECILES - 1; q >= 0; q--) {
        int taken = 0;
        for (int j = 0; j < FEATURES_PER_DECILE && taken < o->per_decile; j++) {
            /* spread within the decile: the middle sample first */
            const int jj = (j + FEATURES_PER_DECILE / 2) % FEATURES_PER_DECILE;
            const int32_t clip = f->quantile_clip[(i * FEATURES_DECILES + q) * FEATURES_PER_DECILE + jj];
            if (clip < 0) continue;
            clip_view v;
            if (make_clip(c, (int)i, clip, -1, &v, err, errlen)) goto fail;
            float cmax = 0;
            for (int64_t e = f->cf_indptr[clip]; e < f->cf_indptr[clip + 1]; e++)
                if (f->cf_feature[e] == i) cmax = f->cf_max[e];
            char title[64];
            snprintf(title, sizeof title, "decile %d", q + 1);
            clip_card(&b, c, title, clip, cmax, &v, f->max_act[i]);
            free(v.act);
            taken++;
        }
    }
    db_put(&b, "</div>\n<h2>Clips where it never fires</h2>\n<p class=\"muted\">");
    for (int k = 0; k < FEATURES_RANDOM; k++) {
        const int32_t clip = f->random_clip[i * FEATURES_RANDOM + k];
        if (clip < 0) break;
        db_html(&b, f->clip_path[clip]);
        db_put(&b, "<br>");
    }
    db_put(&b, "</p>\n<script src=\"../player.js\"></script>\n</body></html>\n");
    char path[4300];
    snprintf(path, sizeof path, "%s/features/f%lld.html", o->out, (long long)i);
    const int rc = db_save(&b, path, err, errlen);
    db_free(&b);
    return rc;
fail:
    db_free(&b);
    return -1;
}
