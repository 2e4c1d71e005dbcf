/* A deterministic synthetic EnCodec checkpoint: every weight is a pure function of its state_dict name and
 * shape (the "hash-defined EnCodec" rule of tools/reference/README.md, which the HF goldens in
 * tests/fixtures/golden/encodec32k_hash.safetensors were made with). Tests and benchmarks build the
 * real-size 32 kHz codec from it without downloading 59M parameters or committing them. */
#ifndef MUSAE_ENCODEC_HASH_H
#define MUSAE_ENCODEC_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "host/io/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills out[0..n) with the values of the tensor `name` (transformers-5 spelling) of the given shape. */
void encodec_hash_fill(const char *name, int rank, const int64_t *shape, float *out);

/* Every state_dict entry of cfg's EncodecModel as one safetensors file image (F32, 8-byte aligned data),
 * with weight norm spelled weight_g / weight_v when legacy_names (older transformers),
 * parametrizations.weight.original0/1 otherwise. malloc'd; *size gets its length. Tests parse it in
 * memory (musae_st_parse), which skips writing and reading 236 MB for the real-size codec. */
uint8_t *encodec_hash_image(const musae_encodec_config *cfg, int legacy_names, size_t *size);
/* The same image written to path atomically. 0, or -1 with the reason in err. */
int encodec_hash_write(const musae_encodec_config *cfg, const char *path, int legacy_names, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ENCODEC_HASH_H */
