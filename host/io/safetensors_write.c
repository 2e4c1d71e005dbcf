/* The safetensors writer (safetensors.h: musae_st_writer, the file image, the atomic save) and
 * musae_write_file_atomic, the one write-to-temporary, fsync, rename of musae's whole-file outputs; split from
 * safetensors.c, the reader. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/safetensors.h"

typedef struct {
    char *name;
    musae_dtype dt;
    int rank;
    int64_t shape[MUSAE_ST_MAX_RANK];
    void *data;
    size_t nbytes;
} wtensor;

struct musae_st_writer {
    int n, cap;
    wtensor *t;
    cJSON *meta;
};

musae_st_writer *musae_st_writer_new(void) {
    musae_st_writer *w = musae_xcalloc(1, sizeof *w);
    w->meta = cJSON_CreateObject();
    return w;
}

void musae_st_writer_add(musae_st_writer *w, const char *name, musae_dtype dt, int rank, const int64_t *shape,
                         const void *data) {
    MUSAE_ASSERT(rank >= 0 && rank <= MUSAE_ST_MAX_RANK, "rank %d", rank);
    for (int i = 0; i < w->n; i++) MUSAE_ASSERT(strcmp(w->t[i].name, name), "tensor '%s' added twice", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = musae_xrealloc(w->t, sizeof(wtensor) * (size_t)w->cap);
    }
    wtensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = musae_xstrdup(name);
    t->dt = dt;
    t->rank = rank;
    size_t numel = 1;
    for (int i = 0; i < rank; i++) {
        MUSAE_ASSERT(shape[i] >= 0, "negative dim in '%s'", name);
        t->shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    t->nbytes = numel * musae_dtype_size(dt);
    t->data = musae_xmalloc(t->nbytes);
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
}

void musae_st_writer_meta(musae_st_writer *w, const char *key, const char *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    cJSON_AddStringToObject(w->meta, key, value);
}

static const char *st_dtype_str(musae_dtype dt) {
    static const char *s[] = {"F32", "F16", "BF16", "I32", "I64"};
    return s[dt];
}

int musae_write_file_atomic(const char *path, const void *data, size_t n) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    const uint8_t *p = data;
    size_t left = n;
    while (left) {
        ssize_t k = write(fd, p, left > (1u << 30) ? (1u << 30) : left);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    /* make the rename itself durable */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

uint8_t *musae_st_writer_image(const musae_st_writer *w, size_t *size) {
    cJSON *root = cJSON_CreateObject();
    if (cJSON_GetArraySize(w->meta) > 0) cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->meta, 1));
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "dtype", st_dtype_str(t->dt));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->rank; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + t->nbytes)));
        off += t->nbytes;
        cJSON_AddItemToObject(root, t->name, e);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t hlen = strlen(json), padded = (hlen + 7) / 8 * 8; /* pad with spaces: data starts 8-aligned */
    size_t total = 8 + padded + off;
    uint8_t *buf = musae_xmalloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, json, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    free(json);
    size_t pos = 8 + padded;
    for (int i = 0; i < w->n; i++) {
        if (w->t[i].nbytes) memcpy(buf + pos, w->t[i].data, w->t[i].nbytes);
        pos += w->t[i].nbytes;
    }
    *size = total;
    return buf;
}

int musae_st_writer_save(musae_st_writer *w, const char *path, char *err, size_t en) {
    size_t total;
    uint8_t *buf = musae_st_writer_image(w, &total);
    int rc = musae_write_file_atomic(path, buf, total);
    free(buf);
    if (rc) {
        if (err && en) snprintf(err, en, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void musae_st_writer_free(musae_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    cJSON_Delete(w->meta);
    free(w);
}
