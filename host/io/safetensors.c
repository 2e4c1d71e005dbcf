#include "host/io/safetensors.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/log.h"
#include "host/io/path.h"

/* Headers larger than this are refused before any allocation (the reference implementation uses 100 MB). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
    {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
};

size_t musae_st_dtype_size(const char *dtype) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (!strcmp(dtype, k_dtypes[i].name)) return k_dtypes[i].size;
    return 0;
}

int musae_st_dtype_known(const char *d) {
    return !strcmp(d, "F32") || !strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "I32") || !strcmp(d, "I64") ||
           !strcmp(d, "F64");
}

static int fail(char *err, size_t n, const char *fmt, ...) MUSAE_PRINTF(3, 4);
static int fail(char *err, size_t n, const char *fmt, ...) {
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const musae_st_tensor *)a)->name, ((const musae_st_tensor *)b)->name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

typedef struct {
    size_t begin, end;
    const char *name;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

/* A JSON number that is an exact non-negative integer up to 2^53 (beyond that doubles skip integers). Returns
 * NULL and sets *out, or the reason it is not one. */
static const char *json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return "is not a number";
    double d = j->valuedouble;
    if (d < 0) return "is negative";
    if (floor(d) != d) return "is not an integer";
    if (!(d <= 9007199254740992.0)) return "is above 2^53";
    *out = (uint64_t)d;
    return NULL;
}

/* Shards of one checkpoint each carry the same __metadata__ ("format": "pt"): the first value of a key wins.
 * Within one file keys are unique already (checked), so only later shards need the linear search. */
static void meta_add(musae_st *st, const char *k, const char *v, int later_shard) {
    for (int i = 0; later_shard && i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], k)) return;
    st->meta_keys = musae_xrealloc(st->meta_keys, sizeof(char *) * (size_t)(st->n_meta + 1));
    st->meta_values = musae_xrealloc(st->meta_values, sizeof(char *) * (size_t)(st->n_meta + 1));
    st->meta_keys[st->n_meta] = musae_xstrdup(k);
    st->meta_values[st->n_meta] = musae_xstrdup(v);
    st->n_meta++;
}

