#include "host/io/torch_zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"

static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t rd(const uint8_t *p, int bytes) { /* little-endian */
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---- zip ------------------------------------------------------------------------------------------------- */
typedef struct {
    char *name;
    const uint8_t *data;
    uint64_t size;
} zip_entry;

typedef struct {
    zip_entry *e;
    int64_t n;
} zip_dir;

static void zip_free(zip_dir *z) {
    for (int64_t i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    memset(z, 0, sizeof *z);
}

static int zip_read(zip_dir *z, const char *path, const uint8_t *b, size_t size, char *err, size_t en) {
    memset(z, 0, sizeof *z);
    if (size < 22) return fail(err, en, "%s: not a zip file (%zu bytes)", path, size);
    int64_t eocd = -1;
    for (int64_t p = (int64_t)size - 22; p >= 0 && p >= (int64_t)size - 22 - 65535; p--)
        if (rd(b + p, 4) == 0x06054b50) {
            eocd = p;
            break;
        }
    if (eocd < 0) return fail(err, en, "%s: not a zip file (no end-of-central-directory record; truncated?)", path);
    uint64_t n = rd(b + eocd + 10, 2), cd_size = rd(b + eocd + 12, 4), cd_off = rd(b + eocd + 16, 4);
    if (eocd >= 20 && rd(b + eocd - 20, 4) == 0x07064b50) { /* zip64 locator → zip64 end record */
        const uint64_t z64 = rd(b + eocd - 20 + 8, 8);
        if (size < 56 || z64 > size - 56 || rd(b + z64, 4) != 0x06064b50)
            return fail(err, en, "%s: zip64 end record out of the file", path);
        n = rd(b + z64 + 32, 8), cd_size = rd(b + z64 + 40, 8), cd_off = rd(b + z64 + 48, 8);
    }
    if (cd_off > size || cd_size > size - cd_off || n > cd_size / 46)
        return fail(err, en, "%s: central directory (%llu entries at %llu) out of the file", path,
                    (unsigned long long)n, (unsigned long long)cd_off);
    z->e = musae_xcalloc(n ? n : 1, sizeof *z->e);
    uint64_t p = cd_off;
    for (uint64_t i = 0; i < n; i++) {
        if (p + 46 > cd_off + cd_size || rd(b + p, 4) != 0x02014b50)
            return fail(err, en, "%s: central directory entry %llu is damaged", path, (unsigned long long)i);
        const uint64_t method = rd(b + p + 10, 2), nl = rd(b + p + 28, 2), xl = rd(b + p + 30, 2), cl = rd(b + p + 32, 2);
        uint64_t csize = rd(b + p + 20, 4), usize = rd(b + p + 24, 4), loff = rd(b + p + 42, 4);
        if (p + 46 + nl + xl + cl > cd_off + cd_size)
            return fail(err, en, "%s: central directory entry %llu runs past the directory", path, (unsigned long long)i);
        char *name = musae_xmalloc(nl + 1);
        memcpy(name, b + p + 46, nl);
        name[nl] = 0;
        z->e[z->n++].name = name;
        /* zip64 extra field: the 0xFFFFFFFF fields, in the order usize, csize, offset */
        for (uint64_t q = p + 46 + nl; q + 4 <= p + 46 + nl + xl;) {
            const uint64_t id = rd(b + q, 2), len = rd(b + q + 2, 2);
            if (q + 4 + len > p + 46 + nl + xl) break;
            if (id == 1) {
                uint64_t r = q + 4, end = q + 4 + len;
                if (usize == 0xFFFFFFFFu && r + 8 <= end) usize = rd(b + r, 8), r += 8;
                if (csize == 0xFFFFFFFFu && r + 8 <= end) csize = rd(b + r, 8), r += 8;
                if (loff == 0xFFFFFFFFu && r + 8 <= end) loff = rd(b + r, 8);
            }
            q += 4 + len;
        }
        if (method != 0 || csize != usize)
            return fail(err, en, "%s: entry '%s' is compressed (method %llu); torch.save stores entries", path, name,
                        (unsigned long long)method);
        if (size < 30 || loff > size - 30 || rd(b + loff, 4) != 0x04034b50)
            return fail(err, en, "%s: entry '%s': local header out of the file", path, name);
        const uint64_t data = loff + 30 + rd(b + loff + 26, 2) + rd(b + loff + 28, 2);
        if (data > size || usize > size - data)
            return fail(err, en, "%s: entry '%s' (%llu bytes) runs past the end of the file (truncated?)", path, name,
                        (unsigned long long)usize);
        z->e[z->n - 1].data = b + data;
        z->e[z->n - 1].size = usize;
        p += 46 + nl + xl + cl;
    }
    return 0;
}

static const zip_entry *zip_find(const zip_dir *z, const char *name) {
    for (int64_t i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return &z->e[i];
    return NULL;
}

/* ---- the pickle subset ------------------------------------------------------------------------------------- */
typedef enum { V_MARK, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } vkind;

typedef struct val val;
struct val {
    vkind kind;
    int64_t i;          /* INT, BOOL; STORAGE: numel; TENSOR: storage offset */
    double f;
    char *s;            /* STR; GLOBAL "module.name"; STORAGE: key */
    const char *dtype;  /* STORAGE: safetensors dtype name */
    val **items;        /* TUPLE, LIST; DICT: key, value, key, value ...; TENSOR: storage, sizes, strides */
    int64_t n, cap;
};

typedef struct {
    val **all; /* every value made, for freeing */
    int64_t n_all, cap_all;
    val **stack;
    int64_t sp, cap_stack;
    val **memo;
    int64_t n_memo;
} vm;

static val *mk(vm *m, vkind k) {
    val *v = musae_xcalloc(1, sizeof *v);
    v->kind = k;
    if (m->n_all == m->cap_all) {
        m->cap_all = m->cap_all ? 2 * m->cap_all : 1024;
        m->all = musae_xrealloc(m->all, (size_t)m->cap_all * sizeof *m->all);
    }
    m->all[m->n_all++] = v;
    return v;
}

static void add_item(val *c, val *x) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->items = musae_xrealloc(c->items, (size_t)c->cap * sizeof *c->items);
    }
    c->items[c->n++] = x;
}

static void push(vm *m, val *v) {
    if (m->sp == m->cap_stack) {
        m->cap_stack = m->cap_stack ? 2 * m->cap_stack : 256;
        m->stack = musae_xrealloc(m->stack, (size_t)m->cap_stack * sizeof *m->stack);
    }
    m->stack[m->sp++] = v;
}

static void vm_free(vm *m) {
    for (int64_t i = 0; i < m->n_all; i++) {
        free(m->all[i]->s);
        free(m->all[i]->items);
        free(m->all[i]);
    }
    free(m->all), free(m->stack), free(m->memo);
}

static const struct {
    const char *name, *dtype;
} k_storages[] = {{"torch.FloatStorage", "F32"}, {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
                  {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"}, {"torch.IntStorage", "I32"},
                  {"torch.ShortStorage", "I16"}, {"torch.CharStorage", "I8"},  {"torch.ByteStorage", "U8"},
                  {"torch.BoolStorage", "BOOL"}};

static int allowed_global(const char *g) {
    if (!strcmp(g, "collections.OrderedDict") || !strcmp(g, "torch._utils._rebuild_tensor_v2") ||
        !strcmp(g, "torch._utils._rebuild_parameter"))
        return 1;
    for (size_t i = 0; i < sizeof k_storages / sizeof k_storages[0]; i++)
        if (!strcmp(g, k_storages[i].name)) return 1;
    return 0;
}

/* Runs the pickle; *out = the unpickled top object. 0, or -1 with the reason. */
static int unpickle(vm *m, const char *path, const uint8_t *b, size_t n, val **out, char *err, size_t en) {
    size_t p = 0;
#define NEED(k)                                                                                            \
    do {                                                                                                   \
        if ((size_t)(k) > n - p) return fail(err, en, "%s: data.pkl: truncated at byte %zu", path, p);    \
    } while (0)
#define POP(v)                                                                                             \
    do {                                                                                                   \
        if (m->sp < 1) return fail(err, en, "%s: data.pkl: stack underflow at byte %zu", path, at);       \
        v = m->stack[--m->sp];                                                                             \
    } while (0)
    while (p < n) {
        const size_t at = p;
        const uint8_t op = b[p++];
        val *v, *a, *c;
        switch (op) {
        case 0x80: NEED(1); p++; break;           /* PROTO */
        case 0x95: NEED(8); p += 8; break;        /* FRAME */
        case '(': push(m, mk(m, V_MARK)); break;  /* MARK */
        case ')': push(m, mk(m, V_TUPLE)); break; /* EMPTY_TUPLE */
        case ']': push(m, mk(m, V_LIST)); break;
        case '}': push(m, mk(m, V_DICT)); break;
        case 'N': push(m, mk(m, V_NONE)); break;
        case 0x88: case 0x89: v = mk(m, V_BOOL), v->i = op == 0x88, push(m, v); break;
        case 'K': NEED(1); v = mk(m, V_INT), v->i = b[p], p += 1, push(m, v); break;
        case 'M': NEED(2); v = mk(m, V_INT), v->i = (int64_t)rd(b + p, 2), p += 2, push(m, v); break;
        case 'J': NEED(4); v = mk(m, V_INT), v->i = (int32_t)rd(b + p, 4), p += 4, push(m, v); break;
        case 0x8a: { /* LONG1: little-endian two's complement of up to 8 bytes */
            NEED(1);
            const uint8_t k = b[p++];
            if (k > 8) return fail(err, en, "%s: data.pkl: integer of %d bytes at byte %zu", path, k, at);
            NEED(k);
            uint64_t u = rd(b + p, k);
            if (k && k < 8 && (b[p + k - 1] & 0x80)) u |= ~0ull << (8 * k);
            v = mk(m, V_INT), v->i = (int64_t)u, p += k, push(m, v);
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            NEED(8);
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | b[p + i];
            v = mk(m, V_FLOAT), memcpy(&v->f, &u, 8), p += 8, push(m, v);
            break;
        }
        case 'X': case 0x8c: { /* BINUNICODE, SHORT_BINUNICODE */
            const int lb = op == 'X' ? 4 : 1;
            NEED(lb);
            const uint64_t len = rd(b + p, lb);
            p += lb;
            NEED(len);
            v = mk(m, V_STR), v->s = musae_xmalloc(len + 1), memcpy(v->s, b + p, len), v->s[len] = 0;
            p += len, push(m, v);
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *e1 = memchr(b + p, '\n', n - p);
            const uint8_t *e2 = e1 ? memchr(e1 + 1, '\n', (size_t)(b + n - e1 - 1)) : NULL;
            if (!e2 || e2 - (b + p) > 200) return fail(err, en, "%s: data.pkl: bad GLOBAL at byte %zu", path, at);
            char g[256];
            snprintf(g, sizeof g, "%.*s.%.*s", (int)(e1 - (b + p)), (const char *)b + p, (int)(e2 - e1 - 1),
                     (const char *)e1 + 1);
            if (!allowed_global(g))
                return fail(err, en, "%s: data.pkl refers to '%s' at byte %zu: only a state_dict's tensors are read "
                            "(nothing in the file is executed)", path, g, at);
            v = mk(m, V_GLOBAL), v->s = musae_xstrdup(g), push(m, v);
            p = (size_t)(e2 + 1 - b);
            break;
        }
        case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            int64_t idx = m->n_memo;
            if (op != 0x94) {
                const int lb = op == 'q' ? 1 : 4;
                NEED(lb);
                idx = (int64_t)rd(b + p, lb), p += lb;
            }
            if (m->sp < 1 || idx > m->n_memo + (1 << 20))
                return fail(err, en, "%s: data.pkl: bad memo index %lld at byte %zu", path, (long long)idx, at);
            if (idx >= m->n_memo) {
                m->memo = musae_xrealloc(m->memo, (size_t)(idx + 1) * sizeof *m->memo);
                for (int64_t i = m->n_memo; i <= idx; i++) m->memo[i] = NULL;
                m->n_memo = idx + 1;
            }
            m->memo[idx] = m->stack[m->sp - 1];
            break;
        }
        case 'h': case 'j': { /* BINGET, LONG_BINGET */
            const int lb = op == 'h' ? 1 : 4;
            NEED(lb);
            const int64_t idx = (int64_t)rd(b + p, lb);
            p += lb;
            if (idx >= m->n_memo || !m->memo[idx])
                return fail(err, en, "%s: data.pkl: memo %lld read before written at byte %zu", path, (long long)idx, at);
            push(m, m->memo[idx]);
            break;
        }
        case 't': case 'u': case 'e': { /* TUPLE, SETITEMS, APPENDS: everything above the last MARK */
            int64_t k = m->sp - 1;
            while (k >= 0 && m->stack[k]->kind != V_MARK) k--;
            if (k < 0) return fail(err, en, "%s: data.pkl: no MARK for the opcode at byte %zu", path, at);
            if (op == 't') {
                v = mk(m, V_TUPLE);
                for (int64_t i = k + 1; i < m->sp; i++) add_item(v, m->stack[i]);
                m->sp = k;
                push(m, v);
                break;
            }
            if (k < 1) return fail(err, en, "%s: data.pkl: nothing to add to at byte %zu", path, at);
            c = m->stack[k - 1];
            const int dict = op == 'u';
            if (c->kind != (dict ? V_DICT : V_LIST) || (dict && (m->sp - k - 1) % 2))
                return fail(err, en, "%s: data.pkl: %s on a non-%s at byte %zu", path, dict ? "SETITEMS" : "APPENDS",
                            dict ? "dict" : "list", at);
            for (int64_t i = k + 1; i < m->sp; i++) add_item(c, m->stack[i]);
            m->sp = k;
            break;
        }
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            const int64_t k = op - 0x84;
            if (m->sp < k) return fail(err, en, "%s: data.pkl: stack underflow at byte %zu", path, at);
            v = mk(m, V_TUPLE);
            for (int64_t i = m->sp - k; i < m->sp; i++) add_item(v, m->stack[i]);
            m->sp -= k;
            push(m, v);
            break;
        }
        case 's': case 'a': /* SETITEM, APPEND */
            if (op == 's') {
                POP(v);
                POP(a);
                if (m->sp < 1 || m->stack[m->sp - 1]->kind != V_DICT)
                    return fail(err, en, "%s: data.pkl: SETITEM on a non-dict at byte %zu", path, at);
                add_item(m->stack[m->sp - 1], a), add_item(m->stack[m->sp - 1], v);
            } else {
                POP(v);
                if (m->sp < 1 || m->stack[m->sp - 1]->kind != V_LIST)
                    return fail(err, en, "%s: data.pkl: APPEND on a non-list at byte %zu", path, at);
                add_item(m->stack[m->sp - 1], v);
            }
            break;
        case 'Q': { /* BINPERSID: ('storage', StorageType, key, location, numel) */
            POP(a);
            if (a->kind != V_TUPLE || a->n != 5 || a->items[0]->kind != V_STR || strcmp(a->items[0]->s, "storage") ||
                a->items[1]->kind != V_GLOBAL || a->items[2]->kind != V_STR || a->items[4]->kind != V_INT ||
                a->items[4]->i < 0)
                return fail(err, en, "%s: data.pkl: persistent id at byte %zu is not a torch storage", path, at);
            v = mk(m, V_STORAGE);
            for (size_t i = 0; i < sizeof k_storages / sizeof k_storages[0]; i++)
                if (!strcmp(a->items[1]->s, k_storages[i].name)) v->dtype = k_storages[i].dtype;
            if (!v->dtype) return fail(err, en, "%s: data.pkl: '%s' is not a storage type", path, a->items[1]->s);
            v->s = musae_xstrdup(a->items[2]->s), v->i = a->items[4]->i;
            push(m, v);
            break;
        }
        case 'R': { /* REDUCE: only the allowed constructors, applied by hand */
            POP(a);
            POP(c);
            if (c->kind != V_GLOBAL || a->kind != V_TUPLE)
                return fail(err, en, "%s: data.pkl: REDUCE of a non-global at byte %zu", path, at);
            if (!strcmp(c->s, "collections.OrderedDict")) {
                if (a->n) return fail(err, en, "%s: data.pkl: OrderedDict with arguments at byte %zu", path, at);
                push(m, mk(m, V_DICT));
            } else if (!strcmp(c->s, "torch._utils._rebuild_tensor_v2")) {
                if (a->n < 4 || a->items[0]->kind != V_STORAGE || a->items[1]->kind != V_INT ||
                    a->items[2]->kind != V_TUPLE || a->items[3]->kind != V_TUPLE)
                    return fail(err, en, "%s: data.pkl: _rebuild_tensor_v2 arguments at byte %zu", path, at);
                v = mk(m, V_TENSOR), v->i = a->items[1]->i;
                add_item(v, a->items[0]), add_item(v, a->items[2]), add_item(v, a->items[3]);
                push(m, v);
            } else if (!strcmp(c->s, "torch._utils._rebuild_parameter")) {
                if (a->n < 1 || a->items[0]->kind != V_TENSOR)
                    return fail(err, en, "%s: data.pkl: _rebuild_parameter arguments at byte %zu", path, at);
                push(m, a->items[0]);
            } else {
                return fail(err, en, "%s: data.pkl: '%s' cannot be called (byte %zu)", path, c->s, at);
            }
            break;
        }
        case 'b': /* BUILD: a state for the object below (an OrderedDict's _metadata): not needed, dropped */
            POP(a);
            if (m->sp < 1 || (m->stack[m->sp - 1]->kind != V_DICT && m->stack[m->sp - 1]->kind != V_TENSOR))
                return fail(err, en, "%s: data.pkl: BUILD on an unexpected object at byte %zu", path, at);
            break;
        case '.': /* STOP */
            POP(v);
            *out = v;
            return 0;
        default:
            return fail(err, en, "%s: data.pkl: pickle opcode 0x%02x at byte %zu is not one a state_dict uses", path, op,
                        at);
        }
    }
#undef NEED
#undef POP
    return fail(err, en, "%s: data.pkl: no STOP (truncated)", path);
}

/* ---- into a musae_st ------------------------------------------------------------------------------------- */
static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const musae_st_tensor *)a)->name, ((const musae_st_tensor *)b)->name);
}

