/* The joined view of a sharded store (store.h, musae_store_join; docs/STORE.md "Sharded stores"): one HDF5 file
 * whose /layers/<L>/acts and /frames/t are virtual datasets over clip ranges of the shards, and whose
 * /frames/clip and clip table are real copies (a virtual dataset maps data and cannot add the offset that makes
 * a shard's clip indices global; the clip table is a few bytes per clip, the rows are kilobytes). */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/store_h5.h"
#include "host/io/store_int.h"

static void attr_str(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5_CHECK(H5Tset_size(t, strlen(s) + 1));
    H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8));
    store_h5_attr_write(obj, name, t, -1, s);
    H5Tclose(t);
}

/* A real 1-D dataset of n elements (contiguous: it is written once, whole). */
static void put_1d(hid_t file, const char *name, hid_t ftype, hid_t mtype, int64_t n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(d);
    if (n > 0) H5_CHECK(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(d);
    H5Sclose(sp);
}

/* A virtual dataset `name` of [rows, width] (width 0: 1-D) of type ftype, mapping each segment's rows. */
static void put_virtual(hid_t file, const char *name, hid_t ftype, int64_t rows, int64_t width,
                        const musae_store_segment *segs, int n_segs, const char *const *rel,
                        const musae_store_info *const *in) {
    const int rank = width > 0 ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)width};
    hid_t vs = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int64_t at = 0;
    for (int i = 0; i < n_segs; i++) {
        const musae_store_info *si = in[segs[i].shard];
        const int64_t r0 = si->clip_offset[segs[i].clip0];
        const int64_t n = si->clip_offset[segs[i].clip0 + segs[i].n_clips] - r0;
        if (n == 0) continue;
        hsize_t sdims[2] = {(hsize_t)si->n_rows, (hsize_t)width}, s0[2] = {(hsize_t)r0, 0}, d0[2] = {(hsize_t)at, 0};
        hsize_t cnt[2] = {(hsize_t)n, (hsize_t)width};
        hid_t ss = H5Screate_simple(rank, sdims, NULL);
        H5_CHECK(H5Sselect_hyperslab(ss, H5S_SELECT_SET, s0, NULL, cnt, NULL));
        H5_CHECK(H5Sselect_hyperslab(vs, H5S_SELECT_SET, d0, NULL, cnt, NULL));
        H5_CHECK(H5Pset_virtual(dcpl, vs, rel[segs[i].shard], name, ss));
        H5Sclose(ss);
        at += n;
    }
    MUSAE_ASSERT(at == rows, "%s: segments map %lld rows of %lld", name, (long long)at, (long long)rows);
    H5Sselect_none(vs);
    hid_t d = H5Dcreate2(file, name, ftype, vs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(vs);
}

