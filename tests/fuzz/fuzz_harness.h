/* What the libFuzzer targets (tests/fuzz/fuzz_*.c) require of every input, as one harness: a rejection explains
 * itself in a NUL-terminated message that starts with the file's name; a file accepted by a parser that fills a
 * musae_st (safetensors, torch.save zips) is internally consistent: every tensor findable by name, its bytes
 * inside the input, numel x dtype size == nbytes, every loadable tensor up to 1 MiB readable as f32 and f16,
 * every metadata key findable. A broken requirement traps: libFuzzer reports it as a crash, with the input. */
#ifndef MUSAE_FUZZ_HARNESS_H
#define MUSAE_FUZZ_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/io/safetensors.h"

#define REQUIRE(c)                      \
    do {                                \
        if (!(c)) __builtin_trap();     \
    } while (0)

/* A rejection's message err[errlen]: NUL-terminated, "<path>: ...". */
static inline void fuzz_named_error(const char *err, size_t errlen, const char *path) {
    const size_t n = strlen(path);
    REQUIRE(memchr(err, 0, errlen) != NULL && !strncmp(err, path, n) && !strncmp(err + n, ": ", 2));
}

/* The outcome of parse(&st, path, data, size, err, errlen) (rc: its return value): checked, and st closed. */
static inline void fuzz_st_check(int rc, musae_st *st, const char *path, const uint8_t *data, size_t size,
                                 const char *err, size_t errlen) {
    if (rc != 0) {
        fuzz_named_error(err, errlen, path);
        return;
    }
    for (int i = 0; i < st->n_tensors; i++) {
        musae_st_tensor *t = &st->tensors[i];
        REQUIRE(t->name && musae_st_find(st, t->name) == t);
        REQUIRE(t->data >= data && t->nbytes <= size && t->data + t->nbytes <= data + size);
        REQUIRE((uint64_t)musae_st_numel(t) * musae_st_dtype_size(t->dtype) == t->nbytes);
        if (musae_st_dtype_known(t->dtype) && t->nbytes <= (1u << 20)) {
            const size_t n = (size_t)musae_st_numel(t);
            float *f = malloc(n * 4 + 1);
            uint16_t *h = malloc(n * 2 + 1);
            musae_st_read(st, t, f, MUSAE_F32);
            musae_st_read(st, t, h, MUSAE_F16);
            free(f);
            free(h);
        }
    }
    for (int i = 0; i < st->n_meta; i++) REQUIRE(musae_st_meta(st, st->meta_keys[i]) != NULL);
    musae_st_close(st);
}

#endif /* MUSAE_FUZZ_HARNESS_H */
