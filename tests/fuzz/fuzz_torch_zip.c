/* libFuzzer target: arbitrary bytes as a torch.save zip through musae_torch_zip_parse (the zip directory, the
 * restricted pickle interpreter, the tensor checks). An accepted file must be internally consistent: every
 * tensor findable by name, its bytes inside the input, numel x dtype size == nbytes, readable as f32. A
 * rejection names the file. Built only with -DMUSAE_FUZZ=ON (tests/fuzz.cmake, scripts/fuzz.sh). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/io/torch_zip.h"

#define REQUIRE(c) \
    do {           \
        if (!(c)) __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    musae_st st;
    char err[512];
    err[0] = 0x7f;
    if (musae_torch_zip_parse(&st, "fuzz.bin", data, size, err, sizeof err) != 0) {
        REQUIRE(memchr(err, 0, sizeof err) != NULL && !strncmp(err, "fuzz.bin: ", 10));
        return 0;
    }
    for (int i = 0; i < st.n_tensors; i++) {
        musae_st_tensor *t = &st.tensors[i];
        REQUIRE(t->name && musae_st_find(&st, t->name) == t);
        REQUIRE(t->data >= data && t->nbytes <= size && t->data + t->nbytes <= data + size);
        REQUIRE((uint64_t)musae_st_numel(t) * musae_st_dtype_size(t->dtype) == t->nbytes);
        if (t->nbytes <= (1u << 20)) {
            float *v = malloc((size_t)musae_st_numel(t) * sizeof(float) + 1);
            musae_st_read(&st, t, v, MUSAE_F32);
            free(v);
        }
    }
    musae_st_close(&st);
    return 0;
}
