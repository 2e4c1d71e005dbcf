/* DESCRIPTORS.h5 writer and reader (descriptors_io.h has the layout). The file is built in memory with HDF5's
 * core driver and handed to musae_write_file_atomic as one image, so no half-written file can ever carry the
 * requested name. */
#include "host/io/descriptors_io.h"

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/h5_check.h"
#include "host/io/h5_int.h"
#include "host/io/safetensors.h"

const char *const musae_desc_f32_names[MUSAE_DESC_N_F32] = {
#define NAME_F(n, u) #n,
    MUSAE_DESC_F32_FIELDS(NAME_F)
#undef NAME_F
};

static void attr_str(hid_t obj, const char *name, const char *s) {
    hid_t t = musae_h5_vlen_str_type(), sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, t, &s));
    H5Aclose(a), H5Sclose(sp), H5Tclose(t);
}

static void attr_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, mem_type, v));
    H5Aclose(a), H5Sclose(sp);
}

/* A contiguous dataset of rank 1 ([n]) or 2 ([n, cols]) with an optional `unit` attribute. */
static void put(hid_t file, const char *name, hid_t file_type, hid_t mem_type, int64_t n, int64_t cols,
                const void *data, const char *unit) {
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)cols};
    hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5_CHECK(H5Pset_obj_track_times(dcpl, 0)); /* no timestamps: the same input gives the same bytes */
    hid_t d = H5Dcreate2(file, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    if (n > 0) H5_CHECK(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    if (unit) attr_str(d, "unit", unit);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp);
}

static void group(hid_t file, const char *name) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5_CHECK(H5Pset_obj_track_times(gcpl, 0));
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5_CHECK(g);
    H5Gclose(g), H5Pclose(gcpl);
}

