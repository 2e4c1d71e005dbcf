/* The activation store's validating reader (store.h: musae_store_open and the reads of rows, frames, clips and
 * extra arrays, the description and the fingerprint); split from store.c, whose HDF5 lock, failure and helpers it
 * reaches through store_int.h. One of the files that include hdf5.h. */
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/h5_int.h"
#include "host/io/path.h"
#include "host/io/store_h5.h"
#include "host/io/store_int.h"

/* Whether t is store.c's float16 file type (h5py's numpy float16: sign 15, exponent 10..14, mantissa 0..9, bias
 * 15, little-endian). */
static int is_f16_type(hid_t t) {
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 2) return 0;
    if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(t) == 15 &&
           H5Tget_order(t) == H5T_ORDER_LE;
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
    const int rc = musae_h5_read_attr_str(a, out, cap);
    H5Aclose(a);
    return rc;
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

/* The first source file of a virtual dataset that cannot be read, into out ("" when all can): a relative name is
 * relative to the virtual file's folder, as HDF5 resolves it. */
static void virtual_sources_missing(const char *path, hid_t dcpl, char *out, size_t cap) {
    size_t n = 0;
    out[0] = 0;
    if (H5Pget_virtual_count(dcpl, &n) < 0) return;
    const char *slash = strrchr(path, '/');
    const int dlen = slash ? (int)(slash - path + 1) : 0;
    char name[4096], full[8300];
    for (size_t i = 0; i < n && !out[0]; i++) {
        if (H5Pget_virtual_filename(dcpl, i, name, sizeof name) < 0) continue;
        if (!strcmp(name, ".")) continue;
        snprintf(full, sizeof full, "%.*s%s", name[0] == '/' ? 0 : dlen, path, name);
        if (access(full, R_OK) != 0) snprintf(out, cap, "%s (%s)", full, strerror(errno));
    }
}

musae_store *musae_store_open(const char *path, char *err, size_t errlen) {
    store_h5_lock(path);
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
        char host[256];
        long pid;
        if (musae_store_lock_holder(path, &pid, host, sizeof host) == 0)
            FAIL("%s: HDF5 cannot read it yet; it is in use by PID %ld on %s, which is writing it", path, pid, host);
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
    if (s->file < 0) {
        char host[256];
        long pid;
        if (musae_store_lock_holder(path, &pid, host, sizeof host) == 0)
            FAIL("%s: HDF5 cannot open it; it is in use by PID %ld on %s, which is writing it (HDF5 lets no reader "
                 "in meanwhile)", path, pid, host);
        char why[400];
        store_h5_reason(why, sizeof why);
        FAIL("%s: HDF5 cannot open it (%s: truncated or corrupt file?)", path, why);
    }
    if (attr_read_num(s->file, "d_model", H5T_NATIVE_INT, &in->d_model, 1) != 1 || in->d_model <= 0)
        FAIL("%s: root attribute d_model missing or invalid (not a musae activation store?)", path);
    in->n_layers = attr_read_num(s->file, "layers", H5T_NATIVE_INT, in->layers, MUSAE_STORE_MAX_LAYERS);
    if (in->n_layers <= 0) FAIL("%s: root attribute layers missing or invalid", path);
    if (attr_read_str(s->file, "model", in->model, sizeof in->model)) in->model[0] = 0;
    if (attr_read_str(s->file, "musae_version", in->musae_version, sizeof in->musae_version))
        snprintf(in->musae_version, sizeof in->musae_version, "?");
    if (attr_read_str(s->file, "cpu_arith", in->cpu_arith, sizeof in->cpu_arith)) in->cpu_arith[0] = 0;
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
        const int virt = H5Pget_layout(dcpl) == H5D_VIRTUAL;
        char missing[4200] = "";
        if (virt) virtual_sources_missing(path, dcpl, missing, sizeof missing);
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
        if (missing[0])
            FAIL("%s: %s maps rows of %s, which cannot be read (a sharded store needs its shards beside it: "
                 "docs/STORE.md)", path, name, missing);
        if (l == 0) in->dtype = dt;
        else if (dt != in->dtype) FAIL("%s: %s is %s but layer %d is %s", path, name, musae_dtype_name(dt),
                                       in->layers[0], musae_dtype_name(in->dtype));
        if (chunked && (int64_t)chunk[1] != in->d_model)
            FAIL("%s: %s must be chunked along rows (chunk [C, %d]), got [%lld, %lld]", path, name, in->d_model,
                 (long long)chunk[0], (long long)chunk[1]);
        /* a joined (virtual) store has no chunks of its own: it names its shards' */
        int64_t vchunk = 0;
        if (l == 0 && virt && attr_read_num(s->file, "chunk_rows", H5T_NATIVE_INT64, &vchunk, 1) == 1 && vchunk > 0)
            in->chunk_rows = vchunk;
        else if (l == 0) in->chunk_rows = chunked ? (int64_t)chunk[0] : musae_store_default_chunk_rows(in->d_model, dt);
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
    s->mem_type = in->dtype == MUSAE_F16 ? store_h5_f16_type() : H5Tcopy(H5T_NATIVE_FLOAT);
    store_h5_unlock();
    return s;
fail:
    if (d >= 0) H5Dclose(d);
    store_h5_unlock();
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
    if (in->cpu_arith[0]) fprintf(out, "cpu_arith  %s\n", in->cpu_arith);
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
    store_h5_lock(in->path);
    int shards = 0;
    if (attr_read_num(s->file, "shards", H5T_NATIVE_INT, &shards, 1) == 1)
        fprintf(out, "sharded    the joined view of %d shard(s) in %s.shards/ (their size is not in the GiB above)\n",
                shards, in->path);
    H5Ovisit(s->file, H5_INDEX_NAME, H5_ITER_NATIVE, describe_extra, out);
    store_h5_unlock();
}

