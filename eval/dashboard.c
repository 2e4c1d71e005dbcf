/* `musae dashboard`: the run (inputs, excerpt context, the site's folders and static files), the index with its
 * data file, and the summary page. The feature pages are eval/dashboard_feature.c. dashboard.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/dashboard_int.h"
#include "host/core/check.h"
#include "host/core/log.h"

void dashboard_opts_defaults(dashboard_opts *o) {
    memset(o, 0, sizeof *o);
    o->top = 5;
    o->per_decile = 1;
    o->seconds = 5;
}

const char *dash_status(const musae_features *f, int64_t i) {
    if (f->dead[i]) return "dead";
    if (f->keep[i]) return "kept";
    return f->clip_rate[i] < f->min_rate ? "too rare" : "too common";
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        errno = ENOTDIR;
    }
    snprintf(err, errlen, "%s: cannot create the folder: %s", path, strerror(errno));
    return -1;
}

static int save_text(const char *dir, const char *name, const char *text, char *err, size_t errlen) {
    dash_buf b = {0};
    db_put(&b, text);
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const int rc = db_save(&b, path, err, errlen);
    db_free(&b);
    return rc;
}

/* The best line of each labeler for feature i: status ok, highest score (the file's first on ties). */
static const cJSON *best_label(const dash_labels *L, int64_t i0, int64_t i1, int labeler) {
    const cJSON *best = NULL;
    double bs = -INFINITY;
    for (int64_t k = i0; k < i1; k++) {
        if (L->v[k].labeler != labeler) continue;
        const cJSON *l = L->v[k].line, *st = cJSON_GetObjectItemCaseSensitive(l, "status"),
                    *sc = cJSON_GetObjectItemCaseSensitive(l, "score");
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok")) continue;
        const double s = cJSON_IsNumber(sc) ? sc->valuedouble : -HUGE_VAL / 2;
        if (!best || s > bs) best = l, bs = s;
    }
    return best;
}

/* data/index.js: window.MUSAE_INDEX = {labelers: [...], rows: [[id, status, clip_rate, density, max_act,
 * [label, score] | null per labeler], ...]} — loaded by <script src> (fetch() of file:// is blocked). */
static int write_index(dash_ctx *c, char *err, size_t errlen) {
    const musae_features *f = &c->x.f;
    dash_buf b = {0};
    db_put(&b, "window.MUSAE_INDEX={\"labelers\":[");
    for (int k = 0; k < c->L.n_labelers; k++) {
        if (k) db_put(&b, ",");
        db_js_string(&b, c->L.labelers[k]);
    }
    db_put(&b, "],\"rows\":[\n");
    for (int64_t i = 0; i < f->M; i++) {
        db_printf(&b, "%s[%lld,\"%s\",", i ? ",\n" : "", (long long)i, dash_status(f, i));
        db_js_number(&b, f->clip_rate[i]);
        db_put(&b, ",");
        db_js_number(&b, f->frame_density[i]);
        db_put(&b, ",");
        db_js_number(&b, f->max_act[i]);
        int64_t i0, i1;
        dash_labels_range(&c->L, (int32_t)i, &i0, &i1);
        for (int k = 0; k < c->L.n_labelers; k++) {
            const cJSON *l = best_label(&c->L, i0, i1, k);
            if (!l) {
                db_put(&b, ",null");
                continue;
            }
            const cJSON *lab = cJSON_GetObjectItemCaseSensitive(l, "label"), *sc = cJSON_GetObjectItemCaseSensitive(l, "score");
            db_put(&b, ",[");
            db_js_string(&b, cJSON_IsString(lab) ? lab->valuestring : "");
            db_put(&b, ",");
            db_js_number(&b, cJSON_IsNumber(sc) ? sc->valuedouble : NAN);
            db_put(&b, "]");
        }
        db_put(&b, "]");
    }
    db_put(&b, "]};\n");
    char path[4300];
    snprintf(path, sizeof path, "%s/data/index.js", c->o->out);
    int rc = db_save(&b, path, err, errlen);
    db_free(&b);
    if (rc) return rc;
    db_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>musae features</title>"
               "<link rel=\"stylesheet\" href=\"style.css\"></head><body>\n<nav><a href=\"index.html\">index</a>"
               "<a href=\"summary.html\">summary</a></nav>\n<h1>Features of ");
    db_html(&b, f->sae);
    db_put(&b, "</h1>\n<div class=\"controls\"><label>label or id <input id=\"q\" type=\"search\"></label>"
               "<label>clip rate ≥ <input id=\"rmin\" type=\"number\" step=\"any\"></label>"
               "<label>≤ <input id=\"rmax\" type=\"number\" step=\"any\"></label>"
               "<label>status <select id=\"st\"><option value=\"\">any</option><option>kept</option><option>dead</option>"
               "<option>too rare</option><option>too common</option></select></label>"
               "<label>labeler <select id=\"lab\"><option value=\"\">—</option></select></label>"
               "<label>score ≥ <input id=\"smin\" type=\"number\" step=\"any\"></label></div>\n"
               "<div class=\"controls\"><button id=\"prev\">◀ prev</button><button id=\"next\">next ▶</button>"
               "<span id=\"info\"></span></div>\n"
               "<table id=\"rows\"><thead><tr id=\"head\"></tr></thead><tbody id=\"body\"></tbody></table>\n"
               "<p class=\"muted\">click a column to sort (again to reverse); 100 rows a page</p>\n"
               "<script src=\"data/index.js\"></script><script src=\"index.js\"></script>\n</body></html>\n");
    snprintf(path, sizeof path, "%s/index.html", c->o->out);
    rc = db_save(&b, path, err, errlen);
    db_free(&b);
    return rc;
}