/* Parses and validates one file image; appends its tensors to st with file index `fi`. */
static int parse_file(musae_st *st, int fi, const char *fname, const uint8_t *buf, size_t size, char *err,
                      size_t en) {
    /* a file that cannot start a safetensors image: say what it looks like (a WAV, a text file) rather than
     * report a header length read from its first 8 bytes */
    if (size == 0) return fail(err, en, "%s: is empty (0 bytes), not a safetensors file", fname);
    const char *kind = musae_file_kind(buf, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0 && size >= 8; i--) hlen = (hlen << 8) | buf[i];
    if (kind && (size < 10 || hlen > size - 8 || buf[8] != '{'))
        return fail(err, en, "%s: not a safetensors file (it looks like %s)", fname, kind);
    if (size < 8) return fail(err, en, "%s: truncated: file is %zu bytes, shorter than the 8-byte header length", fname, size);
    if (hlen > ST_MAX_HEADER)
        return fail(err, en, "%s: header length %llu exceeds the %llu-byte limit", fname, (unsigned long long)hlen,
                    (unsigned long long)ST_MAX_HEADER);
    if (hlen > size - 8)
        return fail(err, en, "%s: header length %llu is larger than the %zu bytes after the length field (truncated file?)",
                    fname, (unsigned long long)hlen, size - 8);
    if (hlen < 2) return fail(err, en, "%s: header of %llu bytes is too short to be a JSON object", fname, (unsigned long long)hlen);
    /* cJSON gets a NUL-terminated copy: releases before 1.7.18 can read a byte past the given length
     * (CVE-2023-53154), which on an mmapped header that ends the file at a page boundary is a SIGSEGV. */
    char *h = musae_xmalloc((size_t)hlen + 1);
    memcpy(h, buf + 8, (size_t)hlen);
    h[hlen] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= h && at <= h + hlen) ? (long)(at - h) : -1;
        free(h);
        return fail(err, en, "%s: header is not valid JSON (error near byte %ld of %llu)", fname, off, (unsigned long long)hlen);
    }
    /* the writer pads the header with spaces so the data starts 8-aligned; anything else is garbage */
    for (const char *p = end; p && p < h + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            long off = (long)(p - h);
            cJSON_Delete(root);
            free(h);
            return fail(err, en, "%s: unexpected bytes after the header JSON at byte %ld", fname, off);
        }
    }
    free(h); /* the tree holds its own copies of every string */
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(err, en, "%s: header is not a JSON object (it is a JSON %s)", fname,
                    cJSON_IsArray(root) ? "array" : cJSON_IsString(root) ? "string" : cJSON_IsNumber(root) ? "number" : "literal");
    }
    size_t data_off = 8 + (size_t)hlen, data_len = size - data_off;
    st->files[fi].data_off = data_off;
    int n_new = 0, rc = 0;
    for (cJSON *e = root->child; e; e = e->next) n_new++;
    span *spans = musae_xcalloc((size_t)n_new + 1, sizeof(span));
    int n_spans = 0, seen_meta = 0;
    st->tensors = musae_xrealloc(st->tensors, sizeof(musae_st_tensor) * (size_t)(st->n_tensors + n_new + 1));

    for (cJSON *e = root->child; e && rc == 0; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (seen_meta++) {
                rc = fail(err, en, "%s: __metadata__ appears twice in the header", fname);
                break;
            }
            if (!cJSON_IsObject(e)) {
                rc = fail(err, en, "%s: __metadata__ is not an object", fname);
                break;
            }
            int n_keys = 0;
            for (cJSON *m = e->child; m; m = m->next, n_keys++) {
                if (!cJSON_IsString(m)) {
                    rc = fail(err, en, "%s: __metadata__ value of '%s' is not a string", fname, m->string);
                    break;
                }
            }
            if (rc) break;
            /* cJSON keeps repeated keys; the reference parser would silently keep one of them */
            const char **keys = musae_xcalloc((size_t)n_keys + 1, sizeof(char *));
            n_keys = 0;
            for (cJSON *m = e->child; m; m = m->next) keys[n_keys++] = m->string;
            qsort(keys, (size_t)n_keys, sizeof(char *), cmp_str);
            for (int k = 1; k < n_keys && rc == 0; k++)
                if (!strcmp(keys[k], keys[k - 1]))
                    rc = fail(err, en, "%s: __metadata__ key '%s' appears twice", fname, keys[k]);
            free(keys);
            if (rc) break;
            for (cJSON *m = e->child; m; m = m->next) meta_add(st, m->string, m->valuestring, fi > 0);
            continue;
        }
        if (!name[0]) {
            rc = fail(err, en, "%s: a tensor has an empty name", fname);
            break;
        }
        if (!cJSON_IsObject(e)) {
            rc = fail(err, en, "%s: tensor '%s': entry is not an object", fname, name);
            break;
        }
        cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!jd) {
            rc = fail(err, en, "%s: tensor '%s': missing \"dtype\"", fname, name);
            break;
        }
        if (!cJSON_IsString(jd)) {
            rc = fail(err, en, "%s: tensor '%s': \"dtype\" is not a string", fname, name);
            break;
        }
        size_t esize = musae_st_dtype_size(jd->valuestring);
        if (!esize) {
            rc = fail(err, en, "%s: tensor '%s': unknown dtype \"%s\"", fname, name, jd->valuestring);
            break;
        }
        if (!js) {
            rc = fail(err, en, "%s: tensor '%s': missing \"shape\"", fname, name);
            break;
        }
        if (!cJSON_IsArray(js)) {
            rc = fail(err, en, "%s: tensor '%s': \"shape\" is not an array", fname, name);
            break;
        }
        int rank = cJSON_GetArraySize(js);
        if (rank > MUSAE_ST_MAX_RANK) {
            rc = fail(err, en, "%s: tensor '%s': rank %d exceeds the supported %d", fname, name, rank, MUSAE_ST_MAX_RANK);
            break;
        }
        musae_st_tensor *t = &st->tensors[st->n_tensors];
        memset(t, 0, sizeof *t);
        t->rank = rank;
        t->file = fi;
        snprintf(t->dtype, sizeof t->dtype, "%s", jd->valuestring);
        uint64_t numel = 1;
        int i = 0;
        for (cJSON *d = js->child; d; d = d->next, i++) {
            uint64_t v = 0;
            const char *why = json_uint(d, &v);
            if (why) {
                char txt[48] = "";
                if (cJSON_IsNumber(d)) snprintf(txt, sizeof txt, " (%.17g)", d->valuedouble);
                rc = fail(err, en, "%s: tensor '%s': shape[%d] %s%s", fname, name, i, why, txt);
                break;
            }
            if (v > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, v, &numel)) {
                rc = fail(err, en, "%s: tensor '%s': shape product overflows", fname, name);
                break;
            }
            t->shape[i] = (int64_t)v;
        }
        if (rc) break;
        uint64_t nbytes;
        if (__builtin_mul_overflow(numel, (uint64_t)esize, &nbytes)) {
            rc = fail(err, en, "%s: tensor '%s': shape x dtype size overflows", fname, name);
            break;
        }
        uint64_t b = 0, f = 0;
        if (!jo) {
            rc = fail(err, en, "%s: tensor '%s': missing \"data_offsets\"", fname, name);
            break;
        }
        if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
            rc = fail(err, en, "%s: tensor '%s': \"data_offsets\" is not an array [begin, end]", fname, name);
            break;
        }
        const cJSON *bad = jo->child;
        const char *why = json_uint(bad, &b);
        if (!why) why = json_uint(bad = jo->child->next, &f);
        if (why) {
            char txt[48] = "";
            if (cJSON_IsNumber(bad)) snprintf(txt, sizeof txt, " (%.17g)", bad->valuedouble);
            rc = fail(err, en, "%s: tensor '%s': data_offsets[%d] %s%s", fname, name, bad == jo->child ? 0 : 1, why, txt);
            break;
        }
        if (f < b) {
            rc = fail(err, en, "%s: tensor '%s': data_offsets end %llu is before begin %llu", fname, name,
                      (unsigned long long)f, (unsigned long long)b);
            break;
        }
        if (f - b != nbytes) {
            char s[128];
            musae_shape_str(rank, t->shape, s, sizeof s);
            rc = fail(err, en, "%s: tensor '%s': shape %s x %s (%zu B) needs %llu bytes but data_offsets span %llu", fname,
                      name, s, jd->valuestring, esize, (unsigned long long)nbytes, (unsigned long long)(f - b));
            break;
        }
        if (f > data_len) {
            rc = fail(err, en, "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data section (%zu bytes)",
                      fname, name, (unsigned long long)b, (unsigned long long)f, data_len);
            break;
        }
        t->name = musae_xstrdup(name);
        t->data = buf + data_off + b;
        t->nbytes = (size_t)nbytes;
        spans[n_spans++] = (span){(size_t)b, (size_t)f, t->name};
        st->n_tensors++;
    }
    cJSON_Delete(root);
    /* Spans must tile the data section exactly: sorted, each starting where the previous ended. Empty tensors
     * (0 bytes) may sit anywhere a boundary is. */
    if (rc == 0) {
        qsort(spans, (size_t)n_spans, sizeof(span), cmp_span);
        size_t pos = 0;
        for (int i = 0; i < n_spans && rc == 0; i++) {
            if (spans[i].begin < pos)
                rc = fail(err, en, "%s: tensor '%s': data_offsets [%zu, %zu] overlap another tensor's bytes", fname,
                          spans[i].name, spans[i].begin, spans[i].end);
            else if (spans[i].begin > pos)
                rc = fail(err, en, "%s: tensor '%s': gap of %zu unused bytes before its data_offsets [%zu, %zu]", fname,
                          spans[i].name, spans[i].begin - pos, spans[i].begin, spans[i].end);
            else
                pos = spans[i].end;
        }
        if (rc == 0 && pos != data_len)
            rc = fail(err, en, "%s: %zu trailing bytes after the last tensor (data section %zu bytes, tensors end at %zu)",
                      fname, data_len - pos, data_len, pos);
    }
    free(spans);
    return rc;
}

