/* SHA-256 through OpenSSL's EVP interface (sha256.h). A failure inside libcrypto (out of memory, a FIPS
 * provider refusing the digest) is a fatal error naming the call, never a wrong digest. */
#include "host/core/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "host/core/check.h"

void musae_sha256_init(musae_sha256 *s) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) musae_fail("sha256: EVP_DigestInit_ex failed");
    s->ctx = c;
}

void musae_sha256_update(musae_sha256 *s, const void *data, size_t n) {
    if (n && EVP_DigestUpdate((EVP_MD_CTX *)s->ctx, data, n) != 1) musae_fail("sha256: EVP_DigestUpdate failed");
}

void musae_sha256_hex(musae_sha256 *s, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)s->ctx, md, &len) != 1 || len != 32)
        musae_fail("sha256: EVP_DigestFinal_ex failed");
    EVP_MD_CTX_free((EVP_MD_CTX *)s->ctx);
    s->ctx = NULL;
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int musae_sha256_file(const char *path, char out[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    musae_sha256 s;
    musae_sha256_init(&s);
    static _Thread_local unsigned char buf[1 << 18];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) musae_sha256_update(&s, buf, got);
    const int bad = ferror(f), err = errno;
    fclose(f);
    char hex[65];
    musae_sha256_hex(&s, hex); /* also frees the state on a read error */
    if (bad) {
        errno = err ? err : EIO;
        return -1;
    }
    memcpy(out, hex, sizeof hex);
    return 0;
}
