/* The HDF5 activation store: writer, validating reader, shuffled prefetching stream (store.h has the layout
 * and the crash-safety argument). This is the only file in musae that includes hdf5.h. */
#include "host/io/store.h"

#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/path.h"

/* Negative herr_t / hid_t: print HDF5's own error stack, then abort (an internal error, not bad input). */
#define H5_CHECK(expr)                                                                                     \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY((expr) < 0)) {                                                                  \
            H5Eprint2(H5E_DEFAULT, stderr);                                                                \
            musae_check_failed("HDF5", #expr, __func__, __FILE__, __LINE__, "HDF5 call failed");           \
        }                                                                                                  \
    } while (0)

/* Serial HDF5 is not thread-safe: one recursive lock around every call (the prefetch thread reads while the
 * caller may look up a clip path). */
static pthread_mutex_t g_h5_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static void h5_lock(void) {
    static int quiet = 0;
    pthread_mutex_lock(&g_h5_lock);
    if (!quiet) { /* our messages name the file and the field; HDF5's stack dumps would bury them */
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        quiet = 1;
    }
}
static void h5_unlock(void) { pthread_mutex_unlock(&g_h5_lock); }

enum { ROOT_ATTR_MAX_STR = 256 };

/* ---- small HDF5 helpers ----------------------------------------------------------------------------------- */

/* The IEEE binary16 file type exactly as h5py defines numpy float16 (sign 15, exponent 10..14, mantissa 0..9,
 * bias 15), so h5py reads it as float16 and h5dump prints the values. */
static hid_t f16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5_CHECK(t);
    H5_CHECK(H5Tset_fields(t, 15, 10, 5, 0, 10));
    H5_CHECK(H5Tset_size(t, 2));
    H5_CHECK(H5Tset_ebias(t, 15));
    return t;
}

static int is_f16_type(hid_t t) {
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 2) return 0;
    if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(t) == 15 &&
           H5Tget_order(t) == H5T_ORDER_LE;
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5_CHECK(t);
    H5_CHECK(H5Tset_size(t, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8));
    return t;
}

/* n < 0 writes a scalar; n >= 1 a 1-D array of n (even of one element: `layers` is always a list). */
static void attr_write(hid_t obj, const char *name, hid_t type, int n, const void *data) {
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
static void attr_update(hid_t obj, const char *name, hid_t type, const void *data) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, type, data));
    H5Aclose(a);
}

/* Variable-length UTF-8, so h5py reads a str (not bytes). */
static void attr_write_str(hid_t obj, const char *name, const char *s) {
    hid_t t = vlen_str_type();
    attr_write(obj, name, t, -1, &s);
    H5Tclose(t);
}

/* Reads a numeric attribute as `mem` (HDF5 converts ints and floats); returns the element count or -1. */
static int attr_read_num(hid_t obj, const char *name, hid_t mem, void *out, int max) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    hid_t ft = H5Aget_type(a);
    int ok = n >= 1 && n <= max && (H5Tget_class(ft) == H5T_INTEGER || H5Tget_class(ft) == H5T_FLOAT) &&
             H5Aread(a, mem, out) >= 0;
    H5Tclose(ft);
    H5Sclose(sp);
    H5Aclose(a);
    return ok ? (int)n : -1;
}

