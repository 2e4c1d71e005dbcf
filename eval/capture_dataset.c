/* Activation capture's inputs: the dataset walk (a folder or a list file, with captions), the clip plan and the
 * clip reader that cuts a file into clips, and the model identity a store records. Split from capture.c; see
 * capture.h. */
#include "eval/capture.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/core/check.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"

/* ---- dataset ---------------------------------------------------------------------------------------------- */

int capture_is_audio_name(const char *name) {
    static const char *const ext[] = {"wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff",
                                      "aifc", "au", "snd", "caf", "w64", "rf64"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || strchr(dot, '/')) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (!strcasecmp(dot + 1, ext[i])) return 1;
    return 0;
}

static void ds_add(capture_dataset *ds, int64_t *cap, char *path, char *caption, int line) {
    if (ds->n_files == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        ds->files = musae_xrealloc(ds->files, (size_t)*cap * sizeof *ds->files);
    }
    ds->files[ds->n_files++] = (capture_file){path, caption, line};
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = musae_xmalloc(a + b + 2);
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

typedef struct {
    dev_t dev;
    ino_t ino;
} dir_id;

/* Recursive walk; folders are identified by (device, inode) so a symlink loop is walked once. Names
 * starting with '.' are skipped (hidden files, macOS "._x.wav" resource forks). */
static int walk(capture_dataset *ds, int64_t *cap, const char *dir, dir_id **seen, int64_t *n_seen, char *err,
                size_t errlen) {
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    for (int64_t i = 0; i < *n_seen; i++)
        if ((*seen)[i].dev == sb.st_dev && (*seen)[i].ino == sb.st_ino) return 0;
    *seen = musae_xrealloc(*seen, (size_t)(*n_seen + 1) * sizeof **seen);
    (*seen)[(*n_seen)++] = (dir_id){sb.st_dev, sb.st_ino};
    ds->n_dirs++;
    DIR *d = opendir(dir);
    if (!d && ds->n_dirs == 1) { /* the folder given */
        snprintf(err, errlen, "%s: cannot read the folder: %s", dir, strerror(errno));
        return -1;
    }
    if (!d) { /* a subfolder: skipped with the reason, as an unreadable file is */
        ds->bad_dirs = musae_xrealloc(ds->bad_dirs, sizeof(char *) * (size_t)(ds->n_bad_dirs + 1));
        ds->bad_dir_why = musae_xrealloc(ds->bad_dir_why, sizeof(char *) * (size_t)(ds->n_bad_dirs + 1));
        char why[600];
        snprintf(why, sizeof why, "cannot read the folder: %s", strerror(errno));
        ds->bad_dirs[ds->n_bad_dirs] = musae_xstrdup(dir);
        ds->bad_dir_why[ds->n_bad_dirs++] = musae_xstrdup(why);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = join(dir, e->d_name);
        if (stat(p, &sb) != 0) { /* a dangling link: take it if it looks like audio, the reader will say why */
            if (capture_is_audio_name(e->d_name)) ds_add(ds, cap, p, NULL, 0);
            else free(p), ds->n_not_audio++;
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            int rc = walk(ds, cap, p, seen, n_seen, err, errlen);
            free(p);
            if (rc) {
                closedir(d);
                return -1;
            }
        } else if (capture_is_audio_name(e->d_name)) {
            ds_add(ds, cap, p, NULL, 0);
        } else {
            ds->n_not_audio++;
            free(p);
        }
    }
    closedir(d);
    return 0;
}

static int cmp_file_path(const void *a, const void *b) {
    return strcmp(((const capture_file *)a)->path, ((const capture_file *)b)->path);
}
typedef struct {
    char *key; /* the real path */
    const capture_file *f;
} keyed;
static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->f->line - y->f->line;
}