/* Sorts by name (for bsearch) and rejects a name given twice, in one file or across shards. */
static int finish(musae_st *st, char *err, size_t en) {
    if (st->n_tensors > 1) qsort(st->tensors, (size_t)st->n_tensors, sizeof(musae_st_tensor), cmp_tensor_name);
    for (int i = 1; i < st->n_tensors; i++) {
        const musae_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name)) continue;
        if (a->file == b->file)
            return fail(err, en, "%s: tensor '%s' is defined twice in the header", st->files[a->file].path, a->name);
        return fail(err, en, "%s: tensor '%s' is defined in two shards, %s and %s", st->path, a->name,
                    st->files[a->file].path, st->files[b->file].path);
    }
    return 0;
}

int musae_st_parse(musae_st *st, const char *name, const uint8_t *buf, size_t size, char *err, size_t en) {
    memset(st, 0, sizeof *st);
    st->path = musae_xstrdup(name);
    st->files = musae_xcalloc(1, sizeof(musae_st_file));
    st->n_files = 1;
    st->files[0].path = musae_xstrdup(name);
    st->files[0].size = size;
    int rc = parse_file(st, 0, name, buf, size, err, en);
    if (rc == 0) rc = finish(st, err, en);
    if (rc) musae_st_close(st);
    return rc;
}

