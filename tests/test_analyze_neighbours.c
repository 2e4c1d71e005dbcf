/* analyze's decoder neighbours (eval/analyze_neighbours.h) against plain double loops: each latent's K latents of
 * largest cosine (itself excluded), by cosine descending. A returned neighbour must be the double ranking's one at
 * that place, or one whose cosine is within 1e-6 of it (f32 rounding may swap those); each cosine within 1e-6 of
 * the double value. Every screen this CPU can run (AMX bf16, int16 with AVX-512 VNNI, int16 with AVX2 at MUSAE_ISA
 * avx512 and avx2) must give the same neighbours and cosines bit for bit; the f32 sgemm route (no screen) only
 * the double ones. Shapes: random rows over three ragged tiles with an odd d; a store of clusters whose cosines
 * differ by ~1e-4, below the int16 screen's bound, so its per-row lists cannot settle those rows and the whole-row
 * rescore must (checked to run; with the bound set to 0 the cluster case fails); exact duplicates (ties go to the
 * lower latent) and a zero row; fewer latents than K (-1 / 0 padding) and exactly K + 8 + 1 latents (the lists
 * hold every other latent). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/analyze_encode.h"
#include "eval/analyze_neighbours.h"
#include "kernels/cpu/isa.h"
#include "test.h"
#include "test_rand.h"
#include "test_screens.h"

enum { K = 8 };

/* Variant v: the screens, then the sgemm (no screen). */
enum { N_VARIANTS = N_SCREENS + 1 };
static screen_variant variant(int v) {
    const screen_variant sgemm = {ANALYZE_SCREEN_AUTO, MUSAE_ISA_BASELINE, "f32 sgemm (no screen)"};
    return v < N_SCREENS ? SCREENS[v] : sgemm;
}

static int g_ran[N_VARIANTS];

/* Whether `kind` runs here at `isa` (analyze_screen_init_rows says so by returning a screen). */
static int runs_here(analyze_screen_kind kind, musae_isa isa) {
    if (kind == ANALYZE_SCREEN_AUTO) return 1;
    if (isa > musae_isa_cpu()) return 0;
    const musae_isa isa0 = musae_isa_get();
    musae_isa_set(isa);
    const float w[2] = {1.0f, 0.5f};
    analyze_screen *a = analyze_screen_init_rows(w, NULL, 1, 2, 1, 0, kind);
    analyze_screen_free(a);
    musae_isa_set(isa0);
    return a != NULL;
}

/* The number of wrong entries of nb/cs against double cosines of W [M, d]. */
static int check_double(const float *W, int64_t M, int64_t d, const int32_t *nb, const float *cs, const char *what) {
    double *c = malloc(sizeof(double) * (size_t)M), *nrm = malloc(sizeof(double) * (size_t)M);
    int32_t *ord = malloc(sizeof(int32_t) * (size_t)M);
    for (int64_t i = 0; i < M; i++) {
        nrm[i] = 0;
        for (int64_t q = 0; q < d; q++) nrm[i] += (double)W[i * d + q] * W[i * d + q];
        nrm[i] = sqrt(nrm[i]);
    }
    int bad = 0;
    for (int64_t i = 0; i < M; i++) {
        int64_t n = 0;
        for (int64_t j = 0; j < M; j++) {
            double ab = 0;
            for (int64_t q = 0; q < d; q++) ab += (double)W[i * d + q] * W[j * d + q];
            c[j] = nrm[i] > 0 && nrm[j] > 0 ? ab / (nrm[i] * nrm[j]) : 0.0;
            if (j != i) ord[n++] = (int32_t)j;
        }
        /* the K best by (cosine descending, latent ascending): selection, n·K steps */
        for (int q = 0; q < K && q < n; q++) {
            int64_t best = q;
            for (int64_t e = q + 1; e < n; e++)
                if (c[ord[e]] > c[ord[best]] || (c[ord[e]] == c[ord[best]] && ord[e] < ord[best])) best = e;
            const int32_t t = ord[q];
            ord[q] = ord[best], ord[best] = t;
        }
        for (int q = 0; q < K; q++) {
            const int32_t got = nb[i * K + q];
            if (q >= n) {
                bad += got != -1 || cs[i * K + q] != 0.0f;
                continue;
            }
            const int same = got == ord[q] || (got >= 0 && got < M && got != i && fabs(c[got] - c[ord[q]]) < 1e-6);
            const int ok = same && fabs(cs[i * K + q] - c[ord[q]]) < 1e-6;
            if (!ok && bad < 3)
                printf("  %s: latent %lld place %d: got %d (%.9f) want %d (%.9f)\n", what, (long long)i, q, got,
                       got >= 0 && got < M ? c[got] : NAN, ord[q], c[ord[q]]);
            bad += !ok;
        }
    }
    free(c), free(nrm), free(ord);
    return bad;
}

