/* libFuzzer target: arbitrary bytes as a .safetensors file image through musae_st_parse (the same validation
 * musae_st_open runs on an mmapped file). An accepted file must then be internally consistent: every tensor
 * findable by name, its bytes inside the input, numel x dtype size == nbytes, and every loadable tensor
 * readable as f32 and f16. Built only with -DMUSAE_FUZZ=ON (tests/fuzz.cmake, scripts/fuzz.sh). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/io/safetensors.h"

#define REQUIRE(c) \
    do {           \
        if (!(c)) __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    musae_st st;
    char err[512];
    err[0] = 0x7f;
    if (musae_st_parse(&st, "fuzz.safetensors", data, size, err, sizeof err) != 0) {
        /* a rejection always explains itself, naming the file */
        REQUIRE(memchr(err, 0, sizeof err) != NULL && !strncmp(err, "fuzz.safetensors: ", 18));
        return 0;
    }
    for (int i = 0; i < st.n_tensors; i++) {
        musae_st_tensor *t = &st.tensors[i];
        REQUIRE(t->name && t->name[0]);
        REQUIRE(musae_st_find(&st, t->name) == t);
        REQUIRE(t->data >= data && t->nbytes <= size && t->data + t->nbytes <= data + size);
        REQUIRE((uint64_t)musae_st_numel(t) * musae_st_dtype_size(t->dtype) == t->nbytes);
        if (musae_st_dtype_known(t->dtype) && t->nbytes <= (1u << 20)) {
            size_t n = (size_t)musae_st_numel(t);
            float *f = malloc(n * 4 + 1);
            uint16_t *h = malloc(n * 2 + 1);
            musae_st_read(&st, t, f, MUSAE_F32);
            musae_st_read(&st, t, h, MUSAE_F16);
            free(f);
            free(h);
        }
    }
    for (int i = 0; i < st.n_meta; i++) REQUIRE(musae_st_meta(&st, st.meta_keys[i]) != NULL);
    musae_st_close(&st);
    return 0;
}
