/* safetensors fixtures and goldens in tests: a file that does not open or a tensor that is missing ends the test
 * (exit 1) with a line naming the file and the tensor. */
#ifndef MUSAE_TEST_ST_TEST_H
#define MUSAE_TEST_ST_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "host/io/safetensors.h"
#include "test.h"

static inline void st_open_or_die(musae_st *st, const char *path) {
    char err[1024];
    if (musae_st_open(st, path, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

/* test_fixtures()/rel */
static inline void fixture_open(musae_st *st, const char *rel) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", test_fixtures(), rel);
    st_open_or_die(st, path);
}

/* Tensor `name` converted to dt (malloc'd; free() it); its shape into shape[rank] when shape is not NULL. */
static inline void *st_load_or_die(musae_st *st, const char *name, musae_dtype dt, int64_t *shape) {
    int rank;
    int64_t sh[8];
    void *p = musae_st_load_any(st, name, dt, &rank, sh);
    if (!p) {
        fprintf(stderr, "%s: tensor '%s' missing (regenerate the fixtures with tools/reference)\n", st->path, name);
        exit(1);
    }
    if (shape)
        for (int i = 0; i < rank; i++) shape[i] = sh[i];
    return p;
}

#endif /* MUSAE_TEST_ST_TEST_H */