static int build(musae_st *st, const char *path, const uint8_t *buf, size_t size, char *err, size_t en) {
    zip_dir z;
    vm m = {0};
    int rc = zip_read(&z, path, buf, size, err, en);
    if (rc) goto done;
    const zip_entry *pkl = NULL;
    for (int64_t i = 0; i < z.n && !pkl; i++) { /* "<archive>/data.pkl": one folder level */
        const char *s = strchr(z.e[i].name, '/');
        if (s && s != z.e[i].name && !strcmp(s, "/data.pkl")) pkl = &z.e[i];
    }
    if (!pkl) {
        rc = fail(err, en, "%s: no <archive>/data.pkl entry (not a torch.save checkpoint)", path);
        goto done;
    }
    const size_t plen = strlen(pkl->name) - strlen("data.pkl"); /* "<archive>/" */
    val *top = NULL;
    if ((rc = unpickle(&m, path, pkl->data, pkl->size, &top, err, en))) goto done;
    if (top->kind != V_DICT) {
        rc = fail(err, en, "%s: data.pkl holds no state_dict (a dict of tensors)", path);
        goto done;
    }
    st->tensors = musae_xcalloc((size_t)(top->n / 2 + 1), sizeof *st->tensors);
    for (int64_t i = 0; i + 1 < top->n; i += 2) {
        const val *k = top->items[i], *t = top->items[i + 1];
        if (k->kind != V_STR || t->kind != V_TENSOR) {
            rc = fail(err, en, "%s: state_dict entry %lld is not a name and a tensor", path, (long long)i / 2);
            goto done;
        }
        const val *sto = t->items[0], *sz = t->items[1], *sd = t->items[2];
        musae_st_tensor *o = &st->tensors[st->n_tensors];
        if (sz->n > MUSAE_ST_MAX_RANK || sd->n != sz->n) {
            rc = fail(err, en, "%s: tensor '%s': rank %lld (strides %lld)", path, k->s, (long long)sz->n, (long long)sd->n);
            goto done;
        }
        if (!musae_st_dtype_known(sto->dtype)) {
            rc = fail(err, en, "%s: tensor '%s': dtype %s is not supported", path, k->s, sto->dtype);
            goto done;
        }
        const size_t es = musae_st_dtype_size(sto->dtype);
        int64_t numel = 1, expect = 1;
        for (int64_t d = sz->n - 1; d >= 0; d--) {
            const val *a = sz->items[d], *s = sd->items[d];
            if (a->kind != V_INT || s->kind != V_INT || a->i < 0 || a->i > (int64_t)1 << 40) {
                rc = fail(err, en, "%s: tensor '%s': bad size or stride", path, k->s);
                goto done;
            }
            if (a->i > 1 && s->i != expect) {
                rc = fail(err, en, "%s: tensor '%s' is not contiguous (stride %lld of dim %lld, want %lld)", path, k->s,
                          (long long)s->i, (long long)d, (long long)expect);
                goto done;
            }
            o->shape[d] = a->i;
            expect *= a->i, numel *= a->i;
            if (numel > (int64_t)1 << 40) {
                rc = fail(err, en, "%s: tensor '%s' is too large", path, k->s);
                goto done;
            }
        }
        char ename[1024];
        snprintf(ename, sizeof ename, "%.*sdata/%s", (int)plen, pkl->name, sto->s);
        const zip_entry *data = zip_find(&z, ename);
        if (!data) {
            rc = fail(err, en, "%s: tensor '%s': storage entry '%s' is missing", path, k->s, ename);
            goto done;
        }
        if ((uint64_t)sto->i * es != data->size || t->i < 0 || t->i > sto->i || numel > sto->i - t->i) {
            rc = fail(err, en, "%s: tensor '%s' (%lld elements at %lld) does not fit its storage '%s' (%llu bytes, %lld "
                      "elements declared)", path, k->s, (long long)numel, (long long)t->i, ename,
                      (unsigned long long)data->size, (long long)sto->i);
            goto done;
        }
        o->name = musae_xstrdup(k->s);
        snprintf(o->dtype, sizeof o->dtype, "%s", sto->dtype);
        o->rank = (int)sz->n;
        o->data = data->data + (size_t)t->i * es;
        o->nbytes = (size_t)numel * es;
        o->file = 0;
        st->n_tensors++;
    }
    if (st->n_tensors > 1) qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor);
    for (int i = 1; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name)) {
            rc = fail(err, en, "%s: tensor '%s' appears twice", path, st->tensors[i].name);
            goto done;
        }
    rc = 0;
done:
    vm_free(&m);
    zip_free(&z);
    return rc;
}

int musae_torch_zip_parse(musae_st *st, const char *name, const uint8_t *buf, size_t size, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    st->path = musae_xstrdup(name);
    st->files = musae_xcalloc(1, sizeof *st->files);
    st->n_files = 1;
    st->files[0].path = musae_xstrdup(name);
    st->files[0].size = size;
    const int rc = build(st, name, buf, size, err, errlen);
    if (rc) musae_st_close(st);
    return rc;
}

int musae_torch_zip_open(musae_st *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        return fail(err, errlen, "%s: not a regular non-empty file", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return fail(err, errlen, "%s: cannot map: %s", path, strerror(errno));
    st->path = musae_xstrdup(path);
    st->files = musae_xcalloc(1, sizeof *st->files);
    st->n_files = 1;
    st->files[0].path = musae_xstrdup(path);
    st->files[0].map = map;
    st->files[0].size = (size_t)sb.st_size;
    const int rc = build(st, path, map, (size_t)sb.st_size, err, errlen);
    if (rc) musae_st_close(st);
    return rc;
}