/* A bar chart of counts (log-height bars) with the bin edges under it. */
static void bars_svg(dash_buf *b, const int64_t *h, int n, double lo, double hi, const char *fmt_edge) {
    int64_t hmax = 0;
    for (int k = 0; k < n; k++) hmax = h[k] > hmax ? h[k] : hmax;
    const int bw = 600 / n;
    db_printf(b, "<svg class=\"hist\" width=\"%d\" height=\"150\">", 20 + n * bw + 20);
    for (int k = 0; k < n && hmax > 0; k++) {
        const double hh = 120.0 * log1p((double)h[k]) / log1p((double)hmax);
        db_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\"><title>%lld</title></rect>", 20 + k * bw,
                  125 - hh, bw - 1, hh, (long long)h[k]);
    }
    for (int k = 0; k <= n; k += n / 5 ? n / 5 : 1) {
        db_printf(b, "<text x=\"%d\" y=\"142\">", 12 + k * bw);
        db_printf(b, fmt_edge, lo + (hi - lo) * k / n);
        db_put(b, "</text>");
    }
    db_put(b, "</svg>\n");
}

static void flat_json(dash_buf *b, const cJSON *o, const char *prefix) {
    for (const cJSON *e = o ? o->child : NULL; e; e = e->next) {
        char key[512];
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", e->string ? e->string : "?");
        if (cJSON_IsObject(e)) {
            flat_json(b, e, key);
            continue;
        }
        db_put(b, "<tr><td>");
        db_html(b, key);
        db_put(b, "</td><td>");
        if (cJSON_IsString(e)) db_html(b, e->valuestring);
        else if (cJSON_IsNumber(e)) db_printf(b, "%.6g", e->valuedouble);
        else {
            char *s = cJSON_PrintUnformatted(e);
            db_html(b, s);
            free(s);
        }
        db_put(b, "</td></tr>\n");
    }
}

