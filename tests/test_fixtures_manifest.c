/* The committed fixtures are the ones tests/fixtures/MANIFEST.json lists: every listed file exists with the listed
 * byte count and sha256, every file under tests/fixtures/ is listed, the listed total is the sum, and each entry
 * names a generating script that exists. So a golden cannot change (or appear) silently: regenerating one means
 * regenerating MANIFEST.json too (tools/reference/make_all.py), and the diff shows it.
 *
 * SHA-256 (FIPS 180-4) is written out here, checked first against the standard's test vectors, so the test needs
 * no Python and no crypto library. */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/core/check.h"
#include "test.h"

/* ---- SHA-256 ----------------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t h[8];
    uint64_t bytes;       /* message length so far */
    uint8_t block[64];    /* the pending partial block */
    size_t fill;
} sha256_ctx;

static const uint32_t k_sha256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_init(sha256_ctx *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->bytes = 0;
    c->fill = 0;
}

/* One 64-byte block into the state (FIPS 180-4 §6.2.2). */
static void sha256_block(sha256_ctx *c, const uint8_t *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        const uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        const uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int t = 0; t < 64; t++) {
        const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k_sha256[t] + w[t];
        const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_update(sha256_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->bytes += n;
    while (n > 0) {
        const size_t take = n < 64 - c->fill ? n : 64 - c->fill;
        memcpy(c->block + c->fill, p, take);
        c->fill += take, p += take, n -= take;
        if (c->fill == 64) {
            sha256_block(c, c->block);
            c->fill = 0;
        }
    }
}

/* The digest as 64 lowercase hex digits (hex: 65 bytes). */
static void sha256_hex(sha256_ctx *c, char *hex) {
    const uint64_t bits = c->bytes * 8;
    uint8_t pad[72] = {0x80};
    const size_t npad = (c->fill < 56 ? 56 : 120) - c->fill; /* 0x80, zeros, to 8 bytes short of a block */
    for (int i = 0; i < 8; i++) pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, pad, npad + 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}

static void sha256_of(const void *data, size_t n, char *hex) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_hex(&c, hex);
}

/* FIPS 180-4 examples (one block, two blocks, a million 'a') and the empty message, plus the 55/56/64-byte
 * lengths where the padding spills into a second block. */
static void test_sha256(void) {
    char hex[65];
    sha256_of("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('') = %s", hex);
    sha256_of("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256('abc') = %s", hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_of(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "two-block message: %s", hex);
    sha256_ctx c;
    sha256_init(&c);
    char a[1000];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 1000; i++) sha256_update(&c, a, sizeof a);
    sha256_hex(&c, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "a million 'a': %s", hex);
    const struct {
        size_t n;
        const char *want;
    } lens[3] = {{55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
                 {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
                 {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"}};
    for (int i = 0; i < 3; i++) {
        sha256_of(a, lens[i].n, hex);
        CHECK(!strcmp(hex, lens[i].want), "%zu x 'a': %s", lens[i].n, hex);
    }
}

/* ---- the manifest ------------------------------------------------------------------------------------------ */

static const cJSON *g_files; /* MANIFEST.json's "files": {relative path: {bytes, script, sha256}} */
static size_t g_root_len;    /* strlen of the fixtures folder + 1 (the relative path starts there) */
static int g_on_disk;

/* nftw callback: every file under the fixtures folder but MANIFEST.json is listed; nothing but plain files and
 * folders (a symlink could point a golden anywhere). */
static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)ftw;
    if (type == FTW_D || type == FTW_DP) return 0;
    const char *rel = path + g_root_len;
    if (type != FTW_F) {
        CHECK(0, "tests/fixtures/%s is not a plain file (nftw type %d)", rel, type);
        return 0;
    }
    if (!strcmp(rel, "MANIFEST.json")) return 0;
    g_on_disk++;
    CHECK(cJSON_GetObjectItemCaseSensitive(g_files, rel) != NULL,
          "tests/fixtures/%s is not in MANIFEST.json (regenerate it with tools/reference/make_all.py)", rel);
    return 0;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, k;
    char *buf = musae_xmalloc(cap + 1);
    while ((k = fread(buf + len, 1, cap - len, f)) > 0)
        if ((len += k) == cap) buf = musae_xrealloc(buf, (cap *= 2) + 1);
    fclose(f);
    buf[len] = 0;
    *n = len;
    return buf;
}

static void test_manifest(void) {
    char root[1024], path[2048];
    snprintf(root, sizeof root, "%s", test_fixtures());
    snprintf(path, sizeof path, "%s/MANIFEST.json", root);
    size_t n;
    char *txt = read_all(path, &n);
    if (!txt) {
        CHECK(0, "%s: cannot read", path);
        return;
    }
    cJSON *m = cJSON_Parse(txt);
    free(txt);
    g_files = cJSON_GetObjectItemCaseSensitive(m, "files");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(m, "total_bytes");
    if (!cJSON_IsObject(g_files) || !cJSON_IsNumber(total)) {
        CHECK(0, "%s: not JSON with a \"files\" object and a \"total_bytes\" number", path);
        cJSON_Delete(m);
        return;
    }
    double sum = 0;
    int listed = 0, good = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, g_files) {
        listed++;
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(e, "bytes");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(e, "sha256");
        const cJSON *script = cJSON_GetObjectItemCaseSensitive(e, "script");
        if (!cJSON_IsNumber(bytes) || !cJSON_IsString(sha) || !cJSON_IsString(script)) {
            CHECK(0, "MANIFEST.json: %s lacks bytes, sha256 or script", e->string);
            continue;
        }
        sum += bytes->valuedouble;
        /* the generating script, relative to the repository (two folders above tests/fixtures) */
        snprintf(path, sizeof path, "%s/../../%s", root, script->valuestring);
        struct stat sb;
        CHECK(stat(path, &sb) == 0, "MANIFEST.json: %s names the script %s, which does not exist", e->string,
              script->valuestring);
        snprintf(path, sizeof path, "%s/%s", root, e->string);
        char *data = read_all(path, &n);
        if (!data) {
            CHECK(0, "tests/fixtures/%s is listed in MANIFEST.json but cannot be read", e->string);
            continue;
        }
        char hex[65];
        sha256_of(data, n, hex);
        free(data);
        const int same_size = (double)n == bytes->valuedouble, same_hash = !strcmp(hex, sha->valuestring);
        CHECK(same_size, "tests/fixtures/%s has %zu bytes, MANIFEST.json says %.0f", e->string, n, bytes->valuedouble);
        CHECK(same_hash, "tests/fixtures/%s has sha256 %s, MANIFEST.json says %s (a golden changed: regenerate with "
                         "tools/reference/make_all.py, which rewrites the manifest)",
              e->string, hex, sha->valuestring);
        good += same_size && same_hash;
    }
    CHECK(sum == total->valuedouble, "MANIFEST.json: total_bytes %.0f, the files sum to %.0f", total->valuedouble, sum);
    g_root_len = strlen(root) + 1;
    g_on_disk = 0;
    CHECK(nftw(root, visit, 16, FTW_PHYS) == 0, "cannot walk %s", root);
    CHECK(listed > 0 && g_on_disk == listed, "%d files listed, %d under tests/fixtures", listed, g_on_disk);
    printf("MANIFEST.json: %d of %d fixture files match (bytes and sha256), %d files on disk, %.0f bytes\n", good,
           listed, g_on_disk, sum);
    cJSON_Delete(m);
}

int main(void) {
    test_sha256();
    test_manifest();
    TEST_END();
}
