/* The activation store's HDF5 layer (store_h5.h): the process-wide lock every store call holds, failures as one-line
 * messages naming the file (handed back to the caller inside musae_store_try_add_clip), and the small dataset and
 * attribute helpers the writer (store.c), the reader (store_read.c) and the joined view (store_join.c) share;
 * split from store.c. */
#include "host/io/store_h5.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/h5.h"
#include "host/io/h5_int.h"

/* HDF5 failures become one-line musae errors naming the file and the reason HDF5's innermost error gives (e.g.
 * "No space left on device"); HDF5's own error stack printing is off. */
static const char *g_h5_path = "?";                /* the file of the call in progress, for messages */
static const int64_t *g_h5_committed; /* the clips committed by the writer of that call, NULL for readers */

/* Serial HDF5 is not thread-safe: every call holds the process-wide recursive lock of host/io/h5.h (the prefetch
 * thread reads while the caller may look up a clip path or write another HDF5 file). `path` names the file in
 * any error of the calls under the lock. */
static _Thread_local int g_h5_depth; /* this thread's holds of the lock */
void store_h5_lock(const char *path) {
    musae_h5_lock();
    g_h5_depth++;
    g_h5_path = path;
    g_h5_committed = NULL;
}
void store_h5_lock_writer(const char *path, const int64_t *committed) {
    store_h5_lock(path);
    g_h5_committed = committed;
}
void store_h5_unlock(void) {
    g_h5_depth--;
    musae_h5_unlock();
}

/* A writer's failure: musae_fail, or, inside musae_store_try_add_clip, the message handed back to its caller
 * (a pipeline thread must not exit the process under its siblings' feet). */
static _Thread_local jmp_buf *g_soft;
static _Thread_local char *g_soft_err;
static _Thread_local size_t g_soft_cap;
void store_fail(const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_soft) {
        snprintf(g_soft_err, g_soft_cap, "%s", msg);
        longjmp(*g_soft, 1);
    }
    musae_fail("%s", msg);
}

int store_h5_soft_begin(jmp_buf *jb, char *err, size_t cap) {
    g_soft_err = err;
    g_soft_cap = cap;
    g_soft = jb;
    return g_h5_depth;
}
void store_h5_soft_end(void) { g_soft = NULL; }
void store_h5_soft_unwind(int depth) {
    g_soft = NULL;
    while (g_h5_depth > depth) store_h5_unlock();
}

static herr_t innermost_error(unsigned n, const H5E_error2_t *e, void *out) {
    if (n == 0 && e->desc) snprintf(out, 400, "%s", e->desc);
    return 0;
}

/* The reason of the failed call: the system error the file driver saw ("No space left on device"), else the
 * innermost HDF5 message. */
void store_h5_reason(char *out, size_t cap) {
    char desc[400] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, desc);
    const char *m = strstr(desc, "error message = '");
    if (m) {
        m += strlen("error message = '");
        const char *e = strchr(m, '\'');
        snprintf(out, cap, "%.*s", (int)(e ? e - m : (ptrdiff_t)strlen(m)), m);
    } else snprintf(out, cap, "%s", desc[0] ? desc : "unknown HDF5 error");
}

MUSAE_NORETURN void store_h5_fail(const char *expr) {
    char why[400];
    store_h5_reason(why, sizeof why);
    if (g_h5_committed)
        store_fail("%s: %s (HDF5: %s); the store keeps the %lld clip(s) committed before, continue it once the cause "
                   "is fixed", g_h5_path, why, expr, (long long)*g_h5_committed);
    store_fail("%s: %s (HDF5: %s)", g_h5_path, why, expr);
}

/* ---- small HDF5 helpers ----------------------------------------------------------------------------------- */

/* The IEEE binary16 file type exactly as h5py defines numpy float16 (sign 15, exponent 10..14, mantissa 0..9,
 * bias 15), so h5py reads it as float16 and h5dump prints the values. */
