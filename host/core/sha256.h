/* SHA-256 (FIPS 180-4) of a file, to record exactly which weights an output was computed from. */
#ifndef MUSAE_SHA256_H
#define MUSAE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t h[8];
    uint64_t len;       /* bytes hashed */
    uint8_t buf[64];
    size_t n;           /* bytes waiting in buf */
} musae_sha256;

void musae_sha256_init(musae_sha256 *s);
void musae_sha256_update(musae_sha256 *s, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL. */
void musae_sha256_hex(musae_sha256 *s, char out[65]);
/* The hex digest of a whole file: 0, or -1 (errno set) when it cannot be read. */
int musae_sha256_file(const char *path, char out[65]);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SHA256_H */