int musae_store_layer_index(const musae_store *s, int layer) {
    for (int l = 0; l < s->info.n_layers; l++)
        if (s->info.layers[l] == layer) return l;
    return -1;
}

void musae_store_read_raw(musae_store *s, int li, int64_t row0, int64_t n, void *out) {
    MUSAE_ASSERT(row0 >= 0 && n >= 0 && row0 + n <= s->info.n_rows, "rows [%lld, %lld) outside [0, %lld)",
                 (long long)row0, (long long)(row0 + n), (long long)s->info.n_rows);
    if (n == 0) return;
    store_h5_lock(s->info.path);
    hsize_t start[2] = {(hsize_t)row0, 0}, cnt[2] = {(hsize_t)n, (hsize_t)s->info.d_model};
    hid_t fs = H5Dget_space(s->acts[li]), ms = H5Screate_simple(2, cnt, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    herr_t rc = H5Dread(s->acts[li], s->mem_type, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    store_h5_unlock();
    if (rc < 0)
        musae_fail("%s: cannot read rows %lld..%lld of layer %d (truncated or corrupt file?)", s->info.path,
                   (long long)row0, (long long)(row0 + n), s->info.layers[li]);
}

void musae_store_raw_to_f32(musae_dtype dt, const void *raw, size_t n, float *out) {
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
        musae_store_read_raw(s, li, row0, n, out);
        return;
    }
    uint16_t *tmp = musae_xmalloc(cnt * 2 + 1);
    musae_store_read_raw(s, li, row0, n, tmp);
    musae_store_raw_to_f32(MUSAE_F16, tmp, cnt, out);
    free(tmp);
}

/* Element i of a 1-D string dataset (malloc'd; `if_null` for an element never written, "?" when unreadable), or
 * NULL when the dataset is absent or shorter than i + 1. */
static char *read_clip_str(musae_store *s, const char *name, int64_t i, const char *if_null) {
    MUSAE_ASSERT(i >= 0 && i < s->info.n_clips, "clip %lld of %lld", (long long)i, (long long)s->info.n_clips);
    store_h5_lock(s->info.path);
    if (H5Lexists(s->file, name, H5P_DEFAULT) <= 0) {
        store_h5_unlock();
        return NULL;
    }
    hid_t d = H5Dopen2(s->file, name, H5P_DEFAULT);
    H5_CHECK(d);
    hsize_t ext[1] = {0};
    hid_t space = H5Dget_space(d);
    hid_t dtype = H5Dget_type(d);
    const int ok = H5Sget_simple_extent_ndims(space) == 1 && H5Sget_simple_extent_dims(space, ext, NULL) == 1 &&
                   (int64_t)ext[0] > i && H5Tget_class(dtype) == H5T_STRING;
    H5Tclose(dtype);
    H5Sclose(space);
    if (!ok) {
        H5Dclose(d);
        store_h5_unlock();
        return NULL;
    }
    hid_t t = musae_h5_vlen_str_type();
    hsize_t start[1] = {(hsize_t)i}, cnt[1] = {1};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, cnt, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
    char *v = NULL;
    herr_t rc = H5Dread(d, t, ms, fs, H5P_DEFAULT, &v);
    char *out = musae_xstrdup(rc < 0 ? "?" : v ? v : if_null);
    if (rc >= 0 && v) H5Dvlen_reclaim(t, ms, H5P_DEFAULT, &v);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(t);
    H5Dclose(d);
    store_h5_unlock();
    return out;
}

char *musae_store_clip_path(musae_store *s, int64_t i) {
    char *p = read_clip_str(s, "/clips/path", i, "?");
    return p ? p : musae_xstrdup("?");
}

char *musae_store_clip_caption(musae_store *s, int64_t i) { return read_clip_str(s, "/clips/caption", i, ""); }

/* n strings of a 1-D vlen-string dataset into malloc'd copies (NULL entries stay NULL: the dataset is absent or
 * shorter; HDF5's NULL becomes ""). */
static void read_strs(musae_store *s, const char *name, int64_t n, char **out) {
    if (H5Lexists(s->file, name, H5P_DEFAULT) <= 0) return;
    hid_t d = H5Dopen2(s->file, name, H5P_DEFAULT);
    H5_CHECK(d);
    if (store_h5_extent(d) < n) {
        H5Dclose(d);
        return;
    }
    char **v = musae_xcalloc((size_t)n + 1, sizeof(char *));
    hid_t t = musae_h5_vlen_str_type();
    store_h5_read_1d(d, t, n, v);
    for (int64_t i = 0; i < n; i++) out[i] = musae_xstrdup(v[i] ? v[i] : "");
    if (n > 0) {
        hsize_t cnt[1] = {(hsize_t)n};
        hid_t ms = H5Screate_simple(1, cnt, NULL);
        H5Dvlen_reclaim(t, ms, H5P_DEFAULT, v);
        H5Sclose(ms);
    }
    free(v);
    H5Tclose(t);
    H5Dclose(d);
}

static void read_i64s(musae_store *s, const char *name, int64_t n, int64_t *out) {
    if (H5Lexists(s->file, name, H5P_DEFAULT) <= 0) return;
    hid_t d = H5Dopen2(s->file, name, H5P_DEFAULT);
    H5_CHECK(d);
    if (store_h5_extent(d) >= n) store_h5_read_1d(d, H5T_NATIVE_INT64, n, out);
    H5Dclose(d);
}

musae_clip_id *musae_store_clip_ids(musae_store *s) {
    const int64_t n = s->info.n_clips;
    musae_clip_id *ids = musae_xcalloc((size_t)n + 1, sizeof *ids);
    char **names = musae_xcalloc((size_t)n + 1, sizeof(char *)), **files = musae_xcalloc((size_t)n + 1, sizeof(char *));
    char **caps = musae_xcalloc((size_t)n + 1, sizeof(char *));
    int64_t *size = musae_xcalloc((size_t)n + 1, sizeof(int64_t)), *mtime = musae_xcalloc((size_t)n + 1, sizeof(int64_t));
    store_h5_lock(s->info.path);
    read_strs(s, "/clips/path", n, names);
    read_strs(s, "/clips/file", n, files);
    read_strs(s, "/clips/caption", n, caps);
    read_i64s(s, "/clips/file_size", n, size);
    read_i64s(s, "/clips/file_mtime_ns", n, mtime);
    store_h5_unlock();
    for (int64_t i = 0; i < n; i++)
        ids[i] = (musae_clip_id){names[i] ? names[i] : musae_xstrdup("?"), files[i] ? files[i] : musae_xstrdup(""),
                                 files[i] ? size[i] : -1, files[i] ? mtime[i] : 0, caps[i]};
    free(names), free(files), free(caps), free(size), free(mtime);
    return ids;
}

void musae_clip_ids_free(musae_clip_id *ids, int64_t n) {
    for (int64_t i = 0; ids && i < n; i++) free(ids[i].name), free(ids[i].file), free(ids[i].caption);
    free(ids);
}

void musae_store_read_frames(musae_store *s, int64_t row0, int64_t n, int32_t *clip, int32_t *t) {
    MUSAE_ASSERT(row0 >= 0 && row0 + n <= s->info.n_rows, "rows [%lld, %lld)", (long long)row0, (long long)(row0 + n));
    if (n == 0) return;
    store_h5_lock(s->info.path);
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
            store_h5_unlock();
            musae_fail("%s: cannot read %s (truncated or corrupt file?)", s->info.path, names[i]);
        }
    }
    store_h5_unlock();
}