static int map_file(musae_st_file *f, const char *path, char *err, size_t en) {
    /* a FIFO would block open() and mmap cannot take it: only regular files */
    if (musae_path_regular(path, "a .safetensors file", err, en)) return -1;
    struct stat sb;
    if (stat(path, &sb) != 0) return fail(err, en, "%s: cannot open: %s", path, strerror(errno));
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(err, en, "%s: cannot open: %s", path, strerror(errno));
    f->path = musae_xstrdup(path);
    f->size = (size_t)sb.st_size;
    if (f->size) {
        f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            close(fd);
            return fail(err, en, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd);
    return 0;
}

static char *read_small_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    if (sz < 0 || sz > (long)ST_MAX_HEADER) {
        fclose(fp);
        errno = EFBIG;
        return NULL;
    }
    char *b = musae_xmalloc((size_t)sz + 1);
    size_t got = fread(b, 1, (size_t)sz, fp);
    fclose(fp);
    b[got] = 0;
    if (n) *n = got;
    return b;
}

static int open_index(musae_st *st, const char *index_path, char *err, size_t en) {
    if (musae_path_regular(index_path, "a safetensors index (.json)", err, en)) return -1;
    char *txt = read_small_file(index_path, NULL);
    if (!txt) return fail(err, en, "%s: cannot read: %s", index_path, strerror(errno));
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    if (!root) return fail(err, en, "%s: index is not valid JSON", index_path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(err, en, "%s: index is not a JSON object", index_path);
    }
    cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return fail(err, en, "%s: missing \"weight_map\" object", index_path);
    }
    /* the folder of the index: shard names are relative to it */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    int rc = 0;
    for (cJSON *e = wm->child; e && rc == 0; e = e->next) {
        if (!cJSON_IsString(e)) {
            rc = fail(err, en, "%s: weight_map entry '%s' is not a file name", index_path, e->string);
            break;
        }
        int fi = -1;
        for (int i = 0; i < st->n_files; i++) {
            const char *b = strrchr(st->files[i].path, '/');
            if (!strcmp(b ? b + 1 : st->files[i].path, e->valuestring)) fi = i;
        }
        if (fi < 0) {
            const char *sh = e->valuestring;
            if (!sh[0] || strchr(sh, '/') || !strcmp(sh, ".") || !strcmp(sh, "..")) {
                rc = fail(err, en, "%s: shard name '%s' of tensor '%s' must be a plain file name", index_path, sh,
                          e->string);
                break;
            }
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s%s", dir, sh);
            st->files = musae_xrealloc(st->files, sizeof(musae_st_file) * (size_t)(st->n_files + 1));
            memset(&st->files[st->n_files], 0, sizeof(musae_st_file));
            fi = st->n_files++;
            if (access(p, F_OK) != 0) {
                rc = fail(err, en, "%s: shard %s (named for tensor '%s') cannot be opened: %s", index_path, p, e->string,
                          strerror(errno));
                break;
            }
            if ((rc = map_file(&st->files[fi], p, err, en))) break;
            if ((rc = parse_file(st, fi, p, st->files[fi].map, st->files[fi].size, err, en))) break;
        }
    }
    /* every entry of the weight map must be in the shard it names, once, and every shard tensor in the map */
    if (rc == 0) rc = finish(st, err, en);
    for (cJSON *e = wm->child; e && rc == 0; e = e->next) {
        musae_st_tensor *t = musae_st_find(st, e->string); /* marks it used: "listed" for the checks below */
        if (!t) {
            rc = fail(err, en, "%s: tensor '%s' is listed in weight_map but missing from its shard %s", index_path,
                      e->string, e->valuestring);
            break;
        }
        const char *b = strrchr(st->files[t->file].path, '/');
        if (strcmp(b ? b + 1 : st->files[t->file].path, e->valuestring))
            rc = fail(err, en, "%s: tensor '%s' is mapped to %s but found in %s", index_path, e->string, e->valuestring,
                      st->files[t->file].path);
    }
    if (rc == 0) { /* cJSON keeps a repeated key; a map would silently keep one of the two shards */
        int n = cJSON_GetArraySize(wm), k = 0;
        const char **keys = musae_xcalloc((size_t)n + 1, sizeof(char *));
        for (cJSON *e = wm->child; e; e = e->next) keys[k++] = e->string;
        qsort(keys, (size_t)k, sizeof(char *), cmp_str);
        for (int i = 1; i < k && rc == 0; i++)
            if (!strcmp(keys[i], keys[i - 1]))
                rc = fail(err, en, "%s: tensor '%s' is listed twice in weight_map", index_path, keys[i]);
        free(keys);
    }
    for (int i = 0; i < st->n_tensors && rc == 0; i++)
        if (!st->tensors[i].used)
            rc = fail(err, en, "%s: tensor '%s' of shard %s is not listed in weight_map", index_path,
                      st->tensors[i].name, st->files[st->tensors[i].file].path);
    for (int i = 0; i < st->n_tensors; i++) st->tensors[i].used = 0;
    cJSON_Delete(root);
    return rc;
}

