/* SHA-256 (FIPS 180-4) of a file or of bytes, to record exactly which weights an output was computed from.
 * OpenSSL's libcrypto does the hashing: it picks the SHA extensions or AVX2 code the CPU has, about 5x (SHA-NI)
 * the speed of a portable C loop, which `musae analyze` pays on every run for its SAE's 30-500 MB of weights. */
#ifndef MUSAE_SHA256_H
#define MUSAE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    void *ctx;          /* OpenSSL's EVP_MD_CTX, from init until musae_sha256_hex frees it */
} musae_sha256;

void musae_sha256_init(musae_sha256 *s);
void musae_sha256_update(musae_sha256 *s, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL; ends the hash (frees its state). */
void musae_sha256_hex(musae_sha256 *s, char out[65]);
/* The hex digest of a whole file: 0, or -1 (errno set) when it cannot be read. */
int musae_sha256_file(const char *path, char out[65]);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SHA256_H */
