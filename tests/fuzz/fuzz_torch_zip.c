/* libFuzzer target: arbitrary bytes as a torch.save zip through musae_torch_zip_parse (the zip directory, the
 * restricted pickle interpreter, the tensor checks), checked by the shared harness (fuzz_harness.h). Built only
 * with -DMUSAE_FUZZ=ON (tests/fuzz.cmake, scripts/fuzz.sh). */
#include "fuzz_harness.h"
#include "host/io/torch_zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    musae_st st;
    char err[512];
    err[0] = 0x7f;
    const int rc = musae_torch_zip_parse(&st, "fuzz.bin", data, size, err, sizeof err);
    fuzz_st_check(rc, &st, "fuzz.bin", data, size, err, sizeof err);
    return 0;
}
