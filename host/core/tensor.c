#include "host/core/tensor.h"

#include <inttypes.h>

#define ARENA_ALIGN 64

musae_tensor musae_tensor_make(void *data, musae_dtype dtype, int rank, const int64_t *shape, musae_device dev) {
    MUSAE_ASSERT(rank >= 0 && rank <= MUSAE_MAX_RANK, "rank %d out of range 0..%d", rank, MUSAE_MAX_RANK);
    musae_tensor t = {.data = data, .dtype = dtype, .rank = rank, .device = dev};
    for (int i = 0; i < MUSAE_MAX_RANK; i++) {
        t.shape[i] = i < rank ? shape[i] : 1;
        MUSAE_ASSERT(t.shape[i] >= 0, "negative dimension %" PRId64 " at axis %d", t.shape[i], i);
    }
    return t;
}

int64_t musae_tensor_numel(const musae_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

size_t musae_tensor_nbytes(const musae_tensor *t) {
    return (size_t)musae_tensor_numel(t) * musae_dtype_size(t->dtype);
}

const char *musae_shape_str(int rank, const int64_t *shape, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

void musae_assert_shape(const musae_tensor *t, int rank, const int64_t *shape, const char *what) {
    int ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96], want[96];
        musae_shape_str(t->rank, t->shape, got, sizeof got);
        musae_shape_str(rank, shape, want, sizeof want);
        MUSAE_ASSERT(0, "%s has shape %s, expected %s", what ? what : "tensor", got, want);
    }
}

size_t musae_arena_footprint(size_t nbytes) { return (nbytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

void musae_arena_init(musae_arena *a, const char *name, size_t cap) {
    a->cap = musae_arena_footprint(cap);
    a->used = 0;
    a->device = MUSAE_DEVICE_CPU;
    a->name = name;
    a->base = NULL;
    if (a->cap) {
        a->base = aligned_alloc(ARENA_ALIGN, a->cap);
        if (!a->base) musae_fail("out of memory: arena '%s' needs %zu bytes", name, a->cap);
        memset(a->base, 0, a->cap);
    }
}

void *musae_arena_alloc(musae_arena *a, size_t nbytes) {
    size_t need = musae_arena_footprint(nbytes);
    MUSAE_ASSERT(a->used + need <= a->cap, "arena '%s' overflow: %zu used + %zu requested > %zu capacity", a->name,
                 a->used, need, a->cap);
    void *p = a->base + a->used;
    a->used += need;
    return p;
}

musae_tensor musae_arena_tensor(musae_arena *a, musae_dtype dtype, int rank, const int64_t *shape) {
    musae_tensor t = musae_tensor_make(NULL, dtype, rank, shape, a->device);
    t.data = musae_arena_alloc(a, musae_tensor_nbytes(&t));
    return t;
}

void musae_arena_reset(musae_arena *a) { a->used = 0; }

void musae_arena_free(musae_arena *a) {
    if (a->device == MUSAE_DEVICE_CPU) free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}