/* Every field of `rows` under group g ("/clip" or "/window"). */
static void put_rows(hid_t file, const char *g, const musae_desc *rows, int64_t n) {
    char name[128];
    float *f = musae_xmalloc((size_t)(n ? n : 1) * MUSAE_DESC_CHROMA * sizeof(float));
    int32_t *k = musae_xmalloc((size_t)(n ? n : 1) * MUSAE_DESC_CHORDS * sizeof(int32_t));
#define PUT_F(field, unit)                                                                                 \
    for (int64_t i = 0; i < n; i++) f[i] = rows[i].field;                                                  \
    snprintf(name, sizeof name, "%s/" #field, g);                                                          \
    put(file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, n, 0, f, unit);
#define PUT_I(field, unit)                                                                                 \
    for (int64_t i = 0; i < n; i++) k[i] = rows[i].field;                                                  \
    snprintf(name, sizeof name, "%s/" #field, g);                                                          \
    put(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, n, 0, k, unit);
    MUSAE_DESC_F32_FIELDS(PUT_F)
    MUSAE_DESC_I32_FIELDS(PUT_I)
#undef PUT_F
#undef PUT_I
    for (int64_t i = 0; i < n; i++) memcpy(f + i * MUSAE_DESC_CHROMA, rows[i].chroma, sizeof rows[i].chroma);
    snprintf(name, sizeof name, "%s/chroma", g);
    put(file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, n, MUSAE_DESC_CHROMA, f,
        "energy share per pitch class C..B (each frame max-normalised, then averaged)");
    for (int64_t i = 0; i < n; i++) memcpy(k + i * MUSAE_DESC_CHORDS, rows[i].chords, sizeof rows[i].chords);
    snprintf(name, sizeof name, "%s/chords", g);
    put(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, n, MUSAE_DESC_CHORDS, k,
        "chord id 0..11 major C..B, 12..23 minor C..B, most frequent first, -1 = none");
    free(f), free(k);
}

int musae_descriptors_write(const char *path, const musae_descriptors *d, char *err, size_t errlen) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CHECK(H5Pset_fapl_core(fapl, 1 << 20, 0)); /* in memory, no backing file */
    hid_t file = H5Fcreate("descriptors-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5_CHECK(file);
    H5Pclose(fapl);

    attr_str(file, "musae_version", MUSAE_VERSION);
    attr_str(file, "source", d->source);
    attr_num(file, "sample_rate", H5T_STD_I32LE, H5T_NATIVE_INT, &d->sample_rate);
    attr_num(file, "clip_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d->clip_seconds);
    attr_num(file, "window_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d->window_seconds);
    attr_num(file, "n_clips", H5T_STD_I64LE, H5T_NATIVE_INT64, &d->n_clips);
    attr_num(file, "n_windows", H5T_STD_I64LE, H5T_NATIVE_INT64, &d->n_windows);

    group(file, "/clips"), group(file, "/clip"), group(file, "/window");
    hid_t vs = musae_h5_vlen_str_type();
    put(file, "/clips/path", vs, vs, d->n_clips, 0, d->path, NULL);
    H5Tclose(vs);
    put(file, "/clips/duration_s", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d->n_clips, 0, d->duration_s, "s");
    put_rows(file, "/clip", d->clip, d->n_clips);
    put_rows(file, "/window", d->window, d->n_windows);
    put(file, "/window/clip", H5T_STD_I32LE, H5T_NATIVE_INT32, d->n_windows, 0, d->window_clip, "clip index");
    put(file, "/window/start_s", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d->n_windows, 0, d->window_start_s,
        "s from the clip's start");

    H5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
    const ssize_t n = H5Fget_file_image(file, NULL, 0);
    H5_CHECK(n);
    void *img = musae_xmalloc((size_t)n);
    H5_CHECK(H5Fget_file_image(file, img, (size_t)n));
    H5Fclose(file);
    const int rc = musae_write_file_atomic(path, img, (size_t)n);
    free(img);
    if (rc) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- reader ------------------------------------------------------------------------------------------------ */

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} rd_ctx;

MUSAE_PRINTF(2, 3) static void rd_fail(rd_ctx *c, const char *fmt, ...) {
    if (c->failed) return; /* keep the first reason */
    c->failed = 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
}

/* Reads dataset `name` of class `cls` and shape [n] (cols 0) or [n, cols] into out as mem_type. */
static void get(rd_ctx *c, hid_t file, const char *name, H5T_class_t cls, hid_t mem_type, int64_t n, int64_t cols,
                void *out) {
    if (c->failed) return;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        const char *slash = strchr(name + 1, '/');
        char parent[128];
        snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - name) : (int)strlen(name), name);
        if (slash && H5Lexists(file, parent, H5P_DEFAULT) <= 0) return rd_fail(c, "%s is missing", parent);
        return rd_fail(c, "dataset %s is missing", name);
    }
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return rd_fail(c, "%s: cannot open the dataset", name);
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[H5S_MAX_RANK] = {0};
    const int rank = H5Sget_simple_extent_ndims(sp);
    if (rank > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (H5Tget_class(t) != cls)
        rd_fail(c, "%s: expected %s data", name, cls == H5T_FLOAT ? "float32" : cls == H5T_INTEGER ? "int32" : "string");
    else if (rank != (cols ? 2 : 1) || (int64_t)dims[0] != n || (cols && (int64_t)dims[1] != cols)) {
        char want[64], got[64];
        if (cols) snprintf(want, sizeof want, "[%lld, %lld]", (long long)n, (long long)cols);
        else snprintf(want, sizeof want, "[%lld]", (long long)n);
        if (rank == 1) snprintf(got, sizeof got, "[%llu]", (unsigned long long)dims[0]);
        else if (rank == 2) snprintf(got, sizeof got, "[%llu, %llu]", (unsigned long long)dims[0], (unsigned long long)dims[1]);
        else snprintf(got, sizeof got, "rank %d", rank);
        rd_fail(c, "%s: expected shape %s, got %s", name, want, got);
    }
    else if (n > 0 && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rd_fail(c, "%s: cannot read the data", name);
    H5Tclose(t), H5Sclose(sp), H5Dclose(d);
}

static void get_rows(rd_ctx *c, hid_t file, const char *g, musae_desc *rows, int64_t n) {
    char name[128];
    float *f = musae_xmalloc((size_t)(n ? n : 1) * MUSAE_DESC_CHROMA * sizeof(float));
    int32_t *k = musae_xmalloc((size_t)(n ? n : 1) * MUSAE_DESC_CHORDS * sizeof(int32_t));
#define GET_F(field, unit)                                                                                 \
    snprintf(name, sizeof name, "%s/" #field, g);                                                          \
    get(c, file, name, H5T_FLOAT, H5T_NATIVE_FLOAT, n, 0, f);                                              \
    if (!c->failed)                                                                                        \
        for (int64_t i = 0; i < n; i++) rows[i].field = f[i];
#define GET_I(field, unit)                                                                                 \
    snprintf(name, sizeof name, "%s/" #field, g);                                                          \
    get(c, file, name, H5T_INTEGER, H5T_NATIVE_INT32, n, 0, k);                                            \
    if (!c->failed)                                                                                        \
        for (int64_t i = 0; i < n; i++) rows[i].field = k[i];
    MUSAE_DESC_F32_FIELDS(GET_F)
    MUSAE_DESC_I32_FIELDS(GET_I)
#undef GET_F
#undef GET_I
    snprintf(name, sizeof name, "%s/chroma", g);
    get(c, file, name, H5T_FLOAT, H5T_NATIVE_FLOAT, n, MUSAE_DESC_CHROMA, f);
    if (!c->failed)
        for (int64_t i = 0; i < n; i++) memcpy(rows[i].chroma, f + i * MUSAE_DESC_CHROMA, sizeof rows[i].chroma);
    snprintf(name, sizeof name, "%s/chords", g);
    get(c, file, name, H5T_INTEGER, H5T_NATIVE_INT32, n, MUSAE_DESC_CHORDS, k);
    if (!c->failed)
        for (int64_t i = 0; i < n; i++) memcpy(rows[i].chords, k + i * MUSAE_DESC_CHORDS, sizeof rows[i].chords);
    free(f), free(k);
}

/* Reads a scalar numeric or string root attribute; 0 or -1. */
static int root_attr(hid_t file, const char *name, hid_t mem_type, void *out, size_t cap) {
    if (H5Aexists(file, name) <= 0) return -1;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT), t = H5Aget_type(a);
    int rc = -1;
    if (mem_type < 0 && H5Tget_class(t) == H5T_STRING) {
        hid_t vs = musae_h5_vlen_str_type();
        char *s = NULL;
        if (H5Tis_variable_str(t) > 0 && H5Aread(a, vs, &s) >= 0 && s) {
            snprintf(out, cap, "%s", s);
            H5free_memory(s);
            rc = 0;
        }
        H5Tclose(vs);
    } else if (mem_type >= 0 && (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT)) {
        rc = H5Aread(a, mem_type, out) >= 0 ? 0 : -1;
    }
    H5Tclose(t), H5Aclose(a);
    return rc;
}

int musae_descriptors_read(const char *path, musae_descriptors *d, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    rd_ctx c = {path, err, errlen, 0};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (H5Fis_hdf5(path) <= 0) {
        FILE *f = fopen(path, "rb");
        snprintf(err, errlen, "%s: %s", path, f ? "not an HDF5 file" : strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        snprintf(err, errlen, "%s: HDF5 cannot open it (truncated or corrupt file?)", path);
        return -1;
    }
    if (root_attr(file, "n_clips", H5T_NATIVE_INT64, &d->n_clips, 0) || root_attr(file, "n_windows", H5T_NATIVE_INT64, &d->n_windows, 0))
        rd_fail(&c, "root attributes n_clips / n_windows missing (not a musae descriptors file?)");
    else if (d->n_clips < 0 || d->n_windows < 0 || d->n_clips > INT32_MAX || d->n_windows > ((int64_t)1 << 40))
        rd_fail(&c, "root attributes n_clips %lld / n_windows %lld out of range", (long long)d->n_clips,
                (long long)d->n_windows);
    if (!c.failed) {
        root_attr(file, "source", -1, d->source, sizeof d->source);
        if (root_attr(file, "sample_rate", H5T_NATIVE_INT, &d->sample_rate, 0) ||
            root_attr(file, "clip_seconds", H5T_NATIVE_DOUBLE, &d->clip_seconds, 0) ||
            root_attr(file, "window_seconds", H5T_NATIVE_DOUBLE, &d->window_seconds, 0))
            rd_fail(&c, "root attributes sample_rate / clip_seconds / window_seconds missing");
    }
    if (!c.failed) {
        const int64_t C = d->n_clips, W = d->n_windows;
        d->path = musae_xcalloc((size_t)(C ? C : 1), sizeof *d->path);
        d->duration_s = musae_xcalloc((size_t)(C ? C : 1), sizeof(float));
        d->clip = musae_xcalloc((size_t)(C ? C : 1), sizeof(musae_desc));
        d->window = musae_xcalloc((size_t)(W ? W : 1), sizeof(musae_desc));
        d->window_clip = musae_xcalloc((size_t)(W ? W : 1), sizeof(int32_t));
        d->window_start_s = musae_xcalloc((size_t)(W ? W : 1), sizeof(float));
        hid_t vs = musae_h5_vlen_str_type();
        char **tmp = musae_xcalloc((size_t)(C ? C : 1), sizeof(char *));
        get(&c, file, "/clips/path", H5T_STRING, vs, C, 0, tmp);
        if (!c.failed) {
            for (int64_t i = 0; i < C; i++) d->path[i] = musae_xstrdup(tmp[i] ? tmp[i] : "");
            hsize_t dims[1] = {(hsize_t)C};
            hid_t sp = H5Screate_simple(1, dims, NULL);
            if (C) H5Dvlen_reclaim(vs, sp, H5P_DEFAULT, tmp);
            H5Sclose(sp);
        }
        free(tmp);
        H5Tclose(vs);
        get(&c, file, "/clips/duration_s", H5T_FLOAT, H5T_NATIVE_FLOAT, C, 0, d->duration_s);
        get_rows(&c, file, "/clip", d->clip, C);
        get_rows(&c, file, "/window", d->window, W);
        get(&c, file, "/window/clip", H5T_INTEGER, H5T_NATIVE_INT32, W, 0, d->window_clip);
        get(&c, file, "/window/start_s", H5T_FLOAT, H5T_NATIVE_FLOAT, W, 0, d->window_start_s);
        for (int64_t w = 0; w < W && !c.failed; w++)
            if (d->window_clip[w] < 0 || d->window_clip[w] >= C)
                rd_fail(&c, "/window/clip[%lld] = %d is not a clip index (0..%lld)", (long long)w, d->window_clip[w],
                        (long long)C - 1);
    }
    H5Fclose(file);
    if (c.failed) {
        musae_descriptors_free(d);
        return -1;
    }
    return 0;
}

void musae_descriptors_free(musae_descriptors *d) {
    if (d->path)
        for (int64_t i = 0; i < d->n_clips; i++) free(d->path[i]);
    free(d->path), free(d->duration_s), free(d->clip), free(d->window), free(d->window_clip), free(d->window_start_s);
    memset(d, 0, sizeof *d);
}
