/* Whole-dataset HDF5 files (h5.h): the writer and the checking reader behind FEATURES.h5. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "host/io/h5_check.h"
#include "host/io/h5_int.h"

static pthread_mutex_t g_h5_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void musae_h5_lock(void) {
    static int quiet = 0;
    pthread_mutex_lock(&g_h5_lock);
    if (!quiet) {
        /* No flush at exit: a store writer that fails (or any musae_fail while a writer is open) must leave the
         * file as of its last commit, exactly as a kill does, and not write half of its in-memory metadata into
         * a full disk on the way out. Must precede every other HDF5 call, so it is here, where every call of
         * host/io passes first. */
        H5dont_atexit();
        /* our messages name the file and the field; HDF5's stack dumps would bury them */
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        quiet = 1;
    }
}
void musae_h5_unlock(void) { pthread_mutex_unlock(&g_h5_lock); }

struct musae_h5 {
    hid_t file;
    int writable;
    char path[4096];
};

size_t musae_h5_type_size(musae_h5_type t) {
    static const size_t sz[] = {1, 4, 8, 4, 8};
    return sz[t];
}

/* Little-endian file types: what h5py writes for numpy's uint8/int32/int64/float32/float64. */
static hid_t file_type(musae_h5_type t) {
    static const hid_t *ids[] = {&H5T_STD_U8LE_g, &H5T_STD_I32LE_g, &H5T_STD_I64LE_g, &H5T_IEEE_F32LE_g,
                                 &H5T_IEEE_F64LE_g};
    return *ids[t];
}
static hid_t mem_type(musae_h5_type t) {
    static const hid_t *ids[] = {&H5T_NATIVE_UINT8_g, &H5T_NATIVE_INT32_g, &H5T_NATIVE_INT64_g, &H5T_NATIVE_FLOAT_g,
                                 &H5T_NATIVE_DOUBLE_g};
    return *ids[t];
}
static int is_float(musae_h5_type t) { return t == MUSAE_H5_F32 || t == MUSAE_H5_F64; }

hid_t musae_h5_vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5_CHECK(t);
    H5_CHECK(H5Tset_size(t, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8));
    return t;
}

/* ---- writer ----------------------------------------------------------------------------------------------- */

musae_h5 *musae_h5_create(const char *path, char *err, size_t errlen) {
    musae_h5_lock();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18));
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    musae_h5_unlock();
    if (f < 0) {
        snprintf(err, errlen, "%s: cannot create (folder missing or not writable?)", path);
        return NULL;
    }
    musae_h5 *h = musae_xcalloc(1, sizeof *h);
    h->file = f;
    h->writable = 1;
    snprintf(h->path, sizeof h->path, "%s", path);
    return h;
}

/* Creates the missing parent groups of name ("/a/b/c" makes /a and /a/b). No object records a modification
 * time, so the same content gives the same bytes. */
static void make_parents(hid_t file, const char *name) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
            H5_CHECK(H5Pset_obj_track_times(gcpl, 0));
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            H5_CHECK(g);
            H5Gclose(g);
            H5Pclose(gcpl);
        }
        *p = '/';
    }
}

static hid_t untimed_dcpl(void) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5_CHECK(dcpl);
    H5_CHECK(H5Pset_obj_track_times(dcpl, 0));
    return dcpl;
}