static int load_list(capture_dataset *ds, int64_t *cap, const char *src, char *err, size_t errlen) {
    FILE *f = fopen(src, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", src, strerror(errno));
        return -1;
    }
    char *base = musae_xstrdup(src), *slash = strrchr(base, '/');
    if (slash) slash[1] = 0;
    else base[0] = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    int no = 0;
    while ((n = getline(&line, &lcap, f)) >= 0) {
        no++;
        if ((size_t)n != strlen(line)) {
            snprintf(err, errlen, "%s:%d: holds a NUL byte (is it a list file of paths?)", src, no);
            goto fail;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        char *s = line;
        while (*s == ' ') s++;
        if (!*s || *s == '#') continue;
        char *tab = strchr(s, '\t'), *caption = NULL;
        if (tab) {
            *tab = 0;
            char *c = tab + 1, *e = c + strlen(c);
            while (*c == ' ' || *c == '\t') c++;
            while (e > c && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
            if (*c) caption = musae_xstrdup(c);
        }
        size_t pl = strlen(s);
        while (pl > 0 && s[pl - 1] == ' ') s[--pl] = 0;
        if (!pl) {
            snprintf(err, errlen, "%s:%d: a caption without a path", src, no);
            free(caption);
            goto fail;
        }
        ds_add(ds, cap, s[0] == '/' || !base[0] ? musae_xstrdup(s) : join(base, s), caption, no);
    }
    free(line), line = NULL;
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", src);
        goto fail;
    }
    fclose(f);
    free(base);
    if (ds->n_files == 0) {
        snprintf(err, errlen, "%s: the list names no files (one path per line, optionally a tab and a caption)", src);
        return -1;
    }
    /* a file listed twice (under any spelling of its path) would be captured twice: refuse */
    keyed *idx = musae_xmalloc((size_t)ds->n_files * sizeof *idx);
    for (int64_t i = 0; i < ds->n_files; i++) {
        char real[PATH_MAX];
        idx[i].key = musae_xstrdup(realpath(ds->files[i].path, real) ? real : ds->files[i].path);
        idx[i].f = &ds->files[i];
    }
    qsort(idx, (size_t)ds->n_files, sizeof *idx, cmp_keyed);
    int rc = 0;
    for (int64_t i = 1; i < ds->n_files && !rc; i++)
        if (!strcmp(idx[i].key, idx[i - 1].key)) {
            snprintf(err, errlen, "%s:%d: '%s' is listed again (first on line %d); each file may appear once", src,
                     idx[i].f->line, idx[i].f->path, idx[i - 1].f->line);
            rc = -1;
        }
    for (int64_t i = 0; i < ds->n_files; i++) free(idx[i].key);
    free(idx);
    return rc;
fail:
    free(line);
    fclose(f);
    free(base);
    return -1;
}

int capture_dataset_load(const char *src, capture_dataset *ds, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    snprintf(ds->source, sizeof ds->source, "%s", src);
    int64_t cap = 0;
    struct stat sb;
    if (stat(src, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", src, strerror(errno));
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        dir_id *seen = NULL;
        int64_t n_seen = 0;
        int rc = walk(ds, &cap, src, &seen, &n_seen, err, errlen);
        free(seen);
        if (rc) return -1;
        if (ds->n_files == 0 && ds->n_bad_dirs) {
            snprintf(err, errlen, "%s: no audio files in the %lld folder(s) that could be read; %lld could not, e.g. "
                     "%s: %s", src, (long long)(ds->n_dirs - ds->n_bad_dirs), (long long)ds->n_bad_dirs,
                     ds->bad_dirs[0], ds->bad_dir_why[0]);
            return -1;
        }
        if (ds->n_files == 0) {
            snprintf(err, errlen, "%s: no audio files in %lld folder(s) (%lld other files; looked for .wav .flac .ogg "
                     ".opus .mp3 .aiff .au .caf .w64)", src, (long long)ds->n_dirs, (long long)ds->n_not_audio);
            return -1;
        }
        qsort(ds->files, (size_t)ds->n_files, sizeof *ds->files, cmp_file_path);
        return 0;
    }
    if (capture_is_audio_name(src)) {
        ds_add(ds, &cap, musae_xstrdup(src), NULL, 0);
        return 0;
    }
    ds->from_list = 1;
    return load_list(ds, &cap, src, err, errlen);
}

void capture_dataset_free(capture_dataset *ds) {
    for (int64_t i = 0; i < ds->n_files; i++) {
        free(ds->files[i].path);
        free(ds->files[i].caption);
    }
    free(ds->files);
    for (int64_t i = 0; i < ds->n_bad_dirs; i++) free(ds->bad_dirs[i]), free(ds->bad_dir_why[i]);
    free(ds->bad_dirs);
    free(ds->bad_dir_why);
    memset(ds, 0, sizeof *ds);
}

/* ---- clips -------------------------------------------------------------------------------------------------- */

/* Seconds with at most 6 decimals and no trailing zeros: "10", "12.5", "3.123456". */
static void fmt_seconds(char *out, size_t cap, int64_t samples, int rate) {
    const int64_t us = (int64_t)llround((double)samples * 1e6 / rate);
    snprintf(out, cap, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
    char *e = out + strlen(out);
    while (e[-1] == '0') *--e = 0;
    if (e[-1] == '.') e[-1] = 0;
}

void capture_clip_name(const char *path, int64_t start, int64_t n, int rate, char *out, size_t cap) {
    char a[32], b[32];
    fmt_seconds(a, sizeof a, start, rate);
    fmt_seconds(b, sizeof b, start + n, rate);
    snprintf(out, cap, "%s#t=%s,%s", path, a, b);
}

int64_t capture_plan_file(int64_t samples, int64_t clip_samples, int64_t min_samples, int64_t *start, int64_t *len,
                          int64_t cap) {
    int64_t n = 0;
    for (int64_t s = 0; s < samples; s += clip_samples) {
        const int64_t l = samples - s < clip_samples ? samples - s : clip_samples;
        if (l < min_samples) break;
        if (n < cap) {
            if (start) start[n] = s;
            if (len) len[n] = l;
        }
        n++;
    }
    return n;
}

struct capture_clips {
    musae_audio_reader *r;
    int64_t clip_samples, min_samples;
    float *buf, *blk;        /* [clip_samples], [block] */
    int64_t have;            /* samples in buf */
    int64_t blk_n, blk_off;  /* the read block and how much of it was used */
    int64_t pos;             /* samples read so far */
    int64_t next_start;      /* first sample of the clip being filled */
    int done;
};

enum { CLIPS_BLOCK = 32768 };

capture_clips *capture_clips_open(const char *path, int rate, int64_t clip_samples, int64_t min_samples, char *err,
                                  size_t errlen) {
    musae_audio_reader *r = musae_audio_open(path, rate, 0, 0, err, errlen);
    if (!r) return NULL;
    capture_clips *c = musae_xcalloc(1, sizeof *c);
    c->r = r;
    c->clip_samples = clip_samples;
    c->min_samples = min_samples;
    c->buf = musae_xmalloc((size_t)clip_samples * sizeof(float));
    c->blk = musae_xmalloc((size_t)CLIPS_BLOCK * sizeof(float));
    return c;
}

int64_t capture_clips_next(capture_clips *c, const float **x, int64_t *start, char *err, size_t errlen) {
    if (c->done) return 0;
    c->have = 0;
    for (;;) {
        if (c->blk_off == c->blk_n) {
            const int64_t n = musae_audio_read(c->r, c->blk, CLIPS_BLOCK, err, errlen);
            if (n < 0) {
                c->done = 1;
                return -1;
            }
            if (n == 0) { /* the end: a tail long enough is a clip of its own */
                c->done = 1;
                if (c->have < c->min_samples || c->have == 0) return 0;
                break;
            }
            c->blk_n = n, c->blk_off = 0;
        }
        const int64_t take = c->blk_n - c->blk_off < c->clip_samples - c->have ? c->blk_n - c->blk_off
                                                                              : c->clip_samples - c->have;
        memcpy(c->buf + c->have, c->blk + c->blk_off, (size_t)take * sizeof(float));
        c->have += take, c->blk_off += take, c->pos += take;
        if (c->have == c->clip_samples) break;
    }
    *x = c->buf;
    *start = c->next_start;
    c->next_start += c->have;
    return c->have;
}

int64_t capture_clips_pos(const capture_clips *c) { return c->pos; }

void capture_clips_close(capture_clips *c) {
    if (!c) return;
    musae_audio_close(c->r);
    free(c->buf);
    free(c->blk);
    free(c);
}

/* ---- model identity ----------------------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

void capture_model_id(const char *dir, char *out, size_t cap) {
    char real[PATH_MAX], name[256];
    if (!realpath(dir, real)) snprintf(real, sizeof real, "%s", dir);
    const char *hub = strstr(real, "models--");
    if (hub) { /* .../models--facebook--musicgen-small/snapshots/<sha> */
        const char *s = hub + 8, *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, s, n);
        name[n] = 0;
        char *sep = strstr(name, "--");
        if (sep) memmove(sep + 1, sep + 2, strlen(sep + 2) + 1), *sep = '/';
    } else {
        size_t n = strlen(real);
        while (n > 1 && real[n - 1] == '/') real[--n] = 0;
        const char *b = strrchr(real, '/');
        snprintf(name, sizeof name, "%s", b && b[1] ? b + 1 : real);
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) h = fnv(h, buf, n);
        fclose(f);
    }
    musae_st st;
    char err[512];
    if (musae_st_open(&st, dir, err, sizeof err) == 0) {
        for (int i = 0; i < st.n_tensors; i++) {
            const musae_st_tensor *t = &st.tensors[i];
            h = fnv(h, t->name, strlen(t->name) + 1);
            h = fnv(h, t->dtype, strlen(t->dtype) + 1);
            h = fnv(h, t->shape, sizeof(int64_t) * (size_t)t->rank);
            const size_t k = t->nbytes < 64 ? t->nbytes : 64;
            h = fnv(h, t->data, k);
            h = fnv(h, t->data + t->nbytes - k, k);
        }
        musae_st_close(&st);
    }
    snprintf(out, cap, "%s:%016llx", name, (unsigned long long)h);
}