hid_t store_h5_f16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5_CHECK(t);
    H5_CHECK(H5Tset_fields(t, 15, 10, 5, 0, 10));
    H5_CHECK(H5Tset_size(t, 2));
    H5_CHECK(H5Tset_ebias(t, 15));
    return t;
}


/* n < 0 writes a scalar; n >= 1 a 1-D array of n (even of one element: `layers` is always a list). */
void store_h5_attr_write(hid_t obj, const char *name, hid_t type, int n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    if (H5Aexists(obj, name) > 0) H5_CHECK(H5Adelete(obj, name));
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, type, data));
    H5Aclose(a);
    H5Sclose(sp);
}

/* Overwrites an existing fixed-size attribute in place (same type and size: the object header does not
 * grow, so no metadata moves between commits). */
void store_h5_attr_update(hid_t obj, const char *name, hid_t type, const void *data) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, type, data));
    H5Aclose(a);
}

/* Variable-length UTF-8, so h5py reads a str (not bytes). */
void store_h5_attr_str(hid_t obj, const char *name, const char *s) {
    hid_t t = musae_h5_vlen_str_type();
    store_h5_attr_write(obj, name, t, -1, &s);
    H5Tclose(t);
}

hid_t store_h5_make_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                          const hsize_t *chunk) {
    hsize_t zero[2] = {0, rank > 1 ? dims[1] : 0}, maxd[2] = {H5S_UNLIMITED, rank > 1 ? dims[1] : 0};
    hid_t sp = H5Screate_simple(rank, zero, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5_CHECK(H5Pset_chunk(dcpl, rank, chunk));
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

/* Grows a 1-D or 2-D dataset along dim 0 to row0 + n and writes n rows from buf (in type mem). */
void store_h5_append_rows(hid_t d, hid_t mem, int64_t row0, int64_t n, hsize_t width, const void *buf) {
    if (n == 0) return;
    int rank = width ? 2 : 1;
    hsize_t ext[2] = {(hsize_t)(row0 + n), width}, start[2] = {(hsize_t)row0, 0}, cnt[2] = {(hsize_t)n, width};
    H5_CHECK(H5Dset_extent(d, ext));
    hid_t fs = H5Dget_space(d);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    hid_t ms = H5Screate_simple(rank, cnt, NULL);
    H5_CHECK(H5Dwrite(d, mem, ms, fs, H5P_DEFAULT, buf));
    H5Sclose(ms);
    H5Sclose(fs);
}

/* File access: metadata cache evictions off, so dirty metadata reaches the file only in H5Fflush (see the
 * crash-safety note in store.h). The earliest file format (superblock v0) carries no "open for writing"
 * flag, so a killed writer's file opens without h5clear, and every h5py/HDF5 1.8+ reads it. */
hid_t store_h5_writer_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5AC_cache_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    H5_CHECK(H5Pget_mdc_config(fapl, &cfg));
    cfg.evictions_enabled = 0;
    cfg.incr_mode = H5C_incr__off;
    cfg.flash_incr_mode = H5C_flash_incr__off;
    cfg.decr_mode = H5C_decr__off;
    H5_CHECK(H5Pset_mdc_config(fapl, &cfg));
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18));
    return fapl;
}

/* Reads rows [0, n) of a 1-D dataset in memory type mem. */
void store_h5_read_1d(hid_t d, hid_t mem, int64_t n, void *out) {
    if (n == 0) return;
    hsize_t start[1] = {0}, cnt[1] = {(hsize_t)n};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, cnt, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    H5_CHECK(H5Dread(d, mem, ms, fs, H5P_DEFAULT, out));
    H5Sclose(ms);
    H5Sclose(fs);
}

/* Rows a 1-D dataset holds. */
int64_t store_h5_extent(hid_t d) {
    hid_t sp = H5Dget_space(d);
    hsize_t dims[1] = {0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    return (int64_t)dims[0];
}