int musae_st_open(musae_st *st, const char *path, char *err, size_t en) {
    memset(st, 0, sizeof *st);
    st->path = musae_xstrdup(path);
    struct stat sb;
    int rc;
    if (stat(path, &sb) != 0) {
        rc = fail(err, en, "%s: cannot open: %s", path, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
        if (access(p, R_OK) == 0) {
            rc = open_index(st, p, err, en);
        } else {
            snprintf(p, sizeof p, "%s/model.safetensors", path);
            if (access(p, R_OK) == 0) {
                st->files = musae_xcalloc(1, sizeof(musae_st_file));
                st->n_files = 1;
                rc = map_file(&st->files[0], p, err, en);
                if (rc == 0) rc = parse_file(st, 0, p, st->files[0].map, st->files[0].size, err, en);
                if (rc == 0) rc = finish(st, err, en);
            } else {
                rc = fail(err, en, "%s: folder has neither model.safetensors nor model.safetensors.index.json", path);
            }
        }
    } else {
        size_t L = strlen(path);
        if (L >= 5 && !strcmp(path + L - 5, ".json")) {
            rc = open_index(st, path, err, en);
        } else {
            st->files = musae_xcalloc(1, sizeof(musae_st_file));
            st->n_files = 1;
            rc = map_file(&st->files[0], path, err, en);
            if (rc == 0) rc = parse_file(st, 0, path, st->files[0].map, st->files[0].size, err, en);
            if (rc == 0) rc = finish(st, err, en);
        }
    }
    if (rc) musae_st_close(st);
    return rc;
}

void musae_st_close(musae_st *st) {
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->files);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
    memset(st, 0, sizeof *st);
}