/* Reads a string attribute (fixed or variable length) into out; 0 or -1. */
static int attr_read_str(hid_t obj, const char *name, char *out, size_t cap) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            char *s = NULL;
            hid_t mt = vlen_str_type();
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(out, cap, "%s", s);
                H5free_memory(s);
                rc = 0;
            }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(ft);
            char *buf = musae_xcalloc(1, sz + 1);
            if (H5Aread(a, ft, buf) >= 0) {
                snprintf(out, cap, "%s", buf);
                rc = 0;
            }
            free(buf);
        }
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static hid_t make_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
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
static void append_rows(hid_t d, hid_t mem, int64_t row0, int64_t n, hsize_t width, const void *buf) {
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
static hid_t writer_fapl(void) {
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

/* ---- writer ----------------------------------------------------------------------------------------------- */

typedef struct {
    char **keys;
    size_t cap, n;
} str_set;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void str_set_add(str_set *set, const char *s);
static int str_set_has(const str_set *set, const char *s) {
    if (!set->cap) return 0;
    for (size_t i = fnv1a(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (!set->keys[i]) return 0;
        if (!strcmp(set->keys[i], s)) return 1;
    }
}
static void str_set_add(str_set *set, const char *s) {
    if (2 * (set->n + 1) > set->cap) { /* open addressing at most half full */
        str_set big = {musae_xcalloc(set->cap ? 2 * set->cap : 1024, sizeof(char *)), set->cap ? 2 * set->cap : 1024, 0};
        for (size_t i = 0; i < set->cap; i++)
            if (set->keys[i]) {
                size_t j = fnv1a(set->keys[i]) & (big.cap - 1);
                while (big.keys[j]) j = (j + 1) & (big.cap - 1);
                big.keys[j] = set->keys[i];
                big.n++;
            }
        free(set->keys);
        *set = big;
    }
    size_t j = fnv1a(s) & (set->cap - 1);
    while (set->keys[j]) j = (j + 1) & (set->cap - 1);
    set->keys[j] = musae_xstrdup(s);
    set->n++;
}
static void str_set_free(str_set *set) {
    for (size_t i = 0; i < set->cap; i++) free(set->keys[i]);
    free(set->keys);
}

struct musae_store_writer {
    char *path;
    musae_store_spec spec;
    hid_t file, f16, vstr;
    hid_t acts[MUSAE_STORE_MAX_LAYERS];
    hid_t fr_clip, fr_t, cl_path, cl_nf, cl_off;
    int64_t n_rows, n_clips, nonfinite;
    str_set paths;
    void *conv;      /* one clip of one layer in the storage dtype */
    int32_t *ibuf;   /* frame indices of one clip */
    size_t conv_cap, ibuf_cap;
};

static int64_t default_chunk_rows(int d, musae_dtype dt) {
    int64_t c = 1;
    while (c * 2 * d * (int64_t)musae_dtype_size(dt) <= (1 << 20)) c *= 2;
    return c;
}

static void commit(musae_store_writer *w) {
    attr_update(w->file, "n_rows", H5T_NATIVE_INT64, &w->n_rows);
    attr_update(w->file, "n_clips", H5T_NATIVE_INT64, &w->n_clips);
    H5_CHECK(H5Fflush(w->file, H5F_SCOPE_GLOBAL));
}

static void writer_open_datasets(musae_store_writer *w) {
    char name[64];
    /* room for the partly filled chunk of each layer plus the next one: a clip's rows land in the cache and
     * reach the file whole, instead of read-modify-writing a chunk per clip (chunks larger than the cache
     * bypass it) */
    const size_t chunk_bytes = (size_t)w->spec.chunk_rows * (size_t)w->spec.d_model * musae_dtype_size(w->spec.dtype);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5_CHECK(H5Pset_chunk_cache(dapl, 521, 3 * chunk_bytes, 1.0));
    for (int l = 0; l < w->spec.n_layers; l++) {
        snprintf(name, sizeof name, "/layers/%d/acts", w->spec.layers[l]);
        w->acts[l] = H5Dopen2(w->file, name, dapl);
        H5_CHECK(w->acts[l]);
    }
    H5Pclose(dapl);
    H5_CHECK(w->fr_clip = H5Dopen2(w->file, "/frames/clip", H5P_DEFAULT));
    H5_CHECK(w->fr_t = H5Dopen2(w->file, "/frames/t", H5P_DEFAULT));
    H5_CHECK(w->cl_path = H5Dopen2(w->file, "/clips/path", H5P_DEFAULT));
    H5_CHECK(w->cl_nf = H5Dopen2(w->file, "/clips/n_frames", H5P_DEFAULT));
    H5_CHECK(w->cl_off = H5Dopen2(w->file, "/clips/offset", H5P_DEFAULT));
}

static void check_spec(const musae_store_spec *spec) {
    if (spec->d_model <= 0) musae_fail("activation store: d_model must be positive (got %d)", spec->d_model);
    if (spec->n_layers <= 0 || spec->n_layers > MUSAE_STORE_MAX_LAYERS)
        musae_fail("activation store: 1..%d layers, got %d", MUSAE_STORE_MAX_LAYERS, spec->n_layers);
    if (spec->dtype != MUSAE_F16 && spec->dtype != MUSAE_F32)
        musae_fail("activation store: dtype must be f16 or f32, got %s", musae_dtype_name(spec->dtype));
    for (int i = 0; i < spec->n_layers; i++)
        for (int j = 0; j < i; j++)
            if (spec->layers[i] == spec->layers[j]) musae_fail("activation store: layer %d given twice", spec->layers[i]);
}

musae_store_writer *musae_store_create(const char *path, const musae_store_spec *spec) {
    check_spec(spec);
    struct stat sb;
    if (stat(path, &sb) == 0) musae_fail("%s: already exists (continue it with append/resume, or remove it)", path);
    h5_lock();
    musae_store_writer *w = musae_xcalloc(1, sizeof *w);
    w->path = musae_xstrdup(path);
    w->spec = *spec;
    if (!w->spec.chunk_rows) w->spec.chunk_rows = default_chunk_rows(spec->d_model, spec->dtype);
    hid_t fapl = writer_fapl();
    w->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (w->file < 0) {
        h5_unlock();
        musae_fail("%s: cannot create the activation store: %s", path, strerror(errno));
    }
    w->f16 = f16_type();
    w->vstr = vlen_str_type();
    const int d = spec->d_model;
    attr_write_str(w->file, "model", spec->model ? spec->model : "");
    attr_write(w->file, "d_model", H5T_NATIVE_INT32, -1, &d);
    attr_write(w->file, "frame_rate", H5T_NATIVE_DOUBLE, -1, &spec->frame_rate);
    attr_write(w->file, "layers", H5T_NATIVE_INT, spec->n_layers, spec->layers);
    attr_write_str(w->file, "musae_version", MUSAE_VERSION);
    int zero = 0;
    int64_t zero64 = 0;
    attr_write(w->file, "complete", H5T_NATIVE_INT32, -1, &zero);
    /* the committed counts, rewritten in place by every commit */
    attr_write(w->file, "n_rows", H5T_NATIVE_INT64, -1, &zero64);
    attr_write(w->file, "n_clips", H5T_NATIVE_INT64, -1, &zero64);

    hid_t g = H5Gcreate2(w->file, "/layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(g);
    H5Gclose(g);
    char name[64];
    hsize_t dims[2] = {0, (hsize_t)d}, chunk[2] = {(hsize_t)w->spec.chunk_rows, (hsize_t)d};
    for (int l = 0; l < spec->n_layers; l++) {
        snprintf(name, sizeof name, "/layers/%d", spec->layers[l]);
        H5_CHECK(g = H5Gcreate2(w->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        hid_t ds = make_dataset(g, "acts", spec->dtype == MUSAE_F16 ? w->f16 : H5T_IEEE_F32LE, 2, dims, chunk);
        attr_write_str(ds, "dtype_source", spec->dtype_source ? spec->dtype_source : "f32");
        H5Dclose(ds);
        H5Gclose(g);
    }
    hsize_t c1[1] = {16384}, c2[1] = {1024};
    H5_CHECK(g = H5Gcreate2(w->file, "/frames", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Dclose(make_dataset(g, "clip", H5T_STD_I32LE, 1, dims, c1));
    H5Dclose(make_dataset(g, "t", H5T_STD_I32LE, 1, dims, c1));
    H5Gclose(g);
    H5_CHECK(g = H5Gcreate2(w->file, "/clips", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Dclose(make_dataset(g, "path", w->vstr, 1, dims, c2));
    H5Dclose(make_dataset(g, "n_frames", H5T_STD_I32LE, 1, dims, c2));
    H5Dclose(make_dataset(g, "offset", H5T_STD_I64LE, 1, dims, c2));
    H5Gclose(g);
    writer_open_datasets(w);
    commit(w);
    h5_unlock();
    return w;
}

musae_store_writer *musae_store_append(const char *path, const musae_store_spec *spec) {
    check_spec(spec);
    char err[512];
    musae_store *r = musae_store_open(path, err, sizeof err);
    if (!r) musae_fail("%s", err);
    const musae_store_info *in = musae_store_get_info(r);
    if (in->d_model != spec->d_model) musae_fail("%s: holds d_model %d, this run writes %d", path, in->d_model, spec->d_model);
    if (in->dtype != spec->dtype)
        musae_fail("%s: holds %s rows, this run writes %s", path, musae_dtype_name(in->dtype), musae_dtype_name(spec->dtype));
    if (spec->model && !musae_store_same_model(in->model, spec->model))
        musae_fail("%s: holds activations of model '%s', this run uses '%s'", path, in->model, spec->model);
    if (in->n_layers != spec->n_layers || memcmp(in->layers, spec->layers, sizeof(int) * (size_t)spec->n_layers))
        musae_fail("%s: holds a different set of layers than this run writes", path);
    int64_t n_rows = in->n_rows, n_clips = in->n_clips, chunk = in->chunk_rows;
    musae_store_writer *w = musae_xcalloc(1, sizeof *w);
    w->path = musae_xstrdup(path);
    w->spec = *spec;
    w->spec.chunk_rows = chunk;
    for (int64_t i = 0; i < n_clips; i++) {
        char *p = musae_store_clip_path(r, i);
        str_set_add(&w->paths, p);
        free(p);
    }
    musae_store_close(r);

    /* HDF5 does not say why it cannot open a file for writing: ask the system first (read-only file system,
     * permissions, an immutable file) */
    const int fd = open(path, O_RDWR);
    if (fd < 0) musae_fail("%s: cannot open the activation store for writing: %s", path, strerror(errno));
    close(fd);
    h5_lock();
    hid_t fapl = writer_fapl();
    w->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (w->file < 0) {
        h5_unlock();
        musae_fail("%s: HDF5 cannot open the activation store for writing", path);
    }
    w->f16 = f16_type();
    w->vstr = vlen_str_type();
    writer_open_datasets(w);
    w->n_rows = n_rows;
    w->n_clips = n_clips;
    /* cut back whatever a killed writer left past the committed counts */
    hsize_t ext[2] = {(hsize_t)n_rows, (hsize_t)spec->d_model};
    for (int l = 0; l < spec->n_layers; l++) H5_CHECK(H5Dset_extent(w->acts[l], ext));
    H5_CHECK(H5Dset_extent(w->fr_clip, ext));
    H5_CHECK(H5Dset_extent(w->fr_t, ext));
    ext[0] = (hsize_t)n_clips;
    H5_CHECK(H5Dset_extent(w->cl_path, ext));
    H5_CHECK(H5Dset_extent(w->cl_nf, ext));
    H5_CHECK(H5Dset_extent(w->cl_off, ext));
    int zero = 0;
    attr_write(w->file, "complete", H5T_NATIVE_INT32, -1, &zero);
    /* a store written by another tool may lack the committed counts: add them before the first commit */
    if (H5Aexists(w->file, "n_rows") <= 0) attr_write(w->file, "n_rows", H5T_NATIVE_INT64, -1, &w->n_rows);
    if (H5Aexists(w->file, "n_clips") <= 0) attr_write(w->file, "n_clips", H5T_NATIVE_INT64, -1, &w->n_clips);
    commit(w);
    h5_unlock();
    LOG_INFO("%s: continuing after %" PRId64 " clips, %" PRId64 " rows", path, n_clips, n_rows);
    return w;
}

void musae_store_add_clip(musae_store_writer *w, const char *clip_path, int64_t n_frames, const float *const *acts) {
    MUSAE_ASSERT(n_frames >= 0 && n_frames <= INT32_MAX, "clip '%s': %lld frames", clip_path, (long long)n_frames);
    MUSAE_ASSERT(w->n_clips < INT32_MAX, "more than 2^31 clips");
    const int d = w->spec.d_model;
    const size_t n = (size_t)n_frames * (size_t)d, esz = musae_dtype_size(w->spec.dtype);
    if (n * esz > w->conv_cap) {
        w->conv = musae_xrealloc(w->conv, n * esz);
        w->conv_cap = n * esz;
    }
    if ((size_t)n_frames * sizeof(int32_t) > w->ibuf_cap) {
        w->ibuf = musae_xrealloc(w->ibuf, (size_t)n_frames * sizeof(int32_t));
        w->ibuf_cap = (size_t)n_frames * sizeof(int32_t);
    }
    /* convert and check every layer before writing anything: a failure leaves the last commit intact */
    for (int l = 0; l < w->spec.n_layers; l++) {
        int64_t overflow = 0, nonfinite = 0;
        const float *src = acts[l];
        for (size_t i = 0; i < n; i++) {
            float x = src[i];
            if (!isfinite(x)) nonfinite++;
            else if (w->spec.dtype == MUSAE_F16 && fabsf(x) > 65504.0f) overflow++;
        }
        if (overflow)
            musae_fail("%s: clip '%s', layer %d: %" PRId64 " values beyond the float16 range (|x| > 65504); "
                       "write a float32 store instead (--dtype f32)",
                       w->path, clip_path, w->spec.layers[l], overflow);
        if (nonfinite) {
            LOG_WARN("%s: clip '%s', layer %d: %" PRId64 " NaN/Inf values stored as they are", w->path, clip_path,
                     w->spec.layers[l], nonfinite);
            w->nonfinite += nonfinite;
        }
    }
    h5_lock();
    for (int l = 0; l < w->spec.n_layers; l++) {
        const void *buf = acts[l];
        if (w->spec.dtype == MUSAE_F16) {
            uint16_t *h = w->conv;
            for (size_t i = 0; i < n; i++) h[i] = musae_f32_to_f16(acts[l][i]);
            buf = h;
        }
        append_rows(w->acts[l], w->spec.dtype == MUSAE_F16 ? w->f16 : H5T_NATIVE_FLOAT, w->n_rows, n_frames,
                    (hsize_t)d, buf);
    }
    for (int64_t t = 0; t < n_frames; t++) w->ibuf[t] = (int32_t)w->n_clips;
    append_rows(w->fr_clip, H5T_NATIVE_INT32, w->n_rows, n_frames, 0, w->ibuf);
    for (int64_t t = 0; t < n_frames; t++) w->ibuf[t] = (int32_t)t;
    append_rows(w->fr_t, H5T_NATIVE_INT32, w->n_rows, n_frames, 0, w->ibuf);
    int32_t nf = (int32_t)n_frames;
    append_rows(w->cl_path, w->vstr, w->n_clips, 1, 0, &clip_path);
    append_rows(w->cl_nf, H5T_NATIVE_INT32, w->n_clips, 1, 0, &nf);
    append_rows(w->cl_off, H5T_NATIVE_INT64, w->n_clips, 1, 0, &w->n_rows);
    w->n_rows += n_frames;
    w->n_clips++;
    commit(w);
    h5_unlock();
    str_set_add(&w->paths, clip_path);
}

void musae_store_put_f32(musae_store_writer *w, const char *name, int rank, const int64_t *shape, const float *data) {
    MUSAE_ASSERT(rank >= 1 && rank <= 4 && name[0] == '/', "dataset '%s' rank %d", name, rank);
    h5_lock();
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    hsize_t dims[4];
    for (int i = 0; i < rank; i++) dims[i] = (hsize_t)shape[i];
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(w->file, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(d);
    H5_CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
    commit(w);
    h5_unlock();
}

int64_t musae_store_writer_rows(const musae_store_writer *w) { return w->n_rows; }
int64_t musae_store_writer_clips(const musae_store_writer *w) { return w->n_clips; }
int64_t musae_store_writer_nonfinite(const musae_store_writer *w) { return w->nonfinite; }
int musae_store_writer_has_clip(const musae_store_writer *w, const char *clip_path) {
    return str_set_has(&w->paths, clip_path);
}

void musae_store_close_writer(musae_store_writer *w, int complete) {
    h5_lock();
    int c = complete ? 1 : 0;
    attr_update(w->file, "complete", H5T_NATIVE_INT32, &c);
    commit(w);
    for (int l = 0; l < w->spec.n_layers; l++) H5Dclose(w->acts[l]);
    H5Dclose(w->fr_clip);
    H5Dclose(w->fr_t);
    H5Dclose(w->cl_path);
    H5Dclose(w->cl_nf);
    H5Dclose(w->cl_off);
    H5Tclose(w->f16);
    H5Tclose(w->vstr);
    H5_CHECK(H5Fclose(w->file));
    h5_unlock();
    str_set_free(&w->paths);
    free(w->conv);
    free(w->ibuf);
    free(w->path);
    free(w);
}

/* ---- reader ----------------------------------------------------------------------------------------------- */

struct musae_store {
    musae_store_info info;
    hid_t file;
    hid_t acts[MUSAE_STORE_MAX_LAYERS];
    hid_t mem_type; /* f16 raw (no conversion) or native float */
    int64_t extent; /* rows the datasets hold (>= n_rows) */
};

#define FAIL(...)                                                                                          \
    do {                                                                                                   \
        snprintf(err, errlen, __VA_ARGS__);                                                                \
        goto fail;                                                                                         \
    } while (0)

/* Checks a 1-D dataset holds at least n elements of an integer class; returns it open or -1. */
static hid_t open_1d(hid_t file, const char *name, int64_t n, H5T_class_t cls, char *err, size_t errlen,
                     const char *path) {
    hid_t d = H5Lexists(file, name, H5P_DEFAULT) > 0 ? H5Dopen2(file, name, H5P_DEFAULT) : -1;
    if (d < 0) {
        snprintf(err, errlen, "%s: missing dataset %s (not a musae activation store?)", path, name);
        return -1;
    }
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    int ok = rank == 1 && (int64_t)dims[0] >= n && H5Tget_class(t) == cls;
    H5Sclose(sp);
    H5Tclose(t);
    if (!ok) {
        snprintf(err, errlen, "%s: %s must be 1-D %s with at least %lld elements (got rank %d, %lld)", path, name,
                 cls == H5T_STRING ? "strings" : "integers", (long long)n, rank, (long long)dims[0]);
        H5Dclose(d);
        return -1;
    }
    return d;
}

musae_store *musae_store_open(const char *path, char *err, size_t errlen) {
    h5_lock();
    musae_store *s = musae_xcalloc(1, sizeof *s);
    musae_store_info *in = &s->info;
    hid_t d = -1;
    snprintf(in->path, sizeof in->path, "%s", path);
    s->file = -1;
    s->mem_type = -1;
    for (int l = 0; l < MUSAE_STORE_MAX_LAYERS; l++) s->acts[l] = -1;
    if (access(path, R_OK) != 0) FAIL("%s: cannot open: %s", path, strerror(errno));
    char why[700];
    if (musae_path_regular(path, "an HDF5 activation store", why, sizeof why)) FAIL("%s", why);
    if (H5Fis_hdf5(path) <= 0) {
        if (musae_store_is_hdf5(path)) FAIL("%s: HDF5 cannot read it (truncated or corrupt file?)", path);
        uint8_t head[256];
        FILE *f = fopen(path, "rb");
        const size_t n = f ? fread(head, 1, sizeof head, f) : 0;
        if (f) fclose(f);
        const char *kind = musae_file_kind(head, n);
        if (kind) FAIL("%s: not an HDF5 file (it looks like %s)", path, kind);
        FAIL("%s: not an HDF5 file", path);
    }
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) FAIL("%s: HDF5 cannot open it (truncated or corrupt file?)", path);
    if (attr_read_num(s->file, "d_model", H5T_NATIVE_INT, &in->d_model, 1) != 1 || in->d_model <= 0)
        FAIL("%s: root attribute d_model missing or invalid (not a musae activation store?)", path);
    in->n_layers = attr_read_num(s->file, "layers", H5T_NATIVE_INT, in->layers, MUSAE_STORE_MAX_LAYERS);
    if (in->n_layers <= 0) FAIL("%s: root attribute layers missing or invalid", path);
    if (attr_read_str(s->file, "model", in->model, sizeof in->model)) in->model[0] = 0;
    if (attr_read_str(s->file, "musae_version", in->musae_version, sizeof in->musae_version))
        snprintf(in->musae_version, sizeof in->musae_version, "?");
    if (attr_read_num(s->file, "frame_rate", H5T_NATIVE_DOUBLE, &in->frame_rate, 1) != 1) in->frame_rate = 0;
    if (attr_read_num(s->file, "complete", H5T_NATIVE_INT, &in->complete, 1) != 1) in->complete = 0;
    int have_rows = attr_read_num(s->file, "n_rows", H5T_NATIVE_INT64, &in->n_rows, 1) == 1;
    int have_clips = attr_read_num(s->file, "n_clips", H5T_NATIVE_INT64, &in->n_clips, 1) == 1;

    char name[64];
    int64_t extent = -1;
    for (int l = 0; l < in->n_layers; l++) {
        snprintf(name, sizeof name, "/layers/%d/acts", in->layers[l]);
        if (H5Lexists(s->file, "/layers", H5P_DEFAULT) <= 0 || H5Lexists(s->file, name, H5P_DEFAULT) <= 0 ||
            (s->acts[l] = H5Dopen2(s->file, name, H5P_DEFAULT)) < 0)
            FAIL("%s: root attribute layers lists %d but %s is missing", path, in->layers[l], name);
        hid_t sp = H5Dget_space(s->acts[l]), t = H5Dget_type(s->acts[l]), dcpl = H5Dget_create_plist(s->acts[l]);
        hsize_t dims[3] = {0, 0, 0}, chunk[2] = {0, 0};
        int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
        int chunked = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 2, chunk) == 2;
        musae_dtype dt = is_f16_type(t) ? MUSAE_F16
                         : (H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4) ? MUSAE_F32
                                                                                   : MUSAE_DTYPE_COUNT;
        H5Sclose(sp);
        H5Tclose(t);
        H5Pclose(dcpl);
        if (rank != 2 || (int64_t)dims[1] != in->d_model)
            FAIL("%s: %s must be [N, %d] (d_model), got rank %d [%lld, %lld]", path, name, in->d_model, rank,
                 (long long)dims[0], (long long)dims[1]);
        if (dt == MUSAE_DTYPE_COUNT) FAIL("%s: %s must be float16 or float32", path, name);
        if (l == 0) in->dtype = dt;
        else if (dt != in->dtype) FAIL("%s: %s is %s but layer %d is %s", path, name, musae_dtype_name(dt),
                                       in->layers[0], musae_dtype_name(in->dtype));
        if (chunked && (int64_t)chunk[1] != in->d_model)
            FAIL("%s: %s must be chunked along rows (chunk [C, %d]), got [%lld, %lld]", path, name, in->d_model,
                 (long long)chunk[0], (long long)chunk[1]);
        if (l == 0) in->chunk_rows = chunked ? (int64_t)chunk[0] : default_chunk_rows(in->d_model, dt);
        if (extent < 0 || (int64_t)dims[0] < extent) extent = (int64_t)dims[0];
    }
    s->extent = extent;
    if (!have_rows) in->n_rows = extent; /* written by another tool: trust the extents */
    if (in->n_rows < 0 || in->n_rows > extent)
        FAIL("%s: n_rows = %lld but the acts datasets hold %lld rows (truncated store?)", path, (long long)in->n_rows,
             (long long)extent);
    if ((d = open_1d(s->file, "/clips/offset", 0, H5T_INTEGER, err, errlen, path)) < 0) goto fail;
    if (!have_clips) {
        hid_t sp = H5Dget_space(d);
        in->n_clips = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
    }
    H5Dclose(d);
    d = -1;
    const char *need_rows[] = {"/frames/clip", "/frames/t"};
    for (int i = 0; i < 2; i++) {
        if ((d = open_1d(s->file, need_rows[i], in->n_rows, H5T_INTEGER, err, errlen, path)) < 0) goto fail;
        H5Dclose(d);
    }
    if ((d = open_1d(s->file, "/clips/path", in->n_clips, H5T_STRING, err, errlen, path)) < 0) goto fail;
    H5Dclose(d);
    in->clip_offset = musae_xmalloc(sizeof(int64_t) * (size_t)(in->n_clips + 1));
    in->clip_frames = musae_xmalloc(sizeof(int32_t) * (size_t)(in->n_clips + 1));
    const char *clipsets[] = {"/clips/offset", "/clips/n_frames"};
    for (int i = 0; i < 2; i++) {
        if ((d = open_1d(s->file, clipsets[i], in->n_clips, H5T_INTEGER, err, errlen, path)) < 0) goto fail;
        if (in->n_clips > 0) {
            hsize_t start[1] = {0}, cnt[1] = {(hsize_t)in->n_clips};
            hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, cnt, NULL);
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
            herr_t rc = H5Dread(d, i == 0 ? H5T_NATIVE_INT64 : H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT,
                                i == 0 ? (void *)in->clip_offset : (void *)in->clip_frames);
            H5Sclose(ms);
            H5Sclose(fs);
            if (rc < 0) FAIL("%s: cannot read %s (truncated or corrupt file?)", path, clipsets[i]);
        }
        H5Dclose(d);
        d = -1;
    }
    int64_t expect = 0;
    for (int64_t c = 0; c < in->n_clips; c++) {
        if (in->clip_offset[c] != expect || in->clip_frames[c] < 0)
            FAIL("%s: clip %lld has offset %lld and %d frames, expected offset %lld (clip table inconsistent)", path,
                 (long long)c, (long long)in->clip_offset[c], in->clip_frames[c], (long long)expect);
        expect += in->clip_frames[c];
    }
    if (expect != in->n_rows)
        FAIL("%s: the clip table covers %lld rows but the store has %lld", path, (long long)expect,
             (long long)in->n_rows);
    in->clip_offset[in->n_clips] = expect;
    s->mem_type = in->dtype == MUSAE_F16 ? f16_type() : H5Tcopy(H5T_NATIVE_FLOAT);
    h5_unlock();
    return s;
fail:
    if (d >= 0) H5Dclose(d);
    h5_unlock();
    musae_store_close(s);
    return NULL;
}
#undef FAIL

const musae_store_info *musae_store_get_info(const musae_store *s) { return &s->info; }

/* The hash part of a "<name>:<16 hex digits>" model id, or NULL. */
static const char *model_hash(const char *id) {
    const char *c = strrchr(id, ':');
    if (!c || strlen(c + 1) != 16) return NULL;
    for (const char *p = c + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return NULL;
    return c + 1;
}

int musae_store_same_model(const char *a, const char *b) {
    const char *ha = model_hash(a), *hb = model_hash(b);
    return ha && hb ? !strcmp(ha, hb) : !strcmp(a, b);
}

int musae_store_is_hdf5(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, 8, f) : 0;
    if (f) fclose(f);
    return got == 8 && !memcmp(head, sig, 8);
}

static herr_t describe_extra(hid_t obj, const char *name, const H5O_info_t *oi, void *out) {
    if (oi->type == H5O_TYPE_DATASET && strncmp(name, "layers/", 7) && strncmp(name, "frames/", 7) &&
        strncmp(name, "clips/", 6)) {
        hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hsize_t dims[4] = {0};
        int r = H5Sget_simple_extent_dims(sp, dims, NULL);
        fprintf(out, "extra      /%s [", name);
        for (int i = 0; i < r && i < 4; i++) fprintf(out, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        fprintf(out, "]\n");
        H5Sclose(sp);
        H5Dclose(d);
    }
    return 0;
}

void musae_store_describe(musae_store *s, FILE *out) {
    const musae_store_info *in = &s->info;
    struct stat sb;
    double gib = stat(in->path, &sb) == 0 ? (double)sb.st_size / (1 << 30) : 0;
    fprintf(out, "activation store %s (%.2f GiB, written by musae %s)\n", in->path, gib, in->musae_version);
    fprintf(out, "model      %s\n", in->model[0] ? in->model : "(unknown)");
    fprintf(out, "d_model    %d\n", in->d_model);
    fprintf(out, "layers     ");
    for (int l = 0; l < in->n_layers; l++) fprintf(out, "%s%d", l ? "," : "", in->layers[l]);
    fprintf(out, "\ndtype      %s, chunks of %lld rows\n", musae_dtype_name(in->dtype), (long long)in->chunk_rows);
    fprintf(out, "rows       %lld", (long long)in->n_rows);
    if (in->frame_rate > 0) fprintf(out, " (%.2f h of audio at %g frames/s)", (double)in->n_rows / in->frame_rate / 3600, in->frame_rate);
    fprintf(out, "\nclips      %lld", (long long)in->n_clips);
    if (in->n_clips > 0) {
        int32_t lo = in->clip_frames[0], hi = in->clip_frames[0];
        for (int64_t c = 1; c < in->n_clips; c++) {
            lo = in->clip_frames[c] < lo ? in->clip_frames[c] : lo;
            hi = in->clip_frames[c] > hi ? in->clip_frames[c] : hi;
        }
        char *first = musae_store_clip_path(s, 0);
        fprintf(out, " (%d..%d frames; first: %s)", lo, hi, first);
        free(first);
    }
    fprintf(out, "\ncomplete   %s\n", in->complete ? "yes" : "no (a writer is running, was killed, or stopped early)");
    h5_lock();
    H5Ovisit(s->file, H5_INDEX_NAME, H5_ITER_NATIVE, describe_extra, out);
    h5_unlock();
}

int musae_store_layer_index(const musae_store *s, int layer) {
    for (int l = 0; l < s->info.n_layers; l++)
        if (s->info.layers[l] == layer) return l;
    return -1;
}

/* Raw rows (storage dtype) of layer index li into out. */
static void read_raw(musae_store *s, int li, int64_t row0, int64_t n, void *out) {
    MUSAE_ASSERT(row0 >= 0 && n >= 0 && row0 + n <= s->info.n_rows, "rows [%lld, %lld) outside [0, %lld)",
                 (long long)row0, (long long)(row0 + n), (long long)s->info.n_rows);
    if (n == 0) return;
    h5_lock();
    hsize_t start[2] = {(hsize_t)row0, 0}, cnt[2] = {(hsize_t)n, (hsize_t)s->info.d_model};
    hid_t fs = H5Dget_space(s->acts[li]), ms = H5Screate_simple(2, cnt, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    herr_t rc = H5Dread(s->acts[li], s->mem_type, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    h5_unlock();
    if (rc < 0)
        musae_fail("%s: cannot read rows %lld..%lld of layer %d (truncated or corrupt file?)", s->info.path,
                   (long long)row0, (long long)(row0 + n), s->info.layers[li]);
}

static void raw_to_f32(musae_dtype dt, const void *raw, size_t n, float *out) {
    if (dt == MUSAE_F32) {
        memcpy(out, raw, n * sizeof(float));
        return;
    }
    const uint16_t *h = raw;
    for (size_t i = 0; i < n; i++) out[i] = musae_f16_to_f32(h[i]);
}

void musae_store_read_rows(musae_store *s, int layer, int64_t row0, int64_t n, float *out) {
    int li = musae_store_layer_index(s, layer);
    if (li < 0) musae_fail("%s: no layer %d (the store has %d layers)", s->info.path, layer, s->info.n_layers);
    size_t cnt = (size_t)n * (size_t)s->info.d_model;
    if (s->info.dtype == MUSAE_F32) {
        read_raw(s, li, row0, n, out);
        return;
    }
    uint16_t *tmp = musae_xmalloc(cnt * 2 + 1);
    read_raw(s, li, row0, n, tmp);
    raw_to_f32(MUSAE_F16, tmp, cnt, out);
    free(tmp);
}

char *musae_store_clip_path(musae_store *s, int64_t i) {
    MUSAE_ASSERT(i >= 0 && i < s->info.n_clips, "clip %lld of %lld", (long long)i, (long long)s->info.n_clips);
    h5_lock();
    hid_t d = H5Dopen2(s->file, "/clips/path", H5P_DEFAULT);
    H5_CHECK(d);
    hid_t t = vlen_str_type();
    hsize_t start[1] = {(hsize_t)i}, cnt[1] = {1};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, cnt, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    char *v = NULL;
    herr_t rc = H5Dread(d, t, ms, fs, H5P_DEFAULT, &v);
    char *out = musae_xstrdup(rc >= 0 && v ? v : "?");
    if (rc >= 0 && v) H5Dvlen_reclaim(t, ms, H5P_DEFAULT, &v);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    H5Dclose(d);
    h5_unlock();
    return out;
}

void musae_store_read_frames(musae_store *s, int64_t row0, int64_t n, int32_t *clip, int32_t *t) {
    MUSAE_ASSERT(row0 >= 0 && row0 + n <= s->info.n_rows, "rows [%lld, %lld)", (long long)row0, (long long)(row0 + n));
    if (n == 0) return;
    h5_lock();
    const char *names[2] = {"/frames/clip", "/frames/t"};
    int32_t *outs[2] = {clip, t};
    for (int i = 0; i < 2; i++) {
        hid_t d = H5Dopen2(s->file, names[i], H5P_DEFAULT);
        H5_CHECK(d);
        hsize_t start[1] = {(hsize_t)row0}, cnt[1] = {(hsize_t)n};
        hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, cnt, NULL);
        H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
        herr_t rc = H5Dread(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, outs[i]);
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(d);
        if (rc < 0) {
            h5_unlock();
            musae_fail("%s: cannot read %s (truncated or corrupt file?)", s->info.path, names[i]);
        }
    }
    h5_unlock();
}

float *musae_store_get_f32(musae_store *s, const char *name, int *rank, int64_t *shape) {
    h5_lock();
    float *out = NULL;
    /* H5Lexists fails (rather than returning 0) when an intermediate group is missing */
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s", name);
    int exists = 1;
    for (char *p = prefix + 1; *p && exists; p++)
        if (*p == '/') {
            *p = 0;
            exists = H5Lexists(s->file, prefix, H5P_DEFAULT) > 0;
            *p = '/';
        }
    if (exists && H5Lexists(s->file, name, H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(s->file, name, H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hsize_t dims[4];
        int r = H5Sget_simple_extent_dims(sp, dims, NULL);
        if (r >= 1 && r <= 4) {
            size_t n = 1;
            for (int i = 0; i < r; i++) {
                shape[i] = (int64_t)dims[i];
                n *= (size_t)dims[i];
            }
            *rank = r;
            out = musae_xmalloc(n * sizeof(float) + 1);
            if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
                free(out);
                out = NULL;
            }
        }
        H5Sclose(sp);
        H5Dclose(d);
    }
    h5_unlock();
    return out;
}

void musae_store_close(musae_store *s) {
    if (!s) return;
    h5_lock();
    for (int l = 0; l < MUSAE_STORE_MAX_LAYERS; l++)
        if (s->acts[l] >= 0) H5Dclose(s->acts[l]);
    if (s->mem_type >= 0) H5Tclose(s->mem_type);
    if (s->file >= 0) H5Fclose(s->file);
    h5_unlock();
    free(s->info.clip_offset);
    free(s->info.clip_frames);
    free(s);
}

/* ---- shuffled stream -------------------------------------------------------------------------------------- */

/* Philox streams of the reader (the seed is the caller's): */
#define STREAM_SPLIT 0x5350ull               /* clip c -> train/val, counter c */
#define STREAM_BLOCKS (1ull << 56)            /* | epoch: the order of chunks in an epoch */
#define STREAM_ROWS (2ull << 56)              /* | epoch << 24 | window: the order of rows in a window */

typedef struct {
    uint64_t seed, stream, ctr;
    musae_u32x4 buf;
    int left;
} rng_words;

static uint32_t rng_next(rng_words *r) {
    if (!r->left) {
        r->buf = musae_philox(r->seed, r->stream, r->ctr++);
        r->left = 4;
    }
    return r->buf.v[4 - r->left--];
}

/* Fisher–Yates with j = floor(u32 * (i+1) / 2^32): the same permutation on every machine. */
static void shuffle_i64(int64_t *a, int64_t n, uint64_t seed, uint64_t stream) {
    rng_words r = {seed, stream, 0, {{0, 0, 0, 0}}, 0};
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(((uint64_t)rng_next(&r) * (uint64_t)(i + 1)) >> 32);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

typedef struct {
    void *raw[MUSAE_STORE_MAX_LAYERS]; /* [rows, H] storage dtype */
    int64_t *order;                    /* [rows] row within raw, in delivery order */
    int64_t rows, skipped, epoch, window, seq;
    int state;                         /* 0 free, 1 ready, 2 end of stream */
} window_slot;

struct musae_stream {
    musae_store *s;
    musae_stream_opts o;
    int li[MUSAE_STORE_MAX_LAYERS];    /* store layer index of each requested layer */
    int64_t C, n_blocks, blocks_per_window, split_rows, n_nonempty;
    int64_t *range_first;              /* [n_blocks + 1] into ranges */
    int64_t (*ranges)[2];              /* split rows of each block as [row0, n) */
    int64_t *nonempty;                 /* blocks with split rows, in store order */
    int64_t windows_per_epoch;
    void *blockbuf;                    /* one chunk of one layer */
    window_slot slot[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* consumer */
    int64_t seq;                       /* window sequence number being consumed */
    musae_stream_pos pos;
};

static int clip_in_val(uint64_t split_seed, int64_t c, double frac) {
    return musae_u32_to_unit(musae_philox(split_seed, STREAM_SPLIT, (uint64_t)c).v[0]) < frac;
}

static int row_nonfinite(musae_dtype dt, const void *raw, int64_t r, int d) {
    if (dt == MUSAE_F16) {
        const uint16_t *h = (const uint16_t *)raw + r * d;
        for (int i = 0; i < d; i++)
            if ((h[i] & 0x7c00u) == 0x7c00u) return 1;
    } else {
        const uint32_t *f = (const uint32_t *)raw + r * d;
        for (int i = 0; i < d; i++)
            if ((f[i] & 0x7f800000u) == 0x7f800000u) return 1;
    }
    return 0;
}

static int64_t clip_of_row(const musae_store_info *in, int64_t row) {
    int64_t lo = 0, hi = in->n_clips - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (in->clip_offset[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Loads window `w` of epoch `e` into slot: the chunks, the non-finite filter, and the row order. */
static void load_window(musae_stream *st, window_slot *sl, int64_t e, int64_t w) {
    const musae_store_info *in = &st->s->info;
    const int d = in->d_model;
    const size_t esz = musae_dtype_size(in->dtype), rowb = (size_t)d * esz;
    int64_t *blocks = musae_xmalloc(sizeof(int64_t) * (size_t)st->n_nonempty);
    memcpy(blocks, st->nonempty, sizeof(int64_t) * (size_t)st->n_nonempty);
    if (st->o.shuffle) shuffle_i64(blocks, st->n_nonempty, st->o.seed, STREAM_BLOCKS | (uint64_t)e);
    int64_t b0 = w * st->blocks_per_window, b1 = b0 + st->blocks_per_window;
    if (b1 > st->n_nonempty) b1 = st->n_nonempty;
    int64_t rows = 0;
    for (int64_t bi = b0; bi < b1; bi++) {
        int64_t b = blocks[bi], r0 = b * st->C, nb = (r0 + st->C <= in->n_rows ? st->C : in->n_rows - r0);
        for (int l = 0; l < st->o.n_layers; l++) {
            read_raw(st->s, st->li[l], r0, nb, st->blockbuf);
            int64_t at = rows;
            for (int64_t k = st->range_first[b]; k < st->range_first[b + 1]; k++) {
                memcpy((uint8_t *)sl->raw[l] + (size_t)at * rowb, (uint8_t *)st->blockbuf + (size_t)(st->ranges[k][0] - r0) * rowb,
                       (size_t)st->ranges[k][1] * rowb);
                at += st->ranges[k][1];
            }
        }
        /* remember the store row of each window row only through the ranges: needed for error messages */
        int64_t at = rows;
        for (int64_t k = st->range_first[b]; k < st->range_first[b + 1]; k++)
            for (int64_t r = 0; r < st->ranges[k][1]; r++) sl->order[at++] = st->ranges[k][0] + r;
        rows = at;
    }
    free(blocks);
    /* order[] holds store rows; turn it into window rows that pass the non-finite filter */
    int64_t kept = 0;
    for (int64_t r = 0; r < rows; r++) {
        int bad = 0;
        for (int l = 0; l < st->o.n_layers && !bad; l++) bad = row_nonfinite(in->dtype, sl->raw[l], r, d);
        if (bad && !st->o.skip_nonfinite) {
            int64_t row = sl->order[r], c = clip_of_row(in, row);
            char *p = musae_store_clip_path(st->s, c);
            musae_fail("%s: row %lld (clip %lld '%s', frame %lld) holds NaN/Inf; pass --skip-nonfinite to skip such "
                       "rows (they are counted)",
                       in->path, (long long)row, (long long)c, p, (long long)(row - in->clip_offset[c]));
        }
        if (!bad) sl->order[kept++] = r;
    }
    sl->skipped = rows - kept;
    sl->rows = kept;
    if (st->o.shuffle)
        shuffle_i64(sl->order, kept, st->o.seed, STREAM_ROWS | ((uint64_t)e << 24) | (uint64_t)w);
    sl->epoch = e;
    sl->window = w;
}

static void *producer(void *arg) {
    musae_stream *st = arg;
    int64_t e = st->o.start.epoch, w = st->o.start.window;
    for (int64_t seq = 0;; seq++) {
        window_slot *sl = &st->slot[seq & 1];
        pthread_mutex_lock(&st->mu);
        while (sl->state != 0 && !st->stop) pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
        if (st->stop) break;
        int end = 0;
        if (w >= st->windows_per_epoch) {
            if (!st->o.loop) end = 1;
            e++;
            w = 0;
        }
        if (!end) load_window(st, sl, e, w);
        sl->seq = seq;
        pthread_mutex_lock(&st->mu);
        sl->state = end ? 2 : 1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        if (end) break;
        w++;
    }
    return NULL;
}

musae_stream *musae_stream_open(musae_store *s, const musae_stream_opts *o) {
    const musae_store_info *in = &s->info;
    musae_stream *st = musae_xcalloc(1, sizeof *st);
    st->s = s;
    st->o = *o;
    MUSAE_ASSERT(o->n_layers >= 1 && o->n_layers <= MUSAE_STORE_MAX_LAYERS, "%d layers", o->n_layers);
    for (int l = 0; l < o->n_layers; l++) {
        st->li[l] = musae_store_layer_index(s, o->layers[l]);
        if (st->li[l] < 0) {
            char have[512] = "";
            for (int i = 0; i < in->n_layers; i++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%d", i ? "," : "", in->layers[i]);
            musae_fail("%s: no layer %d in the store (it holds layers %s)", in->path, o->layers[l], have);
        }
    }
    /* which clips are in the split */
    uint8_t *in_split = musae_xcalloc((size_t)in->n_clips + 1, 1);
    int any_val = 0;
    for (int64_t c = 0; c < in->n_clips; c++) any_val |= clip_in_val(o->split_seed, c, o->val_fraction);
    for (int64_t c = 0; c < in->n_clips; c++) {
        int val = clip_in_val(o->split_seed, c, o->val_fraction) ||
                  (!any_val && o->val_fraction > 0 && in->n_clips >= 2 && c == in->n_clips - 1);
        in_split[c] = o->split == MUSAE_SPLIT_ALL || (o->split == MUSAE_SPLIT_VAL) == val;
    }
    /* per chunk, the row ranges of the split (clips are contiguous and in row order) */
    st->C = in->chunk_rows;
    st->n_blocks = (in->n_rows + st->C - 1) / st->C;
    st->range_first = musae_xcalloc((size_t)st->n_blocks + 1, sizeof(int64_t));
    size_t cap = (size_t)st->n_blocks + (size_t)in->n_clips + 1;
    st->ranges = musae_xmalloc(cap * sizeof *st->ranges);
    st->nonempty = musae_xmalloc(sizeof(int64_t) * ((size_t)st->n_blocks + 1));
    int64_t nr = 0, c = 0;
    for (int64_t b = 0; b < st->n_blocks; b++) {
        int64_t r0 = b * st->C, r1 = r0 + st->C < in->n_rows ? r0 + st->C : in->n_rows, before = nr;
        st->range_first[b] = nr;
        while (c < in->n_clips && in->clip_offset[c + 1] <= r0) c++;
        for (int64_t cc = c; cc < in->n_clips && in->clip_offset[cc] < r1; cc++) {
            if (!in_split[cc]) continue;
            int64_t a = in->clip_offset[cc] > r0 ? in->clip_offset[cc] : r0;
            int64_t z = in->clip_offset[cc + 1] < r1 ? in->clip_offset[cc + 1] : r1;
            if (z <= a) continue;
            if (nr > before && st->ranges[nr - 1][0] + st->ranges[nr - 1][1] == a) st->ranges[nr - 1][1] += z - a;
            else {
                MUSAE_ASSERT((size_t)nr < cap, "range table overflow");
                st->ranges[nr][0] = a;
                st->ranges[nr][1] = z - a;
                nr++;
            }
            st->split_rows += z - a;
        }
        if (nr > before) st->nonempty[st->n_nonempty++] = b;
    }
    st->range_first[st->n_blocks] = nr;
    free(in_split);
    if (st->split_rows == 0)
        musae_fail("%s: the %s split is empty (%lld clips, val fraction %g)", in->path,
                   o->split == MUSAE_SPLIT_VAL ? "validation" : "training", (long long)in->n_clips, o->val_fraction);
    st->blocks_per_window = o->window_rows > st->C ? o->window_rows / st->C : 1;
    /* a window larger than the split is the whole split: that bounds the buffers by the store, whatever was asked */
    if (st->blocks_per_window > st->n_nonempty) st->blocks_per_window = st->n_nonempty;
    st->windows_per_epoch = (st->n_nonempty + st->blocks_per_window - 1) / st->blocks_per_window;
    const size_t rowb = (size_t)in->d_model * musae_dtype_size(in->dtype);
    const size_t wrows = (size_t)(st->blocks_per_window * st->C);
    /* two windows (the one read, the one consumed) per layer, plus the row order: refuse what the machine cannot
     * hold rather than let an allocation abort or the OOM killer end the run */
    const double need = 2.0 * (double)wrows * ((double)rowb * o->n_layers + sizeof(int64_t));
    const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if (phys > 0 && need > 0.8 * phys)
        musae_fail("%s: a shuffle window of %lld rows needs %.1f GiB (2 windows x %d layer(s) x %zu bytes a row), "
                   "more than 80%% of this machine's %.1f GiB: lower --shuffle-rows", in->path, (long long)wrows,
                   need / 1073741824.0, o->n_layers, rowb, phys / 1073741824.0);
    st->blockbuf = musae_xmalloc((size_t)st->C * rowb);
    for (int i = 0; i < 2; i++) {
        for (int l = 0; l < o->n_layers; l++) st->slot[i].raw[l] = musae_xmalloc(wrows * rowb);
        st->slot[i].order = musae_xmalloc(wrows * sizeof(int64_t));
    }
    st->pos = o->start;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->thread, NULL, producer, st)) musae_fail("cannot start the prefetch thread");
    return st;
}

int64_t musae_stream_next(musae_stream *st, int64_t n, float *const *out) {
    const musae_store_info *in = &st->s->info;
    const int d = in->d_model;
    const size_t esz = musae_dtype_size(in->dtype);
    int64_t got = 0;
    while (got < n) {
        window_slot *sl = &st->slot[st->seq & 1];
        pthread_mutex_lock(&st->mu);
        while (sl->state == 0) pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
        if (sl->state == 2) break;
        st->pos.epoch = sl->epoch;
        st->pos.window = sl->window;
        int64_t take = sl->rows - st->pos.offset;
        if (take > n - got) take = n - got;
        for (int l = 0; l < st->o.n_layers; l++) {
            float *dst = out[l] + (size_t)got * d;
            const uint8_t *raw = sl->raw[l];
            const int64_t *ord = sl->order + st->pos.offset;
#pragma omp parallel for schedule(static) if (take * d > 65536)
            for (int64_t r = 0; r < take; r++)
                raw_to_f32(in->dtype, raw + (size_t)ord[r] * d * esz, (size_t)d, dst + (size_t)r * d);
        }
        got += take;
        st->pos.offset += take;
        st->pos.delivered += take;
        if (st->pos.offset == sl->rows) { /* window done: hand the slot back to the producer */
            st->pos.skipped += sl->skipped;
            pthread_mutex_lock(&st->mu);
            sl->state = 0;
            pthread_cond_broadcast(&st->cv);
            pthread_mutex_unlock(&st->mu);
            st->seq++;
            st->pos.offset = 0;
            st->pos.window++;
            if (st->pos.window >= st->windows_per_epoch) {
                st->pos.window = 0;
                st->pos.epoch++;
            }
        }
    }
    return got;
}

musae_stream_pos musae_stream_tell(const musae_stream *st) { return st->pos; }
int64_t musae_stream_split_rows(const musae_stream *st) { return st->split_rows; }

void musae_stream_close(musae_stream *st) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    for (int i = 0; i < 2; i++) {
        for (int l = 0; l < st->o.n_layers; l++) free(st->slot[i].raw[l]);
        free(st->slot[i].order);
    }
    free(st->blockbuf);
    free(st->range_first);
    free(st->ranges);
    free(st->nonempty);
    free(st);
}
