/* host/core: dtype conversions on edge values, Philox known answers, arenas, tensor shapes, SHA-256 vectors. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/dtype.h"
#include "host/core/philox.h"
#include "host/core/progress.h"
#include "host/core/sha256.h"
#include "host/core/tensor.h"
#include "test.h"

static void test_f16(void) {
    struct {
        uint32_t f;
        uint16_t h;
        const char *what;
    } cases[] = {
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x3f800000u, 0x3c00, "1"},
        {0xc0000000u, 0xc000, "-2"},
        {0x477fe000u, 0x7bff, "65504 (max half)"},
        {0x477fefffu, 0x7bff, "just below 65520 rounds down"},
        {0x477ff000u, 0x7c00, "65520 ties to even: Inf"},
        {0x47800000u, 0x7c00, "65536 overflows"},
        {0x7f800000u, 0x7c00, "+Inf"},
        {0xff800000u, 0xfc00, "-Inf"},
        {0x38800000u, 0x0400, "2^-14 smallest normal"},
        {0x387fc000u, 0x03ff, "largest subnormal"},
        {0x33800000u, 0x0001, "2^-24 smallest subnormal"},
        {0x33000000u, 0x0000, "2^-25 ties to even: 0"},
        {0x33000001u, 0x0001, "just above 2^-25 rounds up"},
        {0x33c00000u, 0x0002, "1.5 * 2^-24 ties to even: 2"},
        {0x34200000u, 0x0002, "2.5 * 2^-24 ties to even: 2"},
        {0x3f801000u, 0x3c00, "1 + 2^-11 ties to even: 1"},
        {0x3f803000u, 0x3c02, "1 + 3*2^-11 ties to even: 1 + 2^-9"},
        {0x3f801001u, 0x3c01, "just above the tie rounds up"},
        {0x3effe000u, 0x37ff, "0.49993896 exact"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = musae_f32_to_f16(musae_bits_f32(cases[i].f));
        CHECK(h == cases[i].h, "f32->f16 %s: got 0x%04x want 0x%04x", cases[i].what, h, cases[i].h);
    }
    /* NaN stays NaN (quiet), both ways */
    uint16_t hn = musae_f32_to_f16(musae_bits_f32(0x7fc00000u));
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff), "NaN -> 0x%04x", hn);
    uint16_t hs = musae_f32_to_f16(musae_bits_f32(0x7f800001u)); /* signalling NaN with low payload only */
    CHECK((hs & 0x7c00) == 0x7c00 && (hs & 0x3ff), "sNaN must stay NaN, got 0x%04x", hs);
    CHECK(isnan(musae_f16_to_f32(0x7e00)), "f16 NaN -> f32 NaN");
    CHECK(isinf(musae_f16_to_f32(0xfc00)) && musae_f16_to_f32(0xfc00) < 0, "f16 -Inf");
    /* every finite half round-trips exactly through f32 */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        if (musae_f32_to_f16(musae_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
    CHECK(musae_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "subnormal 0x0001 = 2^-24");
    CHECK(musae_f16_to_f32(0x03ff) == 1023 * ldexpf(1.0f, -24), "largest subnormal");
}

static void test_bf16(void) {
    CHECK(musae_f32_to_bf16(1.0f) == 0x3f80, "1.0");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x3f808000u)) == 0x3f80, "tie to even down");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x3f818000u)) == 0x3f82, "tie to even up");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x3f808001u)) == 0x3f81, "above tie rounds up");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x7f7fffffu)) == 0x7f80, "FLT_MAX rounds to Inf");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0xff800000u)) == 0xff80, "-Inf");
    uint16_t n = musae_f32_to_bf16(musae_bits_f32(0x7f800001u));
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f), "sNaN with low payload stays NaN: 0x%04x", n);
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x00000001u)) == 0x0000, "smallest f32 subnormal rounds to 0");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x00008000u)) == 0x0000, "subnormal tie to even 0");
    CHECK(musae_f32_to_bf16(musae_bits_f32(0x00018000u)) == 0x0002, "subnormal tie to even 2");
    CHECK(musae_bf16_to_f32(0x0001) == musae_bits_f32(0x00010000u), "bf16 subnormal exact");
    int bad = 0;
    for (uint32_t b = 0; b < 0x10000u; b++) {
        if ((b & 0x7f80) == 0x7f80 && (b & 0x7f)) continue;
        if (musae_f32_to_bf16(musae_bf16_to_f32((uint16_t)b)) != b) bad++;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
}

static void test_convert(void) {
    float f[4] = {1.5f, -2.25f, 65504.f, 1e-8f}, g[4];
    uint16_t h[4];
    musae_convert(h, MUSAE_F16, f, MUSAE_F32, 4);
    musae_convert(g, MUSAE_F32, h, MUSAE_F16, 4);
    CHECK(g[0] == 1.5f && g[1] == -2.25f && g[2] == 65504.f, "f16 round trip");
    CHECK(g[3] == musae_f16_to_f32(musae_f32_to_f16(1e-8f)), "subnormal through bulk path");
    int64_t i64[3] = {0, 2047, -5};
    int32_t i32[3];
    musae_convert(i32, MUSAE_I32, i64, MUSAE_I64, 3);
    CHECK(i32[0] == 0 && i32[1] == 2047 && i32[2] == -5, "i64 -> i32");
}