musae_st_tensor *musae_st_find(musae_st *st, const char *name) {
    musae_st_tensor key = {.name = (char *)name};
    musae_st_tensor *t = bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof(musae_st_tensor), cmp_tensor_name);
    if (t) t->used = 1;
    return t;
}

int64_t musae_st_numel(const musae_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

const char *musae_st_file_of(const musae_st *st, const musae_st_tensor *t) { return st->files[t->file].path; }

static musae_dtype st_to_musae(const char *d) {
    if (!strcmp(d, "F32")) return MUSAE_F32;
    if (!strcmp(d, "F16")) return MUSAE_F16;
    if (!strcmp(d, "BF16")) return MUSAE_BF16;
    if (!strcmp(d, "I32")) return MUSAE_I32;
    if (!strcmp(d, "I64")) return MUSAE_I64;
    return MUSAE_DTYPE_COUNT;
}

/* Large reads are split into blocks shared out over the OpenMP threads (dynamic: on a busy machine a thread
 * that is descheduled does not hold the others up); each block is converted and checked while it is in
 * cache. Below ST_PARALLEL_BYTES a team costs more than it saves. */
#define ST_PARALLEL_BYTES ((size_t)1 << 21)
#define ST_BLOCK_ELEMS ((size_t)1 << 18) /* 1 MiB of f32 */
#define ST_CHUNK_ELEMS ((size_t)4096)    /* the aligned staging of a converting read, on the stack */

static int is_float(musae_dtype d) { return d == MUSAE_F32 || d == MUSAE_F16 || d == MUSAE_BF16; }

/* The first index in x[0, n) whose exponent bits are all ones (±inf or NaN), or -1. The OR of the
 * exponent fields plus one exponent step carries into the sign bit exactly when one field is all ones,
 * so the scan vectorizes and only a block that holds such a value is searched element by element. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static int64_t first_nonfinite(const float *x, size_t n) {
    typedef uint32_t __attribute__((may_alias)) bits32; /* the floats' bits, without breaking aliasing rules */
    const bits32 *b = (const bits32 *)x;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= (b[i] & 0x7f800000u) + 0x00800000u;
    if (!(acc & 0x80000000u)) return -1;
    for (size_t i = 0; i < n; i++)
        if ((b[i] & 0x7f800000u) == 0x7f800000u) return (int64_t)i;
    return -1;
}

/* Elements [i0, i1) of t into dst (as musae_st_read). src is the dtype of t (F64 is MUSAE_DTYPE_COUNT). */
static void read_block(const musae_st_tensor *t, musae_dtype src, int f64, void *dst, musae_dtype dt, size_t i0,
                       size_t i1) {
    const size_t ds = musae_dtype_size(dt);
    if (!f64 && src == dt) {
        memcpy((uint8_t *)dst + i0 * ds, t->data + i0 * ds, (i1 - i0) * ds);
        return;
    }
    /* the mmapped bytes may be unaligned for the source type: convert from an aligned copy */
    double tmp[ST_CHUNK_ELEMS];
    float f[ST_CHUNK_ELEMS];
    for (size_t c0 = i0; c0 < i1; c0 += ST_CHUNK_ELEMS) {
        const size_t n = i1 - c0 < ST_CHUNK_ELEMS ? i1 - c0 : ST_CHUNK_ELEMS;
        if (f64) {
            memcpy(tmp, t->data + 8 * c0, n * 8);
            for (size_t i = 0; i < n; i++) f[i] = (float)tmp[i];
            musae_convert((uint8_t *)dst + c0 * ds, dt, f, MUSAE_F32, n);
        } else {
            const size_t ss = musae_dtype_size(src);
            memcpy(tmp, t->data + ss * c0, n * ss);
            musae_convert((uint8_t *)dst + c0 * ds, dt, tmp, src, n);
        }
    }
}