void musae_h5_write(musae_h5 *h, const char *name, musae_h5_type t, int rank, const int64_t *shape, const void *data) {
    MUSAE_ASSERT(h->writable && rank >= 1 && rank <= 3, "%s: rank %d", name, rank);
    musae_h5_lock();
    hsize_t dims[3];
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i] = (hsize_t)shape[i];
    hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = untimed_dcpl();
    H5_CHECK(sp);
    make_parents(h->file, name);
    hid_t d = H5Dcreate2(h->file, name, file_type(t), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    if (n > 0) H5_CHECK(H5Dwrite(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    musae_h5_unlock();
}

void musae_h5_create_dataset(musae_h5 *h, const char *name, musae_h5_type t, int rank, const int64_t *shape) {
    MUSAE_ASSERT(h->writable && rank >= 1 && rank <= 3, "%s: rank %d", name, rank);
    musae_h5_lock();
    hsize_t dims[3];
    for (int i = 0; i < rank; i++) dims[i] = (hsize_t)shape[i];
    hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = untimed_dcpl();
    H5_CHECK(sp);
    make_parents(h->file, name);
    hid_t d = H5Dcreate2(h->file, name, file_type(t), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    musae_h5_unlock();
}

void musae_h5_write_rows(musae_h5 *h, const char *name, musae_h5_type t, int64_t row0, int64_t n, const void *data) {
    if (n == 0) return;
    musae_h5_lock();
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT);
    H5_CHECK(d);
    hid_t fs = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[3], start[3] = {(hsize_t)row0, 0, 0}, cnt[3];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    MUSAE_ASSERT((hsize_t)(row0 + n) <= dims[0], "%s: rows %lld..%lld past %llu", name, (long long)row0,
                 (long long)(row0 + n), (unsigned long long)dims[0]);
    for (int i = 0; i < rank; i++) cnt[i] = i == 0 ? (hsize_t)n : dims[i];
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    hid_t ms = H5Screate_simple(rank, cnt, NULL);
    H5_CHECK(H5Dwrite(d, mem_type(t), ms, fs, H5P_DEFAULT, data));
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    musae_h5_unlock();
}

void musae_h5_write_strings(musae_h5 *h, const char *name, int64_t n, const char *const *s) {
    musae_h5_lock();
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL), st = musae_h5_vlen_str_type(), dcpl = untimed_dcpl();
    make_parents(h->file, name);
    hid_t d = H5Dcreate2(h->file, name, st, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    if (n > 0) H5_CHECK(H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, s));
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Tclose(st);
    H5Sclose(sp);
    musae_h5_unlock();
}

static void attr_put(musae_h5 *h, const char *obj, const char *key, hid_t ftype, hid_t mtype, const void *v) {
    musae_h5_lock();
    hid_t o = H5Oopen(h->file, obj, H5P_DEFAULT);
    H5_CHECK(o);
    if (H5Aexists(o, key) > 0) H5_CHECK(H5Adelete(o, key));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, key, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, mtype, v));
    H5Aclose(a);
    H5Sclose(sp);
    H5Oclose(o);
    musae_h5_unlock();
}