static int write_summary(dash_ctx *c, char *err, size_t errlen) {
    const musae_features *f = &c->x.f;
    dash_buf b = {0};
    int64_t n_st[4] = {0};
    static const char *names[4] = {"kept", "dead", "too rare", "too common"};
    enum { NB = 35 };
    int64_t dens[NB] = {0}, rate[NB] = {0};
    for (int64_t i = 0; i < f->M; i++) {
        const char *s = dash_status(f, i);
        for (int k = 0; k < 4; k++) n_st[k] += !strcmp(s, names[k]);
        if (f->dead[i]) continue;
        /* log10 frame density over [-7, 0) and clip rate over [0, 1], 35 bins each */
        int kd = (int)floor((log10(fmax(f->frame_density[i], 1e-7)) + 7) / 7 * NB);
        int kr = (int)floor(f->clip_rate[i] * NB);
        dens[kd < 0 ? 0 : kd >= NB ? NB - 1 : kd]++;
        rate[kr < 0 ? 0 : kr >= NB ? NB - 1 : kr]++;
    }
    db_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>musae summary</title>"
               "<link rel=\"stylesheet\" href=\"style.css\"></head><body>\n<nav><a href=\"index.html\">index</a>"
               "<a href=\"summary.html\">summary</a></nav>\n<h1>Summary</h1>\n<table>");
    db_printf(&b, "<tr><th>latents</th><td>%lld</td></tr>", (long long)f->M);
    for (int k = 0; k < 4; k++) db_printf(&b, "<tr><th>%s</th><td>%lld</td></tr>", names[k], (long long)n_st[k]);
    db_printf(&b, "<tr><th>keep filter</th><td>%.4g ≤ clip rate ≤ %.4g</td></tr><tr><th>clips analysed</th><td>%lld"
                  "</td></tr><tr><th>frames analysed</th><td>%lld</td></tr>",
              f->min_rate, f->max_rate, (long long)f->C, (long long)f->n_frames);
    db_put(&b, "</table>\n<h2>Frame density of the live latents (log10)</h2>\n");
    bars_svg(&b, dens, NB, -7, 0, "%.2g");
    db_put(&b, "<h2>Clip rate of the live latents</h2>\n");
    bars_svg(&b, rate, NB, 0, 1, "%.1f");
    db_put(&b, "<h2>Labels per labeler</h2>\n<table><tr><th>labeler</th><th>ok</th><th>no_signal</th><th>failed</th>"
               "<th>other</th></tr>\n");
    for (int k = 0; k < c->L.n_labelers; k++) {
        int64_t n[4] = {0};
        for (int64_t j = 0; j < c->L.n; j++) {
            if (c->L.v[j].labeler != k) continue;
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(c->L.v[j].line, "status");
            const char *s = cJSON_IsString(st) ? st->valuestring : "";
            n[!strcmp(s, "ok") ? 0 : !strcmp(s, "no_signal") ? 1 : !strcmp(s, "failed") ? 2 : 3]++;
        }
        db_put(&b, "<tr><td>");
        db_html(&b, c->L.labelers[k]);
        db_printf(&b, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td></tr>\n", (long long)n[0],
                  (long long)n[1], (long long)n[2], (long long)n[3]);
    }
    if (!c->L.n_labelers) db_put(&b, "<tr><td colspan=\"5\" class=\"muted\">no LABELS.jsonl given</td></tr>\n");
    db_put(&b, "</table>\n<h2>The SAE (musae.json)</h2>\n");
    char mj[4300];
    snprintf(mj, sizeof mj, "%s/musae.json", f->sae);
    FILE *fp = fopen(mj, "rb");
    cJSON *j = NULL;
    if (fp) {
        dash_buf t = {0};
        char tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, fp)) > 0) db_putn(&t, tmp, n);
        fclose(fp);
        j = t.p ? cJSON_Parse(t.p) : NULL;
        db_free(&t);
    }
    if (j) {
        db_put(&b, "<table>\n");
        flat_json(&b, j, "");
        db_put(&b, "</table>\n");
        cJSON_Delete(j);
    } else {
        db_put(&b, "<div class=\"gap\">");
        db_html(&b, mj);
        db_put(&b, " cannot be read: no metrics to show</div>\n");
    }
    db_put(&b, "<h2>The analysis (FEATURES.h5)</h2>\n<table>");
    db_put(&b, "<tr><td>sae</td><td>");
    db_html(&b, f->sae);
    db_put(&b, "</td></tr><tr><td>sae_sha256</td><td>");
    db_html(&b, f->sae_sha256);
    db_put(&b, "</td></tr><tr><td>acts</td><td>");
    db_html(&b, f->acts);
    db_put(&b, "</td></tr><tr><td>model</td><td>");
    db_html(&b, f->model);
    db_printf(&b, "</td></tr><tr><td>layer</td><td>%lld</td></tr><tr><td>k</td><td>%lld</td></tr><tr><td>split</td><td>",
              (long long)f->layer, (long long)f->k);
    db_html(&b, f->split);
    db_printf(&b, "</td></tr><tr><td>non-finite rows</td><td>%lld</td></tr></table>\n</body></html>\n",
              (long long)f->n_nonfinite_rows);
    char path[4300];
    snprintf(path, sizeof path, "%s/summary.html", c->o->out);
    const int rc = db_save(&b, path, err, errlen);
    db_free(&b);
    return rc;
}