/* Known answers of Random123's philox4x32-10 (kat_vectors). */
static void test_philox(void) {
    struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
         {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
         {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (int k = 0; k < 3; k++) {
        musae_u32x4 c = {{kat[k].ctr[0], kat[k].ctr[1], kat[k].ctr[2], kat[k].ctr[3]}};
        musae_u32x4 r = musae_philox4x32_10(c, kat[k].key[0], kat[k].key[1]);
        for (int i = 0; i < 4; i++)
            CHECK(r.v[i] == kat[k].out[i], "KAT %d word %d: 0x%08x want 0x%08x", k, i, r.v[i], kat[k].out[i]);
    }
    /* musae's (seed, stream, counter) packing: stream and counter land in distinct words */
    musae_u32x4 a = musae_philox(1, 0, 0), b = musae_philox(1, 1, 0), c = musae_philox(1, 0, 1);
    CHECK(a.v[0] != b.v[0] && a.v[0] != c.v[0], "streams and counters differ");
    musae_u32x4 d = musae_philox(0x299f31d0a4093822ull, 0x037073441319 + 0ull, 0x85a308d3243f6a88ull);
    (void)d;
    CHECK(musae_u32_to_unit(0xffffffffu) < 1.0f && musae_u32_to_unit(0) == 0.0f, "unit range [0,1)");
    /* uniformity sanity: mean of 40k draws near 0.5 (6 sigma = 0.0087) */
    double s = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        musae_u32x4 r = musae_philox(42, 7, i);
        for (int j = 0; j < 4; j++) s += musae_u32_to_unit(r.v[j]);
    }
    CHECK(fabs(s / 40000 - 0.5) < 0.0087, "mean %.5f", s / 40000);
}

static void test_arena(void) {
    musae_arena a;
    musae_arena_init(&a, "test", 1000);
    int64_t sh[2] = {3, 5};
    musae_tensor t = musae_arena_tensor(&a, MUSAE_F32, 2, sh);
    CHECK(((uintptr_t)t.data % 64) == 0, "64-byte aligned");
    CHECK(musae_tensor_numel(&t) == 15 && musae_tensor_nbytes(&t) == 60, "numel/nbytes");
    musae_tensor u = musae_arena_tensor(&a, MUSAE_F16, 2, sh);
    CHECK((uint8_t *)u.data - (uint8_t *)t.data == 64, "second allocation follows at the next 64 bytes");
    CHECK(a.used == 128, "used %zu", a.used);
    char buf[80];
    CHECK(!strcmp(musae_shape_str(2, sh, buf, sizeof buf), "[3, 5]"), "shape string %s", buf);
    musae_arena_reset(&a);
    CHECK(a.used == 0, "reset");
    musae_arena_free(&a);
}

static void test_progress(void) {
    musae_progress p;
    musae_progress_init(&p, "test", "items", 10);
    for (int i = 0; i < 10; i++) musae_progress_add(&p, 1, NULL);
    CHECK(p.done == 10, "done %lld", (long long)p.done);
    musae_progress_finish(&p, "ok");
    char d[24];
    musae_format_duration(3725, d, sizeof d);
    CHECK(!strcmp(d, "1:02:05"), "duration %s", d);
    musae_format_duration(65, d, sizeof d);
    CHECK(!strcmp(d, "1:05"), "duration %s", d);
}

/* FIPS 180-4's examples (NIST CSRC "SHA256.pdf", the one- and two-block messages) and the million 'a's of its
 * long-message test, fed in uneven pieces and from a file; a file that cannot be read is -1 with errno. */
static void test_sha256(void) {
    char hex[65];
    musae_sha256 s;
    musae_sha256_init(&s);
    musae_sha256_update(&s, "abc", 3);
    musae_sha256_hex(&s, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc: %s", hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    musae_sha256_init(&s);
    for (size_t i = 0, n = strlen(two), step = 1; i < n; i += step, step = step * 2 + 1)
        musae_sha256_update(&s, two + i, i + step <= n ? step : n - i);
    musae_sha256_hex(&s, hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "two blocks: %s", hex);
    musae_sha256_init(&s);
    musae_sha256_hex(&s, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty: %s", hex);
    /* the file goes under the tests' scratch root (MUSAE_TEST_TMP, test.h); one that cannot be made fails the test */
    char path[1024];
    snprintf(path, sizeof path, "%s/musae_sha256_XXXXXX", test_tmp());
    mkdir(test_tmp(), 0755); /* (usually there already) */
    const int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        fprintf(stderr, "FAIL: setup: cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
    for (int i = 0; i < 1000000; i++) fputc('a', f);
    fclose(f);
    memset(hex, 0, sizeof hex);
    CHECK(musae_sha256_file(path, hex) == 0, "sha256 of %s", path);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "a million a: %s", hex);
    unlink(path);
    errno = 0;
    CHECK(musae_sha256_file(path, hex) == -1 && errno == ENOENT, "a missing file: errno %d", errno);
}

int main(void) {
    test_f16();
    test_bf16();
    test_convert();
    test_philox();
    test_arena();
    test_progress();
    test_sha256();
    TEST_END();
}