void musae_h5_attr_str(musae_h5 *h, const char *obj, const char *key, const char *value) {
    hid_t t = musae_h5_vlen_str_type();
    attr_put(h, obj, key, t, t, &value);
    H5Tclose(t);
}
void musae_h5_attr_i64(musae_h5 *h, const char *obj, const char *key, int64_t value) {
    attr_put(h, obj, key, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}
void musae_h5_attr_f64(musae_h5 *h, const char *obj, const char *key, double value) {
    attr_put(h, obj, key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int musae_h5_close(musae_h5 *h, char *err, size_t errlen) {
    musae_h5_lock();
    int rc = 0;
    if (h->writable && H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) rc = -1;
    if (H5Fclose(h->file) < 0) rc = -1;
    musae_h5_unlock();
    if (rc && err) snprintf(err, errlen, "%s: cannot finish writing (disk full?)", h->path);
    free(h);
    return rc;
}

/* ---- reader ----------------------------------------------------------------------------------------------- */

musae_h5 *musae_h5_open(const char *path, char *err, size_t errlen) {
    musae_h5_lock();
    hid_t f = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    musae_h5_unlock();
    if (f < 0) {
        FILE *probe = fopen(path, "rb");
        if (probe) fclose(probe);
        snprintf(err, errlen, "%s: %s", path, probe ? "not an HDF5 file" : "cannot open: no such file");
        return NULL;
    }
    musae_h5 *h = musae_xcalloc(1, sizeof *h);
    h->file = f;
    snprintf(h->path, sizeof h->path, "%s", path);
    return h;
}

const char *musae_h5_path(const musae_h5 *h) { return h->path; }

int musae_h5_has(musae_h5 *h, const char *name) {
    musae_h5_lock();
    /* each parent must exist before its child is asked about */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    int ok = 1;
    for (char *p = buf + 1; ok && *p; p++)
        if (*p == '/') {
            *p = 0;
            ok = H5Lexists(h->file, buf, H5P_DEFAULT) > 0;
            *p = '/';
        }
    ok = ok && H5Lexists(h->file, buf, H5P_DEFAULT) > 0;
    musae_h5_unlock();
    return ok;
}

int musae_h5_shape(musae_h5 *h, const char *name, int64_t *shape, int max_rank, char *err, size_t errlen) {
    if (!musae_h5_has(h, name)) {
        snprintf(err, errlen, "%s: no dataset %s", h->path, name);
        return -1;
    }
    musae_h5_lock();
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT);
    int rank = -1;
    if (d >= 0) {
        hid_t sp = H5Dget_space(d);
        rank = H5Sget_simple_extent_ndims(sp);
        hsize_t dims[8];
        if (rank > max_rank || rank > 8) rank = -2;
        else {
            H5Sget_simple_extent_dims(sp, dims, NULL);
            for (int i = 0; i < rank; i++) shape[i] = (int64_t)dims[i];
        }
        H5Sclose(sp);
        H5Dclose(d);
    }
    musae_h5_unlock();
    if (rank == -1) snprintf(err, errlen, "%s: %s is not a dataset", h->path, name);
    if (rank == -2) snprintf(err, errlen, "%s: %s has more than %d dimensions", h->path, name, max_rank);
    return rank < 0 ? -1 : rank;
}

/* Opens a dataset of class matching t; -1 with the reason. */
static hid_t open_typed(musae_h5 *h, const char *name, musae_h5_type t, char *err, size_t errlen) {
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (d < 0) {
        snprintf(err, errlen, "%s: no dataset %s", h->path, name);
        return -1;
    }
    hid_t ft = H5Dget_type(d);
    H5T_class_t c = H5Tget_class(ft);
    H5Tclose(ft);
    if (c != (is_float(t) ? H5T_FLOAT : H5T_INTEGER)) {
        snprintf(err, errlen, "%s: %s holds %s values, expected %s", h->path, name,
                 c == H5T_FLOAT ? "float" : c == H5T_INTEGER ? "integer" : "non-numeric",
                 is_float(t) ? "float" : "integer");
        H5Dclose(d);
        return -1;
    }
    return d;
}

int musae_h5_read(musae_h5 *h, const char *name, musae_h5_type t, int rank, const int64_t *shape, void *out,
                  char *err, size_t errlen) {
    int64_t got[8];
    int r = musae_h5_shape(h, name, got, 8, err, errlen);
    if (r < 0) return -1;
    int ok = r == rank;
    for (int i = 0; ok && i < rank; i++) ok = shape[i] < 0 || got[i] == shape[i];
    if (!ok) {
        char gs[96] = "[", ws[96] = "[";
        for (int i = 0; i < r; i++)
            snprintf(gs + strlen(gs), sizeof gs - strlen(gs), "%s%lld", i ? ", " : "", (long long)got[i]);
        for (int i = 0; i < rank; i++)
            snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%lld", i ? ", " : "", (long long)shape[i]);
        snprintf(err, errlen, "%s: %s has shape %s], expected %s]", h->path, name, gs, ws);
        return -1;
    }
    musae_h5_lock();
    hid_t d = open_typed(h, name, t, err, errlen);
    int rc = -1;
    if (d >= 0) {
        int64_t n = 1;
        for (int i = 0; i < r; i++) n *= got[i];
        rc = n == 0 || H5Dread(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0 ? 0 : -1;
        if (rc) snprintf(err, errlen, "%s: %s cannot be read (truncated file?)", h->path, name);
        H5Dclose(d);
    }
    musae_h5_unlock();
    return rc;
}

int musae_h5_read_rows(musae_h5 *h, const char *name, musae_h5_type t, int64_t row0, int64_t n, void *out, char *err,
                       size_t errlen) {
    musae_h5_lock();
    hid_t d = open_typed(h, name, t, err, errlen);
    int rc = -1;
    if (d >= 0) {
        hid_t fs = H5Dget_space(d);
        int rank = H5Sget_simple_extent_ndims(fs);
        hsize_t dims[3] = {0, 1, 1}, start[3] = {(hsize_t)row0, 0, 0}, cnt[3];
        H5Sget_simple_extent_dims(fs, dims, NULL);
        for (int i = 0; i < rank; i++) cnt[i] = i == 0 ? (hsize_t)n : dims[i];
        if (rank >= 1 && rank <= 3 && row0 >= 0 && (hsize_t)(row0 + n) <= dims[0]) {
            if (n == 0) rc = 0;
            else {
                hid_t ms = H5Screate_simple(rank, cnt, NULL);
                rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
                             H5Dread(d, mem_type(t), ms, fs, H5P_DEFAULT, out) >= 0
                         ? 0
                         : -1;
                H5Sclose(ms);
            }
        }
        if (rc) snprintf(err, errlen, "%s: %s rows %lld..%lld cannot be read", h->path, name, (long long)row0,
                         (long long)(row0 + n));
        H5Sclose(fs);
        H5Dclose(d);
    }
    musae_h5_unlock();
    return rc;
}

char **musae_h5_read_strings(musae_h5 *h, const char *name, int64_t n, char *err, size_t errlen) {
    int64_t shape[1];
    if (musae_h5_shape(h, name, shape, 1, err, errlen) != 1) {
        if (!err[0]) snprintf(err, errlen, "%s: %s is not 1-D", h->path, name);
        return NULL;
    }
    if (shape[0] != n) {
        snprintf(err, errlen, "%s: %s has %lld entries, expected %lld", h->path, name, (long long)shape[0], (long long)n);
        return NULL;
    }
    musae_h5_lock();
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT), ft = H5Dget_type(d);
    char **out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0) {
        char **raw = musae_xcalloc((size_t)n + 1, sizeof(char *));
        hid_t mt = musae_h5_vlen_str_type();
        if (n == 0 || H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0) {
            out = musae_xcalloc((size_t)n + 1, sizeof(char *));
            for (int64_t i = 0; i < n; i++) {
                out[i] = musae_xstrdup(raw[i] ? raw[i] : "");
                if (raw[i]) H5free_memory(raw[i]);
            }
        }
        H5Tclose(mt);
        free(raw);
    }
    if (!out) snprintf(err, errlen, "%s: %s is not a variable-length string dataset", h->path, name);
    H5Tclose(ft);
    H5Dclose(d);
    musae_h5_unlock();
    return out;
}

/* Opens attribute key of obj; -1 with the reason. */
static hid_t attr_open(musae_h5 *h, const char *obj, const char *key, char *err, size_t errlen) {
    hid_t o = H5Oopen(h->file, obj, H5P_DEFAULT);
    hid_t a = o >= 0 && H5Aexists(o, key) > 0 ? H5Aopen(o, key, H5P_DEFAULT) : -1;
    if (o >= 0) H5Oclose(o);
    if (a < 0) snprintf(err, errlen, "%s: %s has no attribute '%s'", h->path, obj, key);
    return a;
}

int musae_h5_read_attr_str(hid_t a, char *out, size_t cap) {
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        hid_t mt = musae_h5_vlen_str_type();
        if (H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(out, cap, "%s", s);
            H5free_memory(s);
            rc = 0;
        }
        H5Tclose(mt);
    } else if (H5Tget_class(ft) == H5T_STRING) {
        size_t sz = H5Tget_size(ft);
        char *buf = musae_xcalloc(1, sz + 1);
        if (H5Aread(a, ft, buf) >= 0) {
            snprintf(out, cap, "%s", buf);
            rc = 0;
        }
        free(buf);
    }
    H5Tclose(ft);
    return rc;
}