int64_t musae_st_read_checked(const musae_st *st, const musae_st_tensor *t, void *dst, musae_dtype dt) {
    const size_t n = (size_t)musae_st_numel(t);
    const int f64 = !strcmp(t->dtype, "F64");
    musae_dtype src = f64 ? MUSAE_DTYPE_COUNT : st_to_musae(t->dtype);
    if (f64) {
        MUSAE_ASSERT(is_float(dt), "F64 tensor '%s' read as %s", t->name, musae_dtype_name(dt));
    } else {
        if (src == MUSAE_DTYPE_COUNT)
            musae_fail("%s: tensor '%s': dtype %s cannot be loaded", musae_st_file_of(st, t), t->name, t->dtype);
        /* float -> int would truncate silently, and NaN or out-of-range values are undefined behaviour in C */
        if (is_float(src) && (dt == MUSAE_I32 || dt == MUSAE_I64))
            musae_fail("%s: tensor '%s' holds %s values; reading them as %s is not supported", musae_st_file_of(st, t),
                       t->name, t->dtype, musae_dtype_name(dt));
    }
    const int check = dt == MUSAE_F32;
    /* integer conversions stay on one thread: a value that does not fit aborts naming its flat index */
    if (!f64 && src != dt && !(is_float(src) && is_float(dt))) {
        void *tmp = musae_xmalloc(t->nbytes ? t->nbytes : 1);
        memcpy(tmp, t->data, t->nbytes);
        musae_convert(dst, dt, tmp, src, n);
        free(tmp);
        return -1;
    }
    const int mapped = st->files[t->file].map != NULL;
    const size_t es = f64 ? 8 : musae_dtype_size(src), pg = (size_t)sysconf(_SC_PAGESIZE);
    const int64_t n_blocks = (int64_t)((n + ST_BLOCK_ELEMS - 1) / ST_BLOCK_ELEMS);
    int64_t first = INT64_MAX;
#pragma omp parallel for schedule(dynamic, 1) reduction(min : first) if (t->nbytes >= ST_PARALLEL_BYTES)
    for (int64_t b = 0; b < n_blocks; b++) {
        const size_t i0 = (size_t)b * ST_BLOCK_ELEMS, i1 = i0 + ST_BLOCK_ELEMS < n ? i0 + ST_BLOCK_ELEMS : n;
#ifdef MADV_POPULATE_READ
        /* map the block's file pages in one call rather than one fault per 64 KiB (Linux >= 5.14; an older
         * kernel says EINVAL and the copy faults them in as before) */
        if (mapped) {
            const uintptr_t a = (uintptr_t)(t->data + i0 * es) & ~(uintptr_t)(pg - 1);
            const uintptr_t e = (uintptr_t)(t->data + i1 * es);
            if (e > a) (void)madvise((void *)a, e - a, MADV_POPULATE_READ);
        }
#else
        (void)mapped, (void)es, (void)pg;
#endif
        read_block(t, src, f64, dst, dt, i0, i1);
        if (check) {
            const int64_t k = first_nonfinite((const float *)dst + i0, i1 - i0);
            if (k >= 0 && (int64_t)i0 + k < first) first = (int64_t)i0 + k;
        }
    }
    return first == INT64_MAX ? -1 : first;
}