float *musae_store_get_f32(musae_store *s, const char *name, int *rank, int64_t *shape) {
    store_h5_lock(s->info.path);
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
    store_h5_unlock();
    return out;
}

static uint64_t fnv1a_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t musae_store_fingerprint(musae_store *s) {
    const musae_store_info *in = &s->info;
    uint64_t h = 1469598103934665603ull;
    h = fnv1a_bytes(h, in->model, strlen(in->model) + 1);
    h = fnv1a_bytes(h, &in->d_model, sizeof in->d_model);
    h = fnv1a_bytes(h, in->layers, sizeof(int) * (size_t)in->n_layers);
    h = fnv1a_bytes(h, &in->dtype, sizeof in->dtype);
    h = fnv1a_bytes(h, &in->n_rows, sizeof in->n_rows);
    h = fnv1a_bytes(h, &in->n_clips, sizeof in->n_clips);
    h = fnv1a_bytes(h, in->clip_frames, sizeof(int32_t) * (size_t)in->n_clips);
    store_h5_lock(in->path);
    if (in->n_clips > 0) { /* the clip names, in one read */
        char **names = musae_xcalloc((size_t)in->n_clips, sizeof(char *));
        hid_t d = H5Dopen2(s->file, "/clips/path", H5P_DEFAULT), t = musae_h5_vlen_str_type();
        H5_CHECK(d);
        hsize_t start[1] = {0}, cnt[1] = {(hsize_t)in->n_clips};
        hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, cnt, NULL);
        H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL));
        H5_CHECK(H5Dread(d, t, ms, fs, H5P_DEFAULT, names));
        for (int64_t c = 0; c < in->n_clips; c++) h = fnv1a_bytes(h, names[c] ? names[c] : "", names[c] ? strlen(names[c]) + 1 : 1);
        H5Dvlen_reclaim(t, ms, H5P_DEFAULT, names);
        H5Sclose(ms);
        H5Sclose(fs);
        H5Tclose(t);
        H5Dclose(d);
        free(names);
    }
    store_h5_unlock();
    /* and a sample of the rows: the first and the last few of every layer */
    const int64_t k = in->n_rows < 64 ? in->n_rows : 64, bytes = k * in->d_model * (int64_t)musae_dtype_size(in->dtype);
    void *buf = musae_xmalloc((size_t)bytes + 1);
    for (int l = 0; l < in->n_layers && k > 0; l++) {
        musae_store_read_raw(s, l, 0, k, buf);
        h = fnv1a_bytes(h, buf, (size_t)bytes);
        musae_store_read_raw(s, l, in->n_rows - k, k, buf);
        h = fnv1a_bytes(h, buf, (size_t)bytes);
    }
    free(buf);
    return h;
}

void musae_store_close(musae_store *s) {
    if (!s) return;
    store_h5_lock(s->info.path);
    for (int l = 0; l < MUSAE_STORE_MAX_LAYERS; l++)
        if (s->acts[l] >= 0) H5Dclose(s->acts[l]);
    if (s->mem_type >= 0) H5Tclose(s->mem_type);
    if (s->file >= 0) H5Fclose(s->file);
    store_h5_unlock();
    free(s->info.clip_offset);
    free(s->info.clip_frames);
    free(s);
}
