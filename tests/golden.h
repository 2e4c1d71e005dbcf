/* The golden files of the PyTorch reference scripts (tools/reference/), under test_fixtures()/golden/. */
#ifndef MUSAE_TEST_GOLDEN_H
#define MUSAE_TEST_GOLDEN_H

#include <stdio.h>

#include "host/io/safetensors.h"
#include "test.h"

/* Opens golden/<name>: 0, or -1 with a failed check naming the file (the caller then skips what needs it). */
static inline int golden_open(musae_st *st, const char *name) {
    char path[1024], err[1200];
    snprintf(path, sizeof path, "%s/golden/%s", test_fixtures(), name);
    if (musae_st_open(st, path, err, sizeof err) == 0) return 0;
    CHECK(0, "%s", err);
    return -1;
}

#endif /* MUSAE_TEST_GOLDEN_H */