int64_t musae_f32_first_nonfinite(const float *x, size_t n) {
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    const int64_t n_blocks = (int64_t)((n + ST_BLOCK_ELEMS - 1) / ST_BLOCK_ELEMS);
    int64_t first = INT64_MAX;
#pragma omp parallel for schedule(dynamic, 1) reduction(min : first) if (n * sizeof(float) >= ST_PARALLEL_BYTES)
    for (int64_t b = 0; b < n_blocks; b++) {
        const size_t i0 = (size_t)b * ST_BLOCK_ELEMS, i1 = i0 + ST_BLOCK_ELEMS < n ? i0 + ST_BLOCK_ELEMS : n;
#ifdef MADV_POPULATE_READ
        const uintptr_t a = (uintptr_t)(x + i0) & ~(uintptr_t)(pg - 1), e = (uintptr_t)(x + i1);
        (void)madvise((void *)a, e - a, MADV_POPULATE_READ); /* EINVAL on anonymous memory is fine */
#else
        (void)pg;
#endif
        const int64_t k = first_nonfinite(x + i0, i1 - i0);
        if (k >= 0 && (int64_t)i0 + k < first) first = (int64_t)i0 + k;
    }
    return first == INT64_MAX ? -1 : first;
}

void musae_st_read(const musae_st *st, const musae_st_tensor *t, void *dst, musae_dtype dt) {
    (void)musae_st_read_checked(st, t, dst, dt);
}

void musae_st_prefetch(const musae_st *st, const char *prefix) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const size_t L = strlen(prefix);
    for (int i = 0; i < st->n_tensors; i++) {
        const musae_st_tensor *t = &st->tensors[i];
        if (!st->files[t->file].map || !t->nbytes || strncmp(t->name, prefix, L)) continue;
        const uintptr_t a = (uintptr_t)t->data & ~(pg - 1), e = (uintptr_t)t->data + t->nbytes;
        (void)madvise((void *)a, e - a, MADV_WILLNEED);
    }
}

void *musae_st_load_any(musae_st *st, const char *name, musae_dtype dt, int *rank, int64_t *shape) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t) return NULL;
    if (rank) *rank = t->rank;
    if (shape)
        for (int i = 0; i < t->rank; i++) shape[i] = t->shape[i];
    void *d = musae_xmalloc((size_t)musae_st_numel(t) * musae_dtype_size(dt));
    musae_st_read(st, t, d, dt);
    return d;
}

void musae_st_check_shape(const musae_st *st, const musae_st_tensor *t, const char *name, int rank,
                          const int64_t *shape) {
    int ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t->shape[i] == shape[i];
    if (ok) return;
    char got[128], want[128];
    musae_shape_str(t->rank, t->shape, got, sizeof got);
    musae_shape_str(rank, shape, want, sizeof want);
    musae_fail("%s: tensor '%s' has shape %s, expected %s", musae_st_file_of(st, t), name, got, want);
}

void *musae_st_load(musae_st *st, const char *name, musae_dtype dt, int rank, const int64_t *shape) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t) musae_fail("%s: tensor '%s' is missing", st->path, name);
    musae_st_check_shape(st, t, name, rank, shape);
    if (!musae_st_dtype_known(t->dtype))
        musae_fail("%s: tensor '%s' has dtype %s; expected a float or integer type musae reads", musae_st_file_of(st, t),
                   name, t->dtype);
    void *d = musae_xmalloc((size_t)musae_st_numel(t) * musae_dtype_size(dt));
    musae_st_read(st, t, d, dt);
    return d;
}

const char *musae_st_meta(const musae_st *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

int musae_st_report_unused(const musae_st *st, const char *prefix) {
    int n = 0;
    size_t L = strlen(prefix);
    for (int i = 0; i < st->n_tensors; i++) {
        if (!st->tensors[i].used && !strncmp(st->tensors[i].name, prefix, L)) {
            LOG_WARN("%s: unused tensor '%s'", st->path, st->tensors[i].name);
            n++;
        }
    }
    return n;
}
