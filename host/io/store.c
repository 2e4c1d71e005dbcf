/* The HDF5 activation store's writer (store.h has the layout and the crash-safety argument; the HDF5 lock, failure
 * and helpers are store_h5.c, the validating reader store_read.c, the shuffled prefetching stream store_stream.c).
 * HDF5 is included only here, in store_h5.c, store_read.c,
 * store_join.c (the joined view of a sharded store), host/io/h5.c and descriptors_io.c. */
#include "host/io/store.h"

#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/h5.h"
#include "host/io/h5_int.h"
#include "host/io/store_h5.h"
#include "host/io/store_int.h"
#include "host/io/path.h"

/* ---- writer ----------------------------------------------------------------------------------------------- */

/* A string → int64 map (open addressing, at most half full): clip names, clip keys, source files. */
typedef struct {
    char **keys;
    int64_t *vals;
    size_t cap, n;
} str_set;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The value of s, or -1 when absent. */
static int64_t str_set_get(const str_set *set, const char *s) {
    if (!set->cap) return -1;
    for (size_t i = fnv1a(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (!set->keys[i]) return -1;
        if (!strcmp(set->keys[i], s)) return set->vals[i];
    }
}
static int str_set_has(const str_set *set, const char *s) { return str_set_get(set, s) >= 0; }
/* Adds s with value v unless s is there already. */
static void str_set_put(str_set *set, const char *s, int64_t v) {
    if (str_set_has(set, s)) return;
    if (2 * (set->n + 1) > set->cap) {
        const size_t cap = set->cap ? 2 * set->cap : 1024;
        str_set big = {musae_xcalloc(cap, sizeof(char *)), musae_xcalloc(cap, sizeof(int64_t)), cap, 0};
        for (size_t i = 0; i < set->cap; i++)
            if (set->keys[i]) {
                size_t j = fnv1a(set->keys[i]) & (big.cap - 1);
                while (big.keys[j]) j = (j + 1) & (big.cap - 1);
                big.keys[j] = set->keys[i];
                big.vals[j] = set->vals[i];
                big.n++;
            }
        free(set->keys);
        free(set->vals);
        *set = big;
    }
    size_t j = fnv1a(s) & (set->cap - 1);
    while (set->keys[j]) j = (j + 1) & (set->cap - 1);
    set->keys[j] = musae_xstrdup(s);
    set->vals[j] = v;
    set->n++;
}
static void str_set_add(str_set *set, const char *s) { str_set_put(set, s, 0); }
static void str_set_free(str_set *set) {
    for (size_t i = 0; i < set->cap; i++) free(set->keys[i]);
    free(set->keys);
    free(set->vals);
}

/* A source file the store holds clips of: its identity when captured and the name its first clip got. */
typedef struct {
    int64_t size, mtime_ns;
    char *name; /* the first clip's name up to its '#' */
} source_rec;

struct musae_store_writer {
    char *path;
    musae_store_spec spec;
    hid_t file, f16, vstr;
    hid_t acts[MUSAE_STORE_MAX_LAYERS];
    hid_t fr_clip, fr_t, cl_path, cl_nf, cl_off;
    hid_t cl_caption; /* /clips/caption, or -1: the store keeps no captions */
    int64_t n_rows, n_clips, nonfinite;
    int64_t c_rows, c_clips;  /* as of the last commit */
    int failed;               /* a musae_store_try_add_clip failed */
    int64_t fr_chunk, cl_chunk; /* rows per chunk of /frames/... and /clips/... */
    int fd;                   /* the file, for fallocate (HDF5 keeps its own descriptor) */
    int64_t reserved_from;    /* below this, every byte HDF5 may rewrite is already allocated on disk */
    str_set paths;            /* clip names */
    hid_t cl_file, cl_fsize, cl_fmtime; /* the source file identity of each clip */
    str_set keys;             /* "<source file>#<fragment>" of every clip that has a source file */
    str_set files;            /* source file → index into srcs */
    str_set anon;             /* names of the clips without a source file (matched by name, as before) */
    source_rec *srcs;
    int64_t n_srcs, cap_srcs;
    int64_t extra_reserve;    /* bytes the next commit writes beyond the usual (a migration) */
    void *conv;      /* one clip of one layer in the storage dtype */
    int32_t *ibuf;   /* frame indices of one clip */
    size_t conv_cap, ibuf_cap;
};

static void writer_lock(musae_store_writer *w) { store_h5_lock_writer(w->path, &w->c_clips); }

static int64_t default_chunk_rows(int d, musae_dtype dt) {
    int64_t c = 1;
    while (c * 2 * d * (int64_t)musae_dtype_size(dt) <= (1 << 20)) c *= 2;
    return c;
}

/* Chunking of the per-row and per-clip datasets (rows per chunk). */
enum { FRAMES_CHUNK = 16384, CLIPS_CHUNK = 1024 };
/* Room for metadata HDF5 may allocate while flushing (B-tree nodes, heap collections; a few KiB in practice). */
#define RESERVE_MARGIN ((int64_t)256 << 10)

/* File bytes of the chunks of a dataset (C rows per chunk, `row` bytes per row) that hold rows since the last
 * commit and were never written: HDF5 allocates them only when it flushes them. */
static int64_t new_chunk_bytes(int64_t before, int64_t now, int64_t C, int64_t row) {
    if (now <= before) return 0;
    const int64_t first = (before + C - 1) / C, last = (now - 1) / C;
    return last >= first ? (last - first + 1) * C * row : 0;
}

MUSAE_NORETURN static void writer_fail(const musae_store_writer *w, const char *why) {
    store_fail("%s: %s; the store keeps the %lld clip(s) committed before, continue it once the cause is fixed",
               w->path, why, (long long)w->c_clips);
}

/* Makes sure the disk holds every byte the next flush can write, before anything of it is written.
 *
 * H5Fflush writes the new chunks, then rewrites metadata in place and appends new metadata. On a full disk
 * the in-place writes (which need no new blocks) succeed and the appends fail, leaving committed counts that
 * point at clip table entries never written. So the blocks up to the end of the allocated space plus the
 * chunks the flush will allocate plus a margin are reserved first (fallocate, file size unchanged); when that
 * fails, nothing has been written and the file is still as of the last commit. Where the file system cannot
 * fallocate, its free space is checked instead. */
static void reserve(musae_store_writer *w) {
    haddr_t eoa = 0;
    H5_CHECK(H5Fget_eoa(w->file, &eoa));
    const int64_t esz = (int64_t)musae_dtype_size(w->spec.dtype);
    int64_t fresh = RESERVE_MARGIN;
    fresh += w->spec.n_layers * new_chunk_bytes(w->c_rows, w->n_rows, w->spec.chunk_rows, w->spec.d_model * esz);
    fresh += new_chunk_bytes(w->c_rows, w->n_rows, w->fr_chunk, 2 * 4);
    /* per clip: path and source file (heap ids), frames, offset, source size and mtime */
    fresh += new_chunk_bytes(w->c_clips, w->n_clips, w->cl_chunk, 16 + 4 + 8 + 16 + 8 + 8) + w->extra_reserve;
    const int64_t end = (int64_t)eoa + fresh, from = w->reserved_from < end ? w->reserved_from : end;
    if (fallocate(w->fd, FALLOC_FL_KEEP_SIZE, from, end - from) == 0) return;
    if (errno != EOPNOTSUPP && errno != ENOSYS) {
        char why[300];
        snprintf(why, sizeof why, "%s (reserving %.1f MiB for the next commit)", strerror(errno), (double)fresh / (1 << 20));
        writer_fail(w, why);
    }
    struct stat sb;
    struct statvfs fs;
    if (fstat(w->fd, &sb) == 0 && fstatvfs(w->fd, &fs) == 0) {
        const int64_t have = (int64_t)sb.st_blocks * 512, avail = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize;
        if (end - have > avail) writer_fail(w, strerror(ENOSPC));
    }
}

/* Two flushes, so a SIGKILL inside either leaves a readable store. One flush writes its metadata in pieces: a
 * writer killed between the root header (the counts) and a dataset's header (its extent) left counts past the
 * datasets ("n_rows = 698 but the acts datasets hold 684 rows"; test_store's kill rounds, about 1 run in 10 on
 * a loaded host). So the chunks and extents go first, under the old counts, which every extent covers; then
 * the counts alone, rewritten in place in the root's header. */
static void commit(musae_store_writer *w) {
    reserve(w);
    H5_CHECK(H5Fflush(w->file, H5F_SCOPE_GLOBAL));
    store_h5_attr_update(w->file, "n_rows", H5T_NATIVE_INT64, &w->n_rows);
    store_h5_attr_update(w->file, "n_clips", H5T_NATIVE_INT64, &w->n_clips);
    H5_CHECK(H5Fflush(w->file, H5F_SCOPE_GLOBAL));
    w->c_rows = w->n_rows;
    w->c_clips = w->n_clips;
    w->extra_reserve = 0;
    /* what lies more than a few MiB below the end was written by a flush; only the tail (aggregator blocks HDF5
     * hands out piecewise) may still hold unwritten holes */
    haddr_t eoa = 0;
    H5_CHECK(H5Fget_eoa(w->file, &eoa));
    w->reserved_from = (int64_t)eoa > ((int64_t)4 << 20) ? (int64_t)eoa - ((int64_t)4 << 20) : 0;
}

/* Rows per chunk of a 1-D dataset (1 when it is not chunked: then every write is allocated as it happens). */
static int64_t chunk_rows_of(hid_t d) {
    hid_t dcpl = H5Dget_create_plist(d);
    hsize_t c[1] = {1};
    if (dcpl < 0 || H5Pget_layout(dcpl) != H5D_CHUNKED || H5Pget_chunk(dcpl, 1, c) != 1) c[0] = 1;
    if (dcpl >= 0) H5Pclose(dcpl);
    return (int64_t)c[0];
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
    w->cl_caption = -1;
    if (H5Lexists(w->file, "/clips/caption", H5P_DEFAULT) > 0)
        H5_CHECK(w->cl_caption = H5Dopen2(w->file, "/clips/caption", H5P_DEFAULT));
    /* absent in stores written before clips had source identities: musae_store_append adds them */
    w->cl_file = w->cl_fsize = w->cl_fmtime = -1;
    if (H5Lexists(w->file, "/clips/file", H5P_DEFAULT) > 0) {
        H5_CHECK(w->cl_file = H5Dopen2(w->file, "/clips/file", H5P_DEFAULT));
        H5_CHECK(w->cl_fsize = H5Dopen2(w->file, "/clips/file_size", H5P_DEFAULT));
        H5_CHECK(w->cl_fmtime = H5Dopen2(w->file, "/clips/file_mtime_ns", H5P_DEFAULT));
    }
    w->fr_chunk = chunk_rows_of(w->fr_clip);
    w->cl_chunk = chunk_rows_of(w->cl_path);
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

/* ---- source files: a clip is keyed by its file's canonical path and fragment, with the file's size and mtime */

/* The fragment of a clip name ("#t=0,10"), "" when it has none. */
static const char *fragment_of(const char *name) {
    const char *h = strrchr(name, '#');
    return h ? h : "";
}

static void clip_key(const char *file, const char *name, char **buf, size_t *cap) {
    const size_t n = strlen(file) + strlen(fragment_of(name)) + 1;
    if (n > *cap) *buf = musae_xrealloc(*buf, *cap = n);
    snprintf(*buf, n, "%s%s", file, fragment_of(name));
}

/* Remembers that clip `name` came from source `file` (canonical; "" for none). */
static void note_source(musae_store_writer *w, const char *file, int64_t size, int64_t mtime_ns, const char *name) {
    if (!file[0]) {
        str_set_add(&w->anon, name);
        return;
    }
    char *key = NULL;
    size_t cap = 0;
    clip_key(file, name, &key, &cap);
    str_set_add(&w->keys, key);
    free(key);
    if (str_set_has(&w->files, file)) return;
    if (w->n_srcs == w->cap_srcs) {
        w->cap_srcs = w->cap_srcs ? 2 * w->cap_srcs : 64;
        w->srcs = musae_xrealloc(w->srcs, (size_t)w->cap_srcs * sizeof *w->srcs);
    }
    const size_t base = strlen(name) - strlen(fragment_of(name));
    w->srcs[w->n_srcs] = (source_rec){size, mtime_ns, musae_xstrdup(name)};
    w->srcs[w->n_srcs].name[base] = 0;
    str_set_put(&w->files, file, w->n_srcs++);
}

/* The source identities of the clips a store holds (names: their names). Clips without one (the store predates
 * /clips/file, or an older musae appended to it) get it now: the file their name resolves to against the
 * current folder (where a capture is resumed from), with its size and mtime as of now; names that do not
 * resolve get none. Runs after the extents were cut back to the committed counts. */
static void load_sources(musae_store_writer *w, char **names) {
    const int64_t n = w->n_clips;
    hsize_t dims[1] = {0}, c2[1] = {CLIPS_CHUNK};
    int64_t have = 0;
    if (w->cl_file < 0) {
        hid_t g = H5Gopen2(w->file, "/clips", H5P_DEFAULT);
        H5_CHECK(g);
        H5_CHECK(w->cl_file = store_h5_make_dataset(g, "file", w->vstr, 1, dims, c2));
        H5_CHECK(w->cl_fsize = store_h5_make_dataset(g, "file_size", H5T_STD_I64LE, 1, dims, c2));
        H5_CHECK(w->cl_fmtime = store_h5_make_dataset(g, "file_mtime_ns", H5T_STD_I64LE, 1, dims, c2));
        H5Gclose(g);
    } else {
        have = store_h5_extent(w->cl_file);
        have = store_h5_extent(w->cl_fsize) < have ? store_h5_extent(w->cl_fsize) : have;
        have = store_h5_extent(w->cl_fmtime) < have ? store_h5_extent(w->cl_fmtime) : have;
        have = have < n ? have : n;
    }
    char **files = musae_xcalloc((size_t)n + 1, sizeof(char *));
    int64_t *size = musae_xcalloc((size_t)n + 1, sizeof(int64_t)), *mtime = musae_xcalloc((size_t)n + 1, sizeof(int64_t));
    store_h5_read_1d(w->cl_file, w->vstr, have, files);
    store_h5_read_1d(w->cl_fsize, H5T_NATIVE_INT64, have, size);
    store_h5_read_1d(w->cl_fmtime, H5T_NATIVE_INT64, have, mtime);
    int64_t found = 0;
    for (int64_t i = have; i < n; i++) {
        musae_clip_source s = {0};
        char *base = musae_xstrdup(names[i]);
        base[strlen(base) - strlen(fragment_of(base))] = 0;
        files[i] = musae_clip_source_of(base, &s) == 0 ? (char *)s.file : musae_xstrdup("");
        size[i] = files[i][0] ? s.size : -1;
        mtime[i] = files[i][0] ? s.mtime_ns : 0;
        found += files[i][0] != 0;
        free(base);
    }
    for (int64_t i = 0; i < n; i++) note_source(w, files[i] ? files[i] : "", size[i], mtime[i], names[i]);
    if (have < n) {
        store_h5_append_rows(w->cl_file, w->vstr, have, n - have, 0, files + have);
        store_h5_append_rows(w->cl_fsize, H5T_NATIVE_INT64, have, n - have, 0, size + have);
        store_h5_append_rows(w->cl_fmtime, H5T_NATIVE_INT64, have, n - have, 0, mtime + have);
        w->extra_reserve = ((n - have) / CLIPS_CHUNK + 2) * CLIPS_CHUNK * 32 + (n - have) * 64; /* chunks, strings */
        LOG_INFO("%s: recorded the source file (canonical path, size, mtime) of %lld of its %lld clips that had "
                 "none", w->path, (long long)found, (long long)(n - have));
    }
    if (have > 0) {
        hsize_t cnt[1] = {(hsize_t)have};
        hid_t ms = H5Screate_simple(1, cnt, NULL);
        H5Dvlen_reclaim(w->vstr, ms, H5P_DEFAULT, files);
        H5Sclose(ms);
    }
    for (int64_t i = have; i < n; i++) free(files[i]);
    free(files);
    free(size);
    free(mtime);
}

int musae_clip_source_of(const char *path, musae_clip_source *src) {
    char real[PATH_MAX];
    struct stat sb;
    if (!realpath(path, real) || stat(real, &sb) != 0) return -1;
    src->file = musae_xstrdup(real);
    src->size = (int64_t)sb.st_size;
    src->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    return 0;
}

int musae_store_writer_source(const musae_store_writer *w, const char *file, musae_clip_source *have, const char **name) {
    const int64_t i = str_set_get(&w->files, file);
    if (i < 0) return 0;
    have->file = file;
    have->size = w->srcs[i].size;
    have->mtime_ns = w->srcs[i].mtime_ns;
    *name = w->srcs[i].name;
    return 1;
}

int musae_store_writer_has_source_clip(const musae_store_writer *w, const char *file, const char *clip_name) {
    char *key = NULL;
    size_t cap = 0;
    clip_key(file, clip_name, &key, &cap);
    const int r = str_set_has(&w->keys, key) || str_set_has(&w->anon, clip_name);
    free(key);
    return r;
}

void musae_store_writer_note_clip(musae_store_writer *w, const musae_clip_id *id) {
    str_set_add(&w->paths, id->name);
    note_source(w, id->file ? id->file : "", id->size, id->mtime_ns, id->name);
}

/* An extra f32 dataset (e.g. "/truth/directions"), parent groups created; reaches the file at the next commit. */
static void write_f32(musae_store_writer *w, const char *name, int rank, const int64_t *shape, const float *data) {
    MUSAE_ASSERT(rank >= 1 && rank <= 4 && name[0] == '/', "dataset '%s' rank %d", name, rank);
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
}

/* Opens the writer's own descriptor of the file (for fallocate). */
static void writer_open_fd(musae_store_writer *w, const char *file) {
    w->fd = open(file, O_RDWR | O_CLOEXEC);
    if (w->fd < 0) musae_fail("%s: cannot open for writing: %s", w->path, strerror(errno));
}

/* Renames the finished temporary file into place without replacing anything but an empty file. */
static void publish(const char *tmp, const char *path, int replace_empty) {
    if (replace_empty || link(tmp, path) != 0) {
        if (!replace_empty && errno == EEXIST) musae_fail("%s: created by someone else meanwhile", path);
        /* file systems without hard links: the lock keeps other musae writers out */
        if (rename(tmp, path) != 0) musae_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    } else unlink(tmp);
}

musae_store_writer *musae_store_create(const char *path, const musae_store_spec *spec) {
    check_spec(spec);
    musae_store_lock(path);
    struct stat sb;
    const int replace_empty = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0;
    if (replace_empty) LOG_WARN("%s: an empty file, left by a failed creation: replacing it", path);
    else if (stat(path, &sb) == 0) {
        musae_store_unlock(path);
        musae_fail("%s: already exists (continue it with append/resume, or remove it)", path);
    }
    /* built under a temporary name and renamed into place once its first commit is on disk: a failure on the
     * way (a full disk) leaves nothing behind, and the store, once there, is always valid */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.creating", path);
    unlink(tmp); /* a killed creation's leftover: we hold the lock */
    musae_store_remove_at_exit(tmp);
    musae_store_writer *w = musae_xcalloc(1, sizeof *w);
    w->path = musae_xstrdup(path);
    w->spec = *spec;
    if (!w->spec.chunk_rows) w->spec.chunk_rows = default_chunk_rows(spec->d_model, spec->dtype);
    writer_lock(w);
    hid_t fapl = store_h5_writer_fapl();
    w->file = H5Fcreate(tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (w->file < 0) {
        char why[400];
        store_h5_reason(why, sizeof why);
        store_h5_unlock();
        musae_fail("%s: cannot create the activation store: %s", path, errno ? strerror(errno) : why);
    }
    writer_open_fd(w, tmp);
    w->f16 = store_h5_f16_type();
    w->vstr = musae_h5_vlen_str_type();
    const int d = spec->d_model;
    store_h5_attr_str(w->file, "model", spec->model ? spec->model : "");
    store_h5_attr_write(w->file, "d_model", H5T_NATIVE_INT32, -1, &d);
    store_h5_attr_write(w->file, "frame_rate", H5T_NATIVE_DOUBLE, -1, &spec->frame_rate);
    store_h5_attr_write(w->file, "layers", H5T_NATIVE_INT, spec->n_layers, spec->layers);
    store_h5_attr_str(w->file, "musae_version", MUSAE_VERSION);
    if (spec->cpu_arith) store_h5_attr_str(w->file, "cpu_arith", spec->cpu_arith);
    int zero = 0;
    int64_t zero64 = 0;
    store_h5_attr_write(w->file, "complete", H5T_NATIVE_INT32, -1, &zero);
    /* the committed counts, rewritten in place by every commit */
    store_h5_attr_write(w->file, "n_rows", H5T_NATIVE_INT64, -1, &zero64);
    store_h5_attr_write(w->file, "n_clips", H5T_NATIVE_INT64, -1, &zero64);

    hid_t g = H5Gcreate2(w->file, "/layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(g);
    H5Gclose(g);
    char name[64];
    hsize_t dims[2] = {0, (hsize_t)d}, chunk[2] = {(hsize_t)w->spec.chunk_rows, (hsize_t)d};
    for (int l = 0; l < spec->n_layers; l++) {
        snprintf(name, sizeof name, "/layers/%d", spec->layers[l]);
        H5_CHECK(g = H5Gcreate2(w->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        hid_t ds = store_h5_make_dataset(g, "acts", spec->dtype == MUSAE_F16 ? w->f16 : H5T_IEEE_F32LE, 2, dims, chunk);
        store_h5_attr_str(ds, "dtype_source", spec->dtype_source ? spec->dtype_source : "f32");
        H5Dclose(ds);
        H5Gclose(g);
    }
    hsize_t c1[1] = {FRAMES_CHUNK}, c2[1] = {CLIPS_CHUNK};
    H5_CHECK(g = H5Gcreate2(w->file, "/frames", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Dclose(store_h5_make_dataset(g, "clip", H5T_STD_I32LE, 1, dims, c1));
    H5Dclose(store_h5_make_dataset(g, "t", H5T_STD_I32LE, 1, dims, c1));
    H5Gclose(g);
    H5_CHECK(g = H5Gcreate2(w->file, "/clips", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Dclose(store_h5_make_dataset(g, "path", w->vstr, 1, dims, c2));
    H5Dclose(store_h5_make_dataset(g, "n_frames", H5T_STD_I32LE, 1, dims, c2));
    H5Dclose(store_h5_make_dataset(g, "offset", H5T_STD_I64LE, 1, dims, c2));
    if (spec->captions) H5Dclose(store_h5_make_dataset(g, "caption", w->vstr, 1, dims, c2));
    H5Dclose(store_h5_make_dataset(g, "file", w->vstr, 1, dims, c2));
    H5Dclose(store_h5_make_dataset(g, "file_size", H5T_STD_I64LE, 1, dims, c2));
    H5Dclose(store_h5_make_dataset(g, "file_mtime_ns", H5T_STD_I64LE, 1, dims, c2));
    H5Gclose(g);
    writer_open_datasets(w);
    if (spec->extra_name) write_f32(w, spec->extra_name, spec->extra_rank, spec->extra_shape, spec->extra_data);
    commit(w);
    store_h5_unlock();
    publish(tmp, path, replace_empty);
    musae_store_remove_at_exit(NULL);
    return w;
}

musae_store_writer *musae_store_append(const char *path, const musae_store_spec *spec) {
    check_spec(spec);
    musae_store_lock(path);
    /* HDF5 does not say why it cannot open a file for writing: ask the system first (read-only file system,
     * permissions, an immutable file), before anything is allocated that a refusal would leave behind */
    const int fd = open(path, O_RDWR);
    if (fd < 0) musae_fail("%s: cannot open the activation store for writing: %s", path, strerror(errno));
    close(fd);
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
    char **names = musae_xcalloc((size_t)n_clips + 1, sizeof(char *));
    for (int64_t i = 0; i < n_clips; i++) {
        names[i] = musae_store_clip_path(r, i);
        str_set_add(&w->paths, names[i]);
    }
    musae_store_close(r);

    writer_lock(w);
    hid_t fapl = store_h5_writer_fapl();
    w->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (w->file < 0) {
        char why[400];
        store_h5_reason(why, sizeof why);
        store_h5_unlock();
        for (int64_t i = 0; i < n_clips; i++) free(names[i]);
        free(names); /* the refusal exits: nothing of the writer may stay unreachable (LSan) */
        musae_fail("%s: cannot open the activation store for writing: %s", path, access(path, W_OK) ? strerror(errno) : why);
    }
    /* A writer killed inside a flush can leave metadata written past the end of allocation its superblock
     * records (the superblock goes last), and the next allocation would then overlap it ("addr overflow" at
     * the first flush). The allocation end is moved to the file's end, so what a flush wrote stays owned. */
    H5_CHECK(H5Fincrement_filesize(w->file, 0));
    writer_open_fd(w, path);
    w->f16 = store_h5_f16_type();
    w->vstr = musae_h5_vlen_str_type();
    writer_open_datasets(w);
    w->n_rows = w->c_rows = n_rows;
    w->n_clips = w->c_clips = n_clips;
    /* cut back whatever a killed writer left past the committed counts */
    hsize_t ext[2] = {(hsize_t)n_rows, (hsize_t)spec->d_model};
    for (int l = 0; l < spec->n_layers; l++) H5_CHECK(H5Dset_extent(w->acts[l], ext));
    H5_CHECK(H5Dset_extent(w->fr_clip, ext));
    H5_CHECK(H5Dset_extent(w->fr_t, ext));
    ext[0] = (hsize_t)n_clips;
    H5_CHECK(H5Dset_extent(w->cl_path, ext));
    H5_CHECK(H5Dset_extent(w->cl_nf, ext));
    H5_CHECK(H5Dset_extent(w->cl_off, ext));
    if (spec->captions && w->cl_caption < 0) { /* a store from before captions were kept: earlier clips get none */
        const hsize_t c2[1] = {1024};
        hid_t g = H5Gopen2(w->file, "/clips", H5P_DEFAULT);
        H5_CHECK(g);
        H5Dclose(store_h5_make_dataset(g, "caption", w->vstr, 1, (hsize_t[]){0}, c2));
        H5Gclose(g);
        H5_CHECK(w->cl_caption = H5Dopen2(w->file, "/clips/caption", H5P_DEFAULT));
    }
    if (w->cl_caption >= 0) H5_CHECK(H5Dset_extent(w->cl_caption, ext));
    if (w->cl_file >= 0 && store_h5_extent(w->cl_file) > n_clips) { /* a killed writer's tail */
        H5_CHECK(H5Dset_extent(w->cl_file, ext));
        H5_CHECK(H5Dset_extent(w->cl_fsize, ext));
        H5_CHECK(H5Dset_extent(w->cl_fmtime, ext));
    }
    load_sources(w, names);
    for (int64_t i = 0; i < n_clips; i++) free(names[i]);
    free(names);
    int zero = 0;
    store_h5_attr_write(w->file, "complete", H5T_NATIVE_INT32, -1, &zero);
    /* a store written by another tool may lack the committed counts: add them before the first commit */
    if (H5Aexists(w->file, "n_rows") <= 0) store_h5_attr_write(w->file, "n_rows", H5T_NATIVE_INT64, -1, &w->n_rows);
    if (H5Aexists(w->file, "n_clips") <= 0) store_h5_attr_write(w->file, "n_clips", H5T_NATIVE_INT64, -1, &w->n_clips);
    commit(w);
    store_h5_unlock();
    LOG_INFO("%s: continuing after %" PRId64 " clips, %" PRId64 " rows", path, n_clips, n_rows);
    return w;
}

static void add_clip(musae_store_writer *w, const char *clip_path, const musae_clip_source *src, int64_t n_frames,
                     const float *const *acts) {
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
            store_fail("%s: clip '%s', layer %d: %" PRId64 " values beyond the float16 range (|x| > 65504); "
                       "write a float32 store instead (--dtype f32)",
                       w->path, clip_path, w->spec.layers[l], overflow);
        if (nonfinite) {
            LOG_WARN("%s: clip '%s', layer %d: %" PRId64 " NaN/Inf values stored as they are", w->path, clip_path,
                     w->spec.layers[l], nonfinite);
            w->nonfinite += nonfinite;
        }
    }
    writer_lock(w);
    for (int l = 0; l < w->spec.n_layers; l++) {
        const void *buf = acts[l];
        if (w->spec.dtype == MUSAE_F16) {
            uint16_t *h = w->conv;
            for (size_t i = 0; i < n; i++) h[i] = musae_f32_to_f16(acts[l][i]);
            buf = h;
        }
        store_h5_append_rows(w->acts[l], w->spec.dtype == MUSAE_F16 ? w->f16 : H5T_NATIVE_FLOAT, w->n_rows, n_frames,
                    (hsize_t)d, buf);
    }
    for (int64_t t = 0; t < n_frames; t++) w->ibuf[t] = (int32_t)w->n_clips;
    store_h5_append_rows(w->fr_clip, H5T_NATIVE_INT32, w->n_rows, n_frames, 0, w->ibuf);
    for (int64_t t = 0; t < n_frames; t++) w->ibuf[t] = (int32_t)t;
    store_h5_append_rows(w->fr_t, H5T_NATIVE_INT32, w->n_rows, n_frames, 0, w->ibuf);
    int32_t nf = (int32_t)n_frames;
    store_h5_append_rows(w->cl_path, w->vstr, w->n_clips, 1, 0, &clip_path);
    store_h5_append_rows(w->cl_nf, H5T_NATIVE_INT32, w->n_clips, 1, 0, &nf);
    store_h5_append_rows(w->cl_off, H5T_NATIVE_INT64, w->n_clips, 1, 0, &w->n_rows);
    const char *file = src ? src->file : "";
    const int64_t fsize = src ? src->size : -1, fmtime = src ? src->mtime_ns : 0;
    store_h5_append_rows(w->cl_file, w->vstr, w->n_clips, 1, 0, &file);
    store_h5_append_rows(w->cl_fsize, H5T_NATIVE_INT64, w->n_clips, 1, 0, &fsize);
    store_h5_append_rows(w->cl_fmtime, H5T_NATIVE_INT64, w->n_clips, 1, 0, &fmtime);
    if (w->cl_caption >= 0) {
        const char *cap = src && src->caption ? src->caption : "";
        store_h5_append_rows(w->cl_caption, w->vstr, w->n_clips, 1, 0, &cap);
    }
    w->n_rows += n_frames;
    w->n_clips++;
    commit(w);
    store_h5_unlock();
    str_set_add(&w->paths, clip_path);
    note_source(w, file, fsize, fmtime, clip_path);
}

void musae_store_add_clip(musae_store_writer *w, const char *clip_path, int64_t n_frames, const float *const *acts) {
    add_clip(w, clip_path, NULL, n_frames, acts);
}

int musae_store_try_add_clip(musae_store_writer *w, const char *clip_path, const musae_clip_source *src, int64_t n_frames,
                             const float *const *acts, char *err, size_t errlen) {
    if (w->failed) {
        snprintf(err, errlen, "%s: the writer failed before", w->path);
        return -1;
    }
    jmp_buf jb;
    const int depth = store_h5_soft_begin(&jb, err, errlen);
    if (setjmp(jb)) {
        store_h5_soft_unwind(depth);
        w->failed = 1; /* its HDF5 state is unknown: nothing more reaches the file */
        return -1;
    }
    add_clip(w, clip_path, src, n_frames, acts);
    store_h5_soft_end();
    return 0;
}

void musae_store_put_f32(musae_store_writer *w, const char *name, int rank, const int64_t *shape, const float *data) {
    writer_lock(w);
    write_f32(w, name, rank, shape, data);
    commit(w);
    store_h5_unlock();
}

int64_t musae_store_writer_rows(const musae_store_writer *w) { return w->n_rows; }
int64_t musae_store_writer_clips(const musae_store_writer *w) { return w->n_clips; }
int64_t musae_store_writer_nonfinite(const musae_store_writer *w) { return w->nonfinite; }
int musae_store_writer_has_clip(const musae_store_writer *w, const char *clip_path) {
    return str_set_has(&w->paths, clip_path);
}

static void writer_release(musae_store_writer *w);

void musae_store_close_writer(musae_store_writer *w, int complete) {
    writer_lock(w);
    int c = complete ? 1 : 0;
    store_h5_attr_update(w->file, "complete", H5T_NATIVE_INT32, &c);
    commit(w);
    for (int l = 0; l < w->spec.n_layers; l++) H5Dclose(w->acts[l]);
    H5Dclose(w->fr_clip);
    H5Dclose(w->fr_t);
    H5Dclose(w->cl_path);
    H5Dclose(w->cl_nf);
    H5Dclose(w->cl_off);
    if (w->cl_caption >= 0) H5Dclose(w->cl_caption);
    H5Dclose(w->cl_file);
    H5Dclose(w->cl_fsize);
    H5Dclose(w->cl_fmtime);
    H5Tclose(w->f16);
    H5Tclose(w->vstr);
    H5_CHECK(H5Fclose(w->file));
    store_h5_unlock();
    writer_release(w);
}

void musae_store_discard_writer(musae_store_writer *w) {
    if (w) writer_release(w); /* its HDF5 ids stay open: nothing more may reach the file, not even a close */
}

/* What a writer holds outside HDF5: the descriptor, the lock file, the memory. */
static void writer_release(musae_store_writer *w) {
    close(w->fd);
    musae_store_unlock(w->path);
    str_set_free(&w->paths);
    str_set_free(&w->keys);
    str_set_free(&w->files);
    str_set_free(&w->anon);
    for (int64_t i = 0; i < w->n_srcs; i++) free(w->srcs[i].name);
    free(w->srcs);
    free(w->conv);
    free(w->ibuf);
    free(w->path);
    free(w);
}


int64_t musae_store_default_chunk_rows(int d, musae_dtype dt) { return default_chunk_rows(d, dt); }