void musae_store_join(const char *path, const char *const *shards, int n_shards, const musae_store_segment *segs,
                      int n_segs, int complete) {
    MUSAE_ASSERT(n_shards >= 1, "a join of no shards");
    char err[1200];
    musae_store **st = musae_xcalloc((size_t)n_shards, sizeof *st);
    const musae_store_info **in = musae_xcalloc((size_t)n_shards, sizeof *in);
    musae_clip_id **ids = musae_xcalloc((size_t)n_shards, sizeof *ids);
    char **rel = musae_xcalloc((size_t)n_shards, sizeof *rel);
    const char *slash = strrchr(path, '/');
    const size_t dlen = slash ? (size_t)(slash - path + 1) : 0;
    for (int i = 0; i < n_shards; i++) {
        if (!(st[i] = musae_store_open(shards[i], err, sizeof err))) musae_fail("%s", err);
        in[i] = musae_store_get_info(st[i]);
        ids[i] = musae_store_clip_ids(st[i]);
        /* the name the joined file records: relative to its own folder, so the store and its shards move together */
        MUSAE_ASSERT(!strncmp(shards[i], path, dlen), "shard %s is not beside %s", shards[i], path);
        rel[i] = musae_xstrdup(shards[i] + dlen);
        const musae_store_info *a = in[0], *b = in[i];
        if (strcmp(a->model, b->model) || a->d_model != b->d_model || a->n_layers != b->n_layers ||
            memcmp(a->layers, b->layers, sizeof(int) * (size_t)a->n_layers) || a->dtype != b->dtype)
            musae_fail("%s: its shards %s and %s hold different models, layers or dtypes", path, shards[0], shards[i]);
        if (strcmp(a->cpu_arith, b->cpu_arith))
            musae_fail("%s: its shards %s and %s were computed with other CPU arithmetic (%s, %s): a rank on a host "
                       "with AMX and one without; run every rank with MUSAE_ISA=avx512 (fma-fp32)", path, shards[0],
                       shards[i], a->cpu_arith[0] ? a->cpu_arith : "none recorded", b->cpu_arith[0] ? b->cpu_arith : "none recorded");
    }
    int64_t rows = 0, clips = 0;
    for (int i = 0; i < n_segs; i++) {
        const musae_store_segment *g = &segs[i];
        MUSAE_ASSERT(g->shard >= 0 && g->shard < n_shards && g->clip0 >= 0 && g->clip0 + g->n_clips <= in[g->shard]->n_clips,
                     "segment %d out of its shard", i);
        clips += g->n_clips;
        rows += in[g->shard]->clip_offset[g->clip0 + g->n_clips] - in[g->shard]->clip_offset[g->clip0];
    }
    /* the clip table and /frames/clip, global */
    const int captions = ids[0] && n_shards > 0 && in[0]->n_clips > 0 ? ids[0][0].caption != NULL : 0;
    const char **names = musae_xcalloc((size_t)clips + 1, sizeof(char *)), **files = musae_xcalloc((size_t)clips + 1, sizeof(char *));
    const char **caps = musae_xcalloc((size_t)clips + 1, sizeof(char *));
    int64_t *off = musae_xcalloc((size_t)clips + 1, sizeof(int64_t)), *fsize = musae_xcalloc((size_t)clips + 1, sizeof(int64_t));
    int64_t *fmtime = musae_xcalloc((size_t)clips + 1, sizeof(int64_t));
    int32_t *nf = musae_xcalloc((size_t)clips + 1, sizeof(int32_t)), *fclip = musae_xcalloc((size_t)rows + 1, sizeof(int32_t));
    int64_t c = 0, r = 0;
    for (int i = 0; i < n_segs; i++)
        for (int64_t k = segs[i].clip0; k < segs[i].clip0 + segs[i].n_clips; k++, c++) {
            const musae_clip_id *id = &ids[segs[i].shard][k];
            names[c] = id->name, files[c] = id->file, caps[c] = id->caption ? id->caption : "";
            fsize[c] = id->size, fmtime[c] = id->mtime_ns;
            nf[c] = in[segs[i].shard]->clip_frames[k];
            off[c] = r;
            MUSAE_ASSERT(c <= INT32_MAX, "clip index %lld exceeds /frames/clip's int32", (long long)c);
            for (int32_t t = 0; t < nf[c]; t++) fclip[r++] = (int32_t)c;
        }
    int rank;
    int64_t pshape[4];
    float *params = musae_store_get_f32(st[0], "/capture/params", &rank, pshape);

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.joining", path);
    musae_store_remove_at_exit(tmp); /* a join that fails (a full disk) leaves the previous one and nothing else */
    store_h5_lock(path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110)); /* virtual datasets need 1.10 */
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) musae_fail("%s: cannot create the joined store: %s", tmp, strerror(errno));
    const musae_store_info *a = in[0];
    const int32_t d32 = a->d_model, cpl = complete ? 1 : 0, nsh = n_shards;
    attr_str(f, "model", a->model);
    store_h5_attr_write(f, "d_model", H5T_NATIVE_INT32, -1, &d32);
    store_h5_attr_write(f, "frame_rate", H5T_NATIVE_DOUBLE, -1, &a->frame_rate);
    store_h5_attr_write(f, "layers", H5T_NATIVE_INT, a->n_layers, a->layers);
    attr_str(f, "musae_version", MUSAE_VERSION);
    if (a->cpu_arith[0]) attr_str(f, "cpu_arith", a->cpu_arith);
    store_h5_attr_write(f, "complete", H5T_NATIVE_INT32, -1, &cpl);
    store_h5_attr_write(f, "n_rows", H5T_NATIVE_INT64, -1, &rows);
    store_h5_attr_write(f, "n_clips", H5T_NATIVE_INT64, -1, &clips);
    store_h5_attr_write(f, "chunk_rows", H5T_NATIVE_INT64, -1, &a->chunk_rows); /* the stream's window unit, as the shards' */
    store_h5_attr_write(f, "shards", H5T_NATIVE_INT32, -1, &nsh);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    const char *groups[] = {"/layers", "/frames", "/clips"};
    for (int i = 0; i < 3; i++) {
        hid_t g = H5Gcreate2(f, groups[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5_CHECK(g);
        H5Gclose(g);
    }
    const hid_t acts_t = a->dtype == MUSAE_F16 ? store_h5_f16_type() : H5Tcopy(H5T_IEEE_F32LE);
    char name[64];
    for (int l = 0; l < a->n_layers; l++) {
        snprintf(name, sizeof name, "/layers/%d", a->layers[l]);
        hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5_CHECK(g);
        H5Gclose(g);
        snprintf(name, sizeof name, "/layers/%d/acts", a->layers[l]);
        put_virtual(f, name, acts_t, rows, a->d_model, segs, n_segs, (const char *const *)rel, in);
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        attr_str(d, "dtype_source", "f32");
        H5Dclose(d);
    }
    H5Tclose(acts_t);
    put_virtual(f, "/frames/t", H5T_STD_I32LE, rows, 0, segs, n_segs, (const char *const *)rel, in);
    put_1d(f, "/frames/clip", H5T_STD_I32LE, H5T_NATIVE_INT32, rows, fclip);
    hid_t vstr = H5Tcopy(H5T_C_S1);
    H5_CHECK(H5Tset_size(vstr, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(vstr, H5T_CSET_UTF8));
    put_1d(f, "/clips/path", vstr, vstr, clips, names);
    put_1d(f, "/clips/n_frames", H5T_STD_I32LE, H5T_NATIVE_INT32, clips, nf);
    put_1d(f, "/clips/offset", H5T_STD_I64LE, H5T_NATIVE_INT64, clips, off);
    put_1d(f, "/clips/file", vstr, vstr, clips, files);
    put_1d(f, "/clips/file_size", H5T_STD_I64LE, H5T_NATIVE_INT64, clips, fsize);
    put_1d(f, "/clips/file_mtime_ns", H5T_STD_I64LE, H5T_NATIVE_INT64, clips, fmtime);
    if (captions) put_1d(f, "/clips/caption", vstr, vstr, clips, caps);
    H5Tclose(vstr);
    if (params) {
        hsize_t pd[4];
        for (int i = 0; i < rank; i++) pd[i] = (hsize_t)pshape[i];
        hid_t sp = H5Screate_simple(rank, pd, NULL);
        hid_t d = H5Dcreate2(f, "/capture/params", H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5_CHECK(d);
        H5_CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, params));
        H5Dclose(d);
        H5Sclose(sp);
    }
    H5Pclose(lcpl);
    H5_CHECK(H5Fclose(f));
    store_h5_unlock();
    /* in place at once: a reader sees the previous join or this one, never half of one */
    if (rename(tmp, path) != 0) musae_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    musae_store_remove_at_exit(NULL);
    free(params);
    for (int i = 0; i < n_shards; i++) {
        musae_clip_ids_free(ids[i], in[i]->n_clips);
        musae_store_close(st[i]);
        free(rel[i]);
    }
    free(st), free(in), free(ids), free(rel);
    free(names), free(files), free(caps), free(off), free(fsize), free(fmtime), free(nf), free(fclip);
}