int dashboard_run(const dashboard_opts *o, char *err, size_t errlen) {
    dash_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    /* the FEATURES file with its SAE and store for the excerpts; without them, the site still has everything else */
    if (o->no_audio) {
        snprintf(c.no_audio_why, sizeof c.no_audio_why, "excerpts not cut (--no-audio)");
    } else if (excerpt_open(&c.x, o->features, o->sae_dir, o->acts, c.no_audio_why, sizeof c.no_audio_why) == 0) {
        c.have_audio = 1;
    } else {
        LOG_WARN("dashboard: no excerpts: %s", c.no_audio_why);
    }
    if (!c.have_audio && features_read(o->features, &c.x.f, err, errlen)) return -1;
    const musae_features *f = &c.x.f;
    int rc = -1;
    if (dash_labels_read(&c.L, o->labels, o->n_labels, f->M, err, errlen)) goto done;
    if (o->steer && dash_steer_read(&c.S, o->steer, f->M, err, errlen)) goto done;
    c.steer_copy = musae_xcalloc((size_t)c.S.n + 1, 1);
    char dir[4300];
    static const char *sub[] = {"", "/features", "/audio", "/data", "/steer"};
    for (int k = 0; k < 5; k++) {
        snprintf(dir, sizeof dir, "%s%s", o->out, sub[k]);
        if (mkdir_p(dir, err, errlen)) goto done;
    }
    if (save_text(o->out, "style.css", dash_css, err, errlen) || save_text(o->out, "index.js", dash_index_js, err, errlen) ||
        save_text(o->out, "player.js", dash_player_js, err, errlen) || write_index(&c, err, errlen) ||
        write_summary(&c, err, errlen))
        goto done;
    /* the feature pages, in parallel (excerpts, spectrograms and pages are per feature) */
    int failed = 0;
    int64_t done_n = 0;
    char first_err[1200] = "";
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < f->M; i++) {
        int skip;
#pragma omp atomic read
        skip = failed;
        if (skip) continue;
        char e[1200];
        if (dash_feature_page(&c, i, e, sizeof e)) {
#pragma omp critical(dash_fail)
            if (!failed) {
                failed = 1;
                snprintf(first_err, sizeof first_err, "%s", e);
            }
        }
        int64_t d;
#pragma omp atomic capture
        d = ++done_n;
        if (f->M >= 20 && d % (f->M / 10) == 0) LOG_INFO("dashboard: %lld / %lld feature pages", (long long)d, (long long)f->M);
    }
    if (failed) {
        snprintf(err, errlen, "%s", first_err);
        goto done;
    }
    LOG_INFO("dashboard: %lld feature pages in %s; %lld excerpts cut, %lld reused, %lld clips without audio",
             (long long)f->M, o->out, (long long)c.n_excerpts, (long long)c.n_reused, (long long)c.n_gaps);
    rc = 0;
done:
    free(c.steer_copy);
    dash_labels_free(&c.L);
    dash_steer_free(&c.S);
    if (c.have_audio) excerpt_close(&c.x);
    else features_free(&c.x.f);
    return rc;
}