/* shape: 0 random, 1 clusters of 40 rows around shared directions, plus duplicates and a zero row */
static void run_case(const char *label, int64_t d, int64_t M, int shape) {
    float *W = malloc(sizeof(float) * (size_t)(M * d));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < d; j++) {
            /* clusters: 40 consecutive latents share a direction, each nudged by 2e-3 per input (cosines within
             * the cluster ~1 − 1e-4, differing by ~1e-5..1e-4: above f32 noise, below the int16 screen's bound) */
            const double w = shape == 1 ? test_gauss(11, (uint64_t)((i / 40) * d + j)) + 2e-3 * test_gauss(12, (uint64_t)(i * d + j))
                                        : test_gauss(13, (uint64_t)(i * d + j));
            W[i * d + j] = (float)(w * (1 + i % 3)); /* row norms 1x-3x: the cosine normalizes them */
        }
    if (shape == 1 && M > 60) {
        memcpy(W + 50 * d, W + 7 * d, sizeof(float) * (size_t)d); /* an exact duplicate inside a cluster */
        memcpy(W + 51 * d, W + 7 * d, sizeof(float) * (size_t)d); /* and a third copy: a tie at cosine 1 */
        memset(W + 45 * d, 0, sizeof(float) * (size_t)d);         /* a zero row: cosine 0 with everything */
    }
    int32_t *first_nb = NULL;
    float *first_cs = NULL;
    const char *first_name = NULL;
    const musae_isa isa0 = musae_isa_get();
    for (int v = 0; v < N_VARIANTS; v++) {
        if (!runs_here(variant(v).kind, variant(v).isa)) continue;
        g_ran[v]++;
        if (variant(v).kind != ANALYZE_SCREEN_AUTO) musae_isa_set(variant(v).isa);
        char what[160];
        snprintf(what, sizeof what, "%s [%s, MUSAE_ISA %s]", label, variant(v).name, musae_isa_name(musae_isa_get()));
        int32_t *nb = malloc(sizeof(int32_t) * (size_t)(M * K));
        float *cs = malloc(sizeof(float) * (size_t)(M * K));
        const int64_t whole = analyze_neighbours(W, M, d, K, variant(v).kind, nb, cs);
        musae_isa_set(isa0);
        const int bad = check_double(W, M, d, nb, cs, what);
        CHECK(bad == 0, "%s: %d of %lld entries are not the double ranking's", what, bad, (long long)(M * K));
        const int i16 = analyze_screen_is_i16(variant(v).kind);
        if (i16 && shape == 1) /* the clusters' rows need the whole-row rescore */
            CHECK(whole >= 40, "%s: %lld rows rescored whole, want the clusters' (>= 40)", what, (long long)whole);
        if (i16 && M - 1 <= K + 8) CHECK(whole == 0, "%s: %lld rows rescored whole with complete lists", what, (long long)whole);
        if (variant(v).kind == ANALYZE_SCREEN_AUTO) {
            free(nb), free(cs);
            continue;
        }
        if (!first_name) {
            first_nb = nb, first_cs = cs, first_name = variant(v).name;
            continue;
        }
        int64_t diff = -1; /* every screen and level: the same bits */
        for (int64_t e = 0; e < M * K && diff < 0; e++)
            if (nb[e] != first_nb[e] || memcmp(&cs[e], &first_cs[e], sizeof(float))) diff = e;
        CHECK(diff < 0, "%s: latent %lld's neighbours differ from the %s screen's", what, (long long)(diff / K),
              first_name);
        free(nb), free(cs);
    }
    free(first_nb), free(first_cs);
    free(W);
}

int main(void) {
    run_case("random d 97, M 700 (three ragged tiles)", 97, 700, 0);
    run_case("clusters, duplicates and a zero row, d 64, M 600", 64, 600, 1);
    run_case("clusters across tiles, d 33, M 300", 33, 300, 1);
    run_case("M 5 < K (padding)", 16, 5, 0);
    run_case("M = K + 9 (lists hold every other latent)", 24, K + 9, 0);
    for (int v = 0; v < N_VARIANTS; v++)
        printf("%s at MUSAE_ISA %s: %s\n", variant(v).name, musae_isa_name(variant(v).isa),
               g_ran[v] ? "tested" : "not on this CPU");
    TEST_END();
}
