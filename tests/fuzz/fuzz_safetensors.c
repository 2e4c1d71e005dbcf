/* libFuzzer target: arbitrary bytes as a .safetensors file image through musae_st_parse (the same validation
 * musae_st_open runs on an mmapped file), checked by the shared harness (fuzz_harness.h); a safetensors tensor
 * name is never empty. Built only with -DMUSAE_FUZZ=ON (tests/fuzz.cmake, scripts/fuzz.sh). */
#include "fuzz_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    musae_st st;
    char err[512];
    err[0] = 0x7f;
    const int rc = musae_st_parse(&st, "fuzz.safetensors", data, size, err, sizeof err);
    for (int i = 0; rc == 0 && i < st.n_tensors; i++) REQUIRE(st.tensors[i].name && st.tensors[i].name[0]);
    fuzz_st_check(rc, &st, "fuzz.safetensors", data, size, err, sizeof err);
    return 0;
}