int musae_h5_get_str(musae_h5 *h, const char *obj, const char *key, char *out, size_t cap, char *err, size_t errlen) {
    musae_h5_lock();
    hid_t a = attr_open(h, obj, key, err, errlen);
    int rc = -1;
    if (a >= 0) {
        rc = musae_h5_read_attr_str(a, out, cap);
        if (rc) snprintf(err, errlen, "%s: attribute '%s' of %s is not a string", h->path, key, obj);
        H5Aclose(a);
    }
    musae_h5_unlock();
    return rc;
}

static int get_num(musae_h5 *h, const char *obj, const char *key, hid_t mem, void *out, char *err, size_t errlen) {
    musae_h5_lock();
    hid_t a = attr_open(h, obj, key, err, errlen);
    int rc = -1;
    if (a >= 0) {
        hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
        H5T_class_t c = H5Tget_class(ft);
        if ((c == H5T_INTEGER || c == H5T_FLOAT) && H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, mem, out) >= 0)
            rc = 0;
        else snprintf(err, errlen, "%s: attribute '%s' of %s is not a number", h->path, key, obj);
        H5Sclose(sp);
        H5Tclose(ft);
        H5Aclose(a);
    }
    musae_h5_unlock();
    return rc;
}
int musae_h5_get_i64(musae_h5 *h, const char *obj, const char *key, int64_t *out, char *err, size_t errlen) {
    return get_num(h, obj, key, H5T_NATIVE_INT64, out, err, errlen);
}
int musae_h5_get_f64(musae_h5 *h, const char *obj, const char *key, double *out, char *err, size_t errlen) {
    return get_num(h, obj, key, H5T_NATIVE_DOUBLE, out, err, errlen);
}
