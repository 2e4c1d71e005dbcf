/* musae analyze against plain loops: a small store and two SAEs (top-k and batch-top-k) written here with small
 * integer activations and encoder weights, so every pre-activation is exact in f32 whatever the summation order
 * (ties are real and exercise the tie rules). Every dataset of FEATURES.h5 is recomputed below from the store
 * and the weights, without the analysis code: counts, indices and orders must match exactly, means and maxima
 * within 1e-5 relative, decoder cosines within 1e-5 (an order inside 1e-6 may differ). Then: the default split
 * is the trainer's held-out clips; two SAEs in one pass give the files of two runs byte for byte, and so do the
 * encoder's screens and ISA levels (AMX, int16 at AVX-512 and at AVX2: eval/analyze_encode.h); mismatched
 * store/SAE, bad options and a missing split are refused with exit 1 and a message; SIGKILL leaves no file and
 * the same command then finishes; SIGTERM exits 130 without a file; `musae info` summarises the file. */
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cli.h"
#include "eval/features_io.h"
#include "fixture_io.h"
#include "host/core/philox.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "kernels/cpu/isa.h"
#include "kernels/cuda/cuda_device.h"
#include "test_rand.h"

enum { D = 8, M = 24, K = 3, N_CLIPS = 130, LAYER = 3, TOP = 4 };
static const double BT_THRESHOLD = 4.5;
#define STREAM_RANDOM_CLIP 0x52414E44434C4950ull /* docs/ANALYZE.md */

/* A small integer in [lo, hi] from (seed, i). */
static int small_int(uint64_t seed, uint64_t i, int lo, int hi) {
    return lo + (int)(musae_philox(seed, 0xF1, i).v[0] % (uint32_t)(hi - lo + 1));
}
static int clip_len(int c) { return 1 + (c * 7) % 13; }

/* The store: clip c has clip_len(c) rows of integers in [-3, 3]; a few rows hold NaN/Inf and clip 5 is all NaN. */
static void make_store(const char *path, const char *model, int d, int layer) {
    musae_store_writer *w = fx_store_create(path, model, d, layer);
    float *x = malloc(sizeof(float) * 16 * (size_t)d);
    MUSAE_ASSERT(x, "out of memory");
    for (int c = 0; c < N_CLIPS; c++) {
        const int n = clip_len(c);
        for (int r = 0; r < n; r++)
            for (int j = 0; j < d; j++) x[r * d + j] = (float)small_int(1, (uint64_t)(c * 1000 + r * 16 + j), -3, 3);
        if (c == 5)
            for (int r = 0; r < n; r++) x[r * d] = NAN;
        if (c % 7 == 2 && n > 2) x[1 * d + 2] = INFINITY;
        if (c % 9 == 4 && n > 3) x[3 * d] = NAN;
        char name[64];
        snprintf(name, sizeof name, "audio/piece%02d.wav#t=%d,%d", c, c * 10, c * 10 + 10);
        const float *acts[1] = {x};
        musae_store_add_clip(w, name, n, acts);
    }
    musae_store_close_writer(w, 1);
    free(x);
}

typedef struct {
    float W_enc[M * D], b_enc[M], W_dec[M * D], b_dec[D];
    int batch_topk;
} weights;

static void make_weights(weights *wt, uint64_t seed, int batch_topk) {
    for (int i = 0; i < M * D; i++) wt->W_enc[i] = (float)small_int(seed, (uint64_t)i, -2, 2);
    for (int i = 0; i < M; i++) wt->b_enc[i] = (float)small_int(seed, 10000 + (uint64_t)i, -3, 1);
    for (int j = 0; j < D; j++) wt->b_dec[j] = (float)small_int(seed, 20000 + (uint64_t)j, -1, 1);
    for (int i = 0; i < M * D; i++) wt->W_dec[i] = (float)test_gauss(seed, (uint64_t)i);
    wt->batch_topk = batch_topk;
}

/* A checkpoint folder as musae train writes it (sae.safetensors, cfg.json, musae.json); with_split 0 leaves
 * musae.json without its data section. */
static void write_sae(const char *dir, const weights *wt, int with_split) {
    char fields[256];
    snprintf(fields, sizeof fields, "\"selection\": \"%s\", \"threshold\": %g%s", wt->batch_topk ? "batch_topk" : "topk",
             wt->batch_topk ? BT_THRESHOLD : 0.0,
             with_split ? ", \"data\": {\"acts\": \"s.h5\", \"val_fraction\": 0.3, \"split_seed\": \"7\"}" : "");
    fx_write_sae(dir, M, D, K, LAYER, wt->W_enc, wt->b_enc, wt->W_dec, wt->b_dec, fields);
}

/* ---- the recomputation: plain loops over the store ------------------------------------------------------- */

typedef struct {
    int64_t C, n_frames, nonfinite, empty;
    int store_index[N_CLIPS], frames[N_CLIPS];
    int64_t n_active[M];
    double sum[M], max[M], vmin, vmax;
    double cmean[N_CLIPS][M], cmax[N_CLIPS][M]; /* by output clip; cmax 0 where it never fired */
    int cpeak[N_CLIPS][M];
    double *vals[M];                            /* every active value, for the histogram */
    int64_t n_vals[M];
} expected;

static void encode_row(const weights *wt, const float *x, double *z) {
    double pre[M];
    for (int i = 0; i < M; i++) {
        double s = wt->b_enc[i];
        for (int j = 0; j < D; j++) s += (double)wt->W_enc[i * D + j] * ((double)x[j] - wt->b_dec[j]);
        pre[i] = s > 0 ? s : 0;
        z[i] = 0;
    }
    if (wt->batch_topk) {
        for (int i = 0; i < M; i++) z[i] = pre[i] > BT_THRESHOLD ? pre[i] : 0;
        return;
    }
    for (int t = 0; t < K; t++) { /* the largest remaining, ties to the lower latent */
        int best = -1;
        for (int i = 0; i < M; i++)
            if (pre[i] > 0 && z[i] == 0 && (best < 0 || pre[i] > pre[best])) best = i;
        if (best >= 0) z[best] = pre[best];
    }
}

static void recompute(musae_store *s, const weights *wt, const uint8_t *mask, expected *e) {
    memset(e, 0, sizeof *e);
    e->vmin = INFINITY;
    for (int i = 0; i < M; i++) e->vals[i] = malloc(sizeof(double) * 4096);
    const musae_store_info *in = musae_store_get_info(s);
    float x[16 * D];
    for (int c = 0; c < N_CLIPS; c++) {
        if (!mask[c]) continue;
        const int n = in->clip_frames[c];
        musae_store_read_rows(s, LAYER, in->clip_offset[c], n, x);
        double sum[M] = {0}, mx[M] = {0};
        int peak[M] = {0}, finite = 0;
        for (int r = 0; r < n; r++) {
            int ok = 1;
            for (int j = 0; j < D; j++) ok &= isfinite(x[r * D + j]);
            if (!ok) {
                e->nonfinite++;
                continue;
            }
            finite++;
            double z[M];
            encode_row(wt, x + r * D, z);
            for (int i = 0; i < M; i++) {
                if (z[i] <= 0) continue;
                e->n_active[i]++;
                e->sum[i] += z[i];
                if (z[i] > e->max[i]) e->max[i] = z[i];
                e->vals[i][e->n_vals[i]++] = z[i];
                if (z[i] < e->vmin) e->vmin = z[i];
                if (z[i] > e->vmax) e->vmax = z[i];
                sum[i] += z[i];
                if (z[i] > mx[i]) mx[i] = z[i], peak[i] = r;
            }
        }
        if (!finite) {
            e->empty++;
            continue;
        }
        const int64_t oc = e->C++;
        e->store_index[oc] = c;
        e->frames[oc] = n;
        e->n_frames += finite;
        for (int i = 0; i < M; i++) {
            e->cmean[oc][i] = sum[i] / finite;
            e->cmax[oc][i] = mx[i];
            e->cpeak[oc][i] = peak[i];
        }
    }
}

static void expected_free(expected *e) {
    for (int i = 0; i < M; i++) free(e->vals[i]);
}

static int rel_close(double got, double want, double tol) { return fabs(got - want) <= tol * fmax(fabs(want), 1e-30); }

/* Every dataset of f against e and the weights. */
static void compare(const musae_features *f, const expected *e, const weights *wt, const char *label, double min_rate,
                    double max_rate, uint64_t seed) {
    const int64_t C = e->C;
    CHECK(f->M == M && f->N == TOP && f->C == C, "%s: M %lld N %lld C %lld, want %d %d %lld", label, (long long)f->M,
          (long long)f->N, (long long)f->C, M, TOP, (long long)C);
    if (f->M != M || f->N != TOP || f->C != C) return;
    CHECK(f->n_frames == e->n_frames && f->n_nonfinite_rows == e->nonfinite && f->n_clips_empty == e->empty,
          "%s: frames %lld nonfinite %lld empty %lld, want %lld %lld %lld", label, (long long)f->n_frames,
          (long long)f->n_nonfinite_rows, (long long)f->n_clips_empty, (long long)e->n_frames, (long long)e->nonfinite,
          (long long)e->empty);
    /* /clips */
    int bad = 0;
    for (int64_t c = 0; c < C; c++) {
        char want[64];
        const int sc = e->store_index[c];
        snprintf(want, sizeof want, "audio/piece%02d.wav#t=%d,%d", sc, sc * 10, sc * 10 + 10);
        bad += f->clip_store_index[c] != sc || f->clip_frames[c] != e->frames[c] || strcmp(f->clip_path[c], want);
    }
    CHECK(bad == 0, "%s: %d clips differ in /clips", label, bad);
    /* per-feature scalars */
    int bad_count = 0, bad_val = 0, bad_flag = 0;
    int64_t fired[M] = {0};
    for (int i = 0; i < M; i++) {
        for (int64_t c = 0; c < C; c++) fired[i] += e->cmax[c][i] > 0;
        const double rate = (double)fired[i] / C, dens = (double)e->n_active[i] / e->n_frames;
        bad_count += f->n_active_frames[i] != e->n_active[i];
        bad_val += !rel_close(f->clip_rate[i], rate, 1e-12) || !rel_close(f->frame_density[i], dens, 1e-12);
        bad_val += !rel_close(f->max_act[i], e->max[i], 1e-5);
        bad_val += !rel_close(f->mean_act[i], e->n_active[i] ? e->sum[i] / e->n_active[i] : 0, 1e-5);
        const int dead = e->n_active[i] == 0, keep = !dead && rate >= min_rate && rate <= max_rate;
        bad_flag += f->dead[i] != dead || f->keep[i] != keep;
    }
    CHECK(bad_count == 0, "%s: n_active_frames differs for %d latents", label, bad_count);
    CHECK(bad_val == 0, "%s: %d rate/density/max/mean values differ", label, bad_val);
    CHECK(bad_flag == 0, "%s: keep/dead differ for %d latents", label, bad_flag);
    CHECK(f->min_rate == min_rate && f->max_rate == max_rate, "%s: keep attributes %g %g", label, f->min_rate,
          f->max_rate);
    /* histogram: log-spaced edges covering every active value, then plain bin counting */
    const double ratio = (double)f->hist_edges[1] / f->hist_edges[0];
    bad = 0;
    for (int b = 0; b < FEATURES_HIST_BINS; b++)
        bad += !rel_close((double)f->hist_edges[b + 1] / f->hist_edges[b], ratio, 1e-6);
    CHECK(bad == 0 && ratio > 1, "%s: hist_edges not log-spaced (ratio %g)", label, ratio);
    CHECK(f->hist_edges[0] <= e->vmin && e->vmax < f->hist_edges[FEATURES_HIST_BINS], "%s: edges [%g, %g] miss [%g, %g]",
          label, f->hist_edges[0], f->hist_edges[FEATURES_HIST_BINS], e->vmin, e->vmax);
    bad = 0;
    for (int i = 0; i < M; i++) {
        int64_t h[FEATURES_HIST_BINS] = {0};
        for (int64_t q = 0; q < e->n_vals[i]; q++) {
            const float v = (float)e->vals[i][q];
            for (int b = 0; b < FEATURES_HIST_BINS; b++)
                if (f->hist_edges[b] <= v && v < f->hist_edges[b + 1]) h[b]++;
        }
        for (int b = 0; b < FEATURES_HIST_BINS; b++) bad += f->hist[i * FEATURES_HIST_BINS + b] != h[b];
    }
    CHECK(bad == 0, "%s: %d histogram bins differ", label, bad);
    /* top clips: by max descending, ties to the lower clip; the first frame at the max */
    int bad_top = 0, bad_q = 0, bad_r = 0;
    for (int i = 0; i < M; i++) {
        int order[N_CLIPS], n = 0;
        for (int64_t c = 0; c < C; c++)
            if (e->cmax[c][i] > 0) order[n++] = (int)c;
        for (int a = 0; a < n; a++) /* exchange sort: max descending, clip ascending */
            for (int b = a + 1; b < n; b++)
                if (e->cmax[order[b]][i] > e->cmax[order[a]][i] ||
                    (e->cmax[order[b]][i] == e->cmax[order[a]][i] && order[b] < order[a])) {
                    int t = order[a];
                    order[a] = order[b];
                    order[b] = t;
                }
        for (int j = 0; j < TOP; j++) {
            const int in = j < n, c = in ? order[j] : -1;
            const int diff = f->top_clip[i * TOP + j] != c ||
                             f->top_clip_frame[i * TOP + j] != (in ? e->cpeak[c][i] : -1) ||
                             !rel_close(f->top_clip_max[i * TOP + j], in ? e->cmax[c][i] : 0, 1e-5);
            if (diff && bad_top < 5)
                fprintf(stderr, "%s: latent %d top %d: clip %d frame %d max %g, want clip %d frame %d max %g\n", label,
                        i, j, f->top_clip[i * TOP + j], f->top_clip_frame[i * TOP + j], f->top_clip_max[i * TOP + j], c,
                        in ? e->cpeak[c][i] : -1, in ? e->cmax[c][i] : 0);
            bad_top += diff;
        }
        /* deciles of clip max ascending (ties: clip ascending) */
        int asc[N_CLIPS];
        for (int a = 0; a < n; a++) asc[a] = order[a];
        for (int a = 0; a < n; a++) /* exchange sort: max ascending, clip ascending */
            for (int b = a + 1; b < n; b++)
                if (e->cmax[asc[b]][i] < e->cmax[asc[a]][i] ||
                    (e->cmax[asc[b]][i] == e->cmax[asc[a]][i] && asc[b] < asc[a])) {
                    int t = asc[a];
                    asc[a] = asc[b];
                    asc[b] = t;
                }
        for (int q = 0; q < 10; q++) {
            const int lo = q * n / 10, hi = (q + 1) * n / 10, m = hi - lo;
            for (int j = 0; j < 5; j++) {
                const int want = m <= 5 ? (j < m ? asc[lo + j] : -1) : asc[lo + (2 * j + 1) * m / 10];
                bad_q += f->quantile_clip[(i * 10 + q) * 5 + j] != want;
            }
        }
        /* random clips: the free clips (ascending) ranked, drawn by Philox, repeats redrawn */
        int free_c[N_CLIPS], nf = 0;
        for (int64_t c = 0; c < C; c++)
            if (!(e->cmax[c][i] > 0)) free_c[nf++] = (int)c;
        int want[FEATURES_RANDOM], got = 0;
        for (int j = 0; j < FEATURES_RANDOM; j++) want[j] = -1;
        if (nf <= FEATURES_RANDOM)
            for (int j = 0; j < nf; j++) want[got++] = free_c[j];
        else
            for (uint64_t t = 0; got < FEATURES_RANDOM; t++) {
                uint32_t u = musae_philox(seed, STREAM_RANDOM_CLIP + (uint64_t)i, t).v[0];
                int c = free_c[((uint64_t)u * (uint64_t)nf) >> 32], dup = 0;
                for (int j = 0; j < got; j++) dup |= want[j] == c;
                if (!dup) want[got++] = c;
            }
        for (int j = 0; j < FEATURES_RANDOM; j++) bad_r += f->random_clip[i * FEATURES_RANDOM + j] != want[j];
    }
    CHECK(bad_top == 0, "%s: %d top-clip entries differ", label, bad_top);
    CHECK(bad_q == 0, "%s: %d quantile_clip entries differ", label, bad_q);
    CHECK(bad_r == 0, "%s: %d random_clip entries differ", label, bad_r);
    /* the per-clip table */
    int64_t at = 0;
    bad = 0;
    for (int64_t c = 0; c < C; c++) {
        bad += f->cf_indptr[c] != at;
        for (int i = 0; i < M; i++) {
            if (!(e->cmax[c][i] > 0)) continue;
            if (at < f->nnz)
                bad += f->cf_feature[at] != i || !rel_close(f->cf_mean[at], e->cmean[c][i], 1e-5) ||
                       !rel_close(f->cf_max[at], e->cmax[c][i], 1e-5);
            at++;
        }
    }
    CHECK(bad == 0 && at == f->nnz && f->cf_indptr[C] == at, "%s: clip_feature: %d differences, nnz %lld want %lld",
          label, bad, (long long)f->nnz, (long long)at);
    /* decoder neighbours: cosines in double; positions whose cosine is within 1e-6 of another's may swap */
    bad = 0;
    for (int i = 0; i < M; i++) {
        double cs[M];
        int ord[M], n = 0;
        for (int j = 0; j < M; j++) {
            double ab = 0, aa = 0, bb = 0;
            for (int q = 0; q < D; q++) {
                ab += (double)wt->W_dec[i * D + q] * wt->W_dec[j * D + q];
                aa += (double)wt->W_dec[i * D + q] * wt->W_dec[i * D + q];
                bb += (double)wt->W_dec[j * D + q] * wt->W_dec[j * D + q];
            }
            cs[j] = ab / sqrt(aa * bb);
            if (j != i) ord[n++] = j;
        }
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++)
                if (cs[ord[b]] > cs[ord[a]]) {
                    int t = ord[a];
                    ord[a] = ord[b];
                    ord[b] = t;
                }
        for (int j = 0; j < FEATURES_NEIGHBORS; j++) {
            const int got = f->neighbors[i * FEATURES_NEIGHBORS + j];
            const int same = got == ord[j] || (got >= 0 && fabs(cs[got] - cs[ord[j]]) < 1e-6);
            bad += !same || fabs(f->neighbor_cos[i * FEATURES_NEIGHBORS + j] - cs[ord[j]]) > 1e-5;
        }
    }
    CHECK(bad == 0, "%s: %d neighbour entries differ", label, bad);
}

static void check_attrs(const musae_features *f, const char *label, const char *sae, const char *split, int64_t k,
                        const char *selection) {
    char cmd[512], *sha;
    snprintf(cmd, sizeof cmd, "sha256sum %s/sae.safetensors | cut -c1-64 > sha.txt", sae);
    CHECK(sh("%s", cmd) == 0, "sha256sum failed");
    sha = slurp("sha.txt");
    CHECK(strncmp(sha, f->sae_sha256, 64) == 0, "%s: sae_sha256 %s, sha256sum says %s", label, f->sae_sha256, sha);
    free(sha);
    CHECK(!strcmp(f->sae, sae) && !strcmp(f->acts, "s.h5") && !strcmp(f->split, split) && !strcmp(f->model, "test/model"),
          "%s: sae '%s' acts '%s' split '%s' model '%s'", label, f->sae, f->acts, f->split, f->model);
    CHECK(f->layer == LAYER && f->k == k && f->d_model == D && f->complete == 1 && !strcmp(f->selection, selection),
          "%s: layer %lld k %lld d %lld complete %lld selection %s", label, (long long)f->layer, (long long)f->k,
          (long long)f->d_model, (long long)f->complete, f->selection);
    CHECK(!strcmp(f->musae_version, MUSAE_VERSION), "%s: musae_version %s", label, f->musae_version);
}

static void read_or_fail(const char *rel, musae_features *f) {
    char err[600];
    int rc = features_read(at(rel), f, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) memset(f, 0, sizeof *f);
}

/* "" or " --device cuda": test_analyze_gpu (tests/analyze.cmake) runs the recomputation with the rows encoded on
 * the GPU, against the same plain loops (the fixture's pre-activations are small integers, exact in any
 * summation order, so the GPU's cuBLAS must give the CPU's selection exactly). */
static const char *g_dev = "";

static void test_recompute(void) {
    weights A, B;
    make_weights(&A, 11, 0);
    make_weights(&B, 12, 1);
    char err[512];
    musae_store *s = musae_store_open(at("s.h5"), err, sizeof err);
    CHECK(s != NULL, "%s", err);
    if (!s) return;
    uint8_t all[N_CLIPS], val[N_CLIPS];
    memset(all, 1, sizeof all);
    musae_store_split_mask(s, MUSAE_SPLIT_VAL, 0.3, 7, val);
    expected eA, eB, eV;
    recompute(s, &A, all, &eA);
    recompute(s, &B, all, &eB);
    recompute(s, &A, val, &eV);
    CHECK(eA.nonfinite > 0 && eA.empty == 1, "the fixture should hold non-finite rows and one empty clip");
    int widest = 0; /* some latent must fire in > 50 clips, so deciles of more than 5 clips are sampled */
    for (int i = 0; i < M; i++) {
        int n = 0;
        for (int64_t c = 0; c < eA.C; c++) n += eA.cmax[c][i] > 0;
        widest = n > widest ? n : widest;
    }
    CHECK(widest > 50, "the widest latent fires in %d clips", widest);

    /* two SAEs in one pass over every clip */
    CHECK(run("analyze --sae saeA,saeB --acts s.h5 -o grid --split all --top %d --min-rate 0.1 --max-rate 0.5 --seed 5%s",
              TOP, g_dev) == 0,
          "analyze (grid) failed");
    musae_features f;
    read_or_fail("grid/saeA.h5", &f);
    if (f.M) {
        compare(&f, &eA, &A, "top-k, all clips", 0.1, 0.5, 5);
        check_attrs(&f, "saeA", "saeA", "all", K, "topk");
        int64_t dead = 0, kept = 0;
        for (int i = 0; i < M; i++) dead += f.dead[i], kept += f.keep[i];
        CHECK(kept > 0 && kept < M, "the fixture should keep some latents and not others (kept %lld)", (long long)kept);
        printf("top-k fixture: %lld clips, %lld nnz, %lld kept, %lld dead\n", (long long)f.C, (long long)f.nnz,
               (long long)kept, (long long)dead);
    }
    features_free(&f);
    read_or_fail("grid/saeB.h5", &f);
    if (f.M) {
        compare(&f, &eB, &B, "batch-top-k, all clips", 0.1, 0.5, 5);
        check_attrs(&f, "saeB", "saeB", "all", K, "batch_topk");
        CHECK(f.threshold == BT_THRESHOLD, "threshold %g", f.threshold);
    }
    features_free(&f);
    /* the same SAE alone: the same bytes as in the grid */
    CHECK(run("analyze --sae saeB --acts s.h5 -o b_alone.h5 --split all --top %d --min-rate 0.1 --max-rate 0.5 --seed 5%s",
              TOP, g_dev) == 0,
          "analyze failed");
    CHECK(same_bytes("b_alone.h5", "grid/saeB.h5"), "one SAE alone differs from the same SAE in a two-SAE pass");
    /* the table regrouped by latent a few entries at a time (many passes over the spill file): the same file */
    CHECK(run("analyze --sae saeB --acts s.h5 -o b_small.h5 --split all --top %d --min-rate 0.1 --max-rate 0.5 --seed 5 "
              "--regroup 37 --block-rows 7%s",
              TOP, g_dev) == 0,
          "analyze (--regroup 37) failed");
    CHECK(same_bytes("b_alone.h5", "b_small.h5"), "--regroup 37 --block-rows 7 changed the file");
    /* every screen and ISA level writes the same bytes (eval/analyze_encode.h): the CPU's own choice (AMX where it
     * has it), the int16 screen at the CPU's level, its plain AVX2 kernel with OpenBLAS's Haswell kernels (an
     * AVX2-only CPU), the avx2 level's own choice (AVX-VNNI where the CPU has it), and avx512 (AMX off) */
    if (!*g_dev && musae_isa_cpu() >= MUSAE_ISA_AVX2) {
        static const char *const LEVELS[] = {"env -u MUSAE_ISA -u MUSAE_ANALYZE_SCREEN",
                                             "env -u MUSAE_ISA MUSAE_ANALYZE_SCREEN=int16",
                                             "env MUSAE_ANALYZE_SCREEN=int16-avx2 MUSAE_ISA=avx2 OPENBLAS_CORETYPE=Haswell",
                                             "env -u MUSAE_ANALYZE_SCREEN MUSAE_ISA=avx2",
                                             "env -u MUSAE_ANALYZE_SCREEN MUSAE_ISA=avx512"};
        const int n_levels = musae_isa_cpu() >= MUSAE_ISA_AVX512 ? 5 : 4; /* avx512: AMX off on an AMX CPU */
        for (int v = 0; v < n_levels; v++) {
            char name[32];
            snprintf(name, sizeof name, "level%d.h5", v);
            CHECK(sh("%s %s analyze --sae saeA --acts s.h5 -o %s --split all --top %d --min-rate 0.1 --max-rate 0.5 "
                     "--seed 5 >out.txt 2>err.txt",
                     LEVELS[v], bin(), name, TOP) == 0,
                  "analyze under %s failed", LEVELS[v]);
            if (v) CHECK(same_bytes("level0.h5", name), "%s wrote other bytes than %s", LEVELS[v], LEVELS[0]);
        }
    }
    /* default split: the clips the trainer held out, with the defaults */
    CHECK(run("analyze --sae saeA --acts s.h5 -o val.h5 --top %d%s", TOP, g_dev) == 0, "analyze (val) failed");
    read_or_fail("val.h5", &f);
    if (f.M) {
        CHECK(eV.C > 0 && eV.C < eA.C, "the val split should be a strict subset (%lld of %lld)", (long long)eV.C,
              (long long)eA.C);
        compare(&f, &eV, &A, "top-k, val clips", 0.01, 0.25, 0);
        check_attrs(&f, "val", "saeA", "val", K, "topk");
        CHECK(f.val_fraction == 0.3 && f.split_seed == 7, "split attributes %g %llu", f.val_fraction,
              (unsigned long long)f.split_seed);
    }
    features_free(&f);
    /* musae info */
    CHECK(run("info val.h5") == 0, "musae info failed");
    char *o = slurp("out.txt");
    CHECK_STR_CONTAINS(o, "kept");
    CHECK_STR_CONTAINS(o, "dead");
    CHECK_STR_CONTAINS(o, "too rare");
    CHECK_STR_CONTAINS(o, "too common");
    CHECK_STR_CONTAINS(o, "density quantiles");
    free(o);
    /* h5dump reads it (if installed) */
    if (sh("command -v h5dump >/dev/null") == 0)
        CHECK(sh("h5dump -d /features/top_clip val.h5 >/dev/null") == 0, "h5dump cannot read the file");
    expected_free(&eA);
    expected_free(&eB);
    expected_free(&eV);
    musae_store_close(s);
}

static void refused(int rc, const char *what, const char *msg) {
    CHECK(rc == 1, "%s: exit %d, want 1", what, rc);
    err_has(msg);
}

static void test_bad_input(void) {
    refused(run("analyze --sae saeA --acts wide.h5 -o x.h5"), "d mismatch", "saeA has d_in 8 but wide.h5 holds 16");
    refused(run("analyze --sae saeA --acts layer0.h5 -o x.h5"), "layer mismatch",
            "saeA was trained on layer 3, which layer0.h5 does not hold");
    refused(run("analyze --sae saeA --acts other.h5 -o x.h5"), "model mismatch",
            "saeA was trained on activations of 'test/model', other.h5 holds 'other/model'");
    refused(run("analyze --sae nosplit --acts s.h5 -o x.h5"), "no split", "records no training split");
    refused(run("analyze --sae saeA --acts s.h5 -o x.h5 --bogus"), "unknown option", "see musae analyze --help");
    refused(run("analyze --sae saeA --acts s.h5 -o x.h5 --device tpu"), "bad --device", "expected cpu, cuda or auto");
    char why[512] = "";
#ifdef MUSAE_CUDA
    if (musae_cuda_device_count(why, sizeof why) == 0)
        refused(run("analyze --sae saeA --acts s.h5 -o x.h5 --device cuda"), "--device cuda without a GPU",
                "--device cuda: no usable CUDA device");
#else
    (void)why;
    refused(run("analyze --sae saeA --acts s.h5 -o x.h5 --device cuda"), "--device cuda in a CPU-only build",
            "--device cuda: musae was built without CUDA");
#endif
    refused(run("analyze --sae saeA --acts s.h5 -o x.h5 --split test"), "bad split", "see musae analyze --help");
    refused(sh("MUSAE_ANALYZE_SCREEN=fast %s analyze --sae saeA --acts s.h5 -o x.h5 --split all >out.txt 2>err.txt", bin()),
            "bad MUSAE_ANALYZE_SCREEN", "MUSAE_ANALYZE_SCREEN=fast: unknown; use auto, int16, int16-avx2 or off");
    refused(run("analyze --sae saeA --acts s.h5"), "no -o", "--sae, --acts and -o are required");
    refused(run("analyze --sae saeA --acts s.h5 -o x.h5 --top 0"), "bad --top",
            "--top: expected an integer in 1..10000, got '0' (see musae analyze --help)");
    refused(run("analyze --sae saeA --acts missing.h5 -o x.h5"), "missing store", "missing.h5");
    refused(run("analyze --sae saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA,saeA "
                "--acts s.h5 -o x.h5"),
            "17 SAEs", "--sae: at most 16 SAEs in one pass (see musae analyze --help)");
    refused(run("analyze --sae , --acts s.h5 -o x.h5"), "an empty --sae list",
            "--sae names no folder (see musae analyze --help)");
    CHECK(!dir_has("x.h5") && !dir_has("x.h5.partial"), "a refused run left a file");
}

/* A bigger store and a wider SAE so a run lasts long enough to be killed. */
static void test_kill(void) {
    CHECK(run("synth_acts -o big.h5 --d 64 --concepts 256 --k-true 4 --rows 60000 --clip-frames 150 --layers 3 "
              "--model test/model") == 0,
          "synth_acts failed");
    /* a random wide SAE written like the small ones */
    const int d = 64, m = 4096;
    float *we = malloc(sizeof(float) * (size_t)(m * d)), *be = calloc((size_t)m, sizeof(float)),
          *bd = calloc((size_t)d, sizeof(float));
    for (int i = 0; i < m * d; i++) we[i] = (float)test_gauss(3, (uint64_t)i) * 0.2f;
    mkdir(at("wide_sae"), 0755);
    musae_st_writer *w = musae_st_writer_new();
    int64_t s_md[2] = {m, d}, s_m[1] = {m}, s_d[1] = {d};
    musae_st_writer_add(w, "encoder.weight", MUSAE_F32, 2, s_md, we);
    musae_st_writer_add(w, "encoder.bias", MUSAE_F32, 1, s_m, be);
    musae_st_writer_add(w, "W_dec", MUSAE_F32, 2, s_md, we);
    musae_st_writer_add(w, "b_dec", MUSAE_F32, 1, s_d, bd);
    char err[256];
    CHECK(musae_st_writer_save(w, at("wide_sae/sae.safetensors"), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    free(we);
    free(be);
    free(bd);
    CHECK(sh("echo '{\"activation\": \"topk\", \"num_latents\": %d, \"k\": 16, \"d_in\": %d}' > wide_sae/cfg.json && "
             "echo '{\"layer\": 3, \"model\": \"test/model\", \"selection\": \"topk\"}' > wide_sae/musae.json",
             m, d) == 0,
          "cannot write the wide SAE's JSON");
    const char *args = "analyze --sae wide_sae --acts big.h5 --split all -o killed.h5 --block-rows 1024";
    /* A signal once the pass has begun (its first log line follows the handler's installation): SIGKILL leaves
     * no file under the name, SIGTERM exits 130 without one. A machine fast enough to finish first must have
     * written a complete file instead (exit 0); which case happened is printed. */
    int sigs[2] = {SIGKILL, SIGTERM};
    for (int q = 0; q < 2; q++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "env MUSAE_LOG=info %s", bin());
        sh("rm -f kill_err.txt"); /* the previous run's log must not count as this one's start */
        pid_t pid = start_and_wait_for(cmd, args, "big.h5", 1);
        for (int t = 0; t < 600000; t++) { /* up to 60 s for the pass to begin */
            char *e = slurp("kill_err.txt");
            int begun = strstr(e, "analyze: 1 SAE(s)") != NULL;
            free(e);
            if (begun) break;
            usleep(100);
        }
        kill(pid, sigs[q]);
        int rc = wait_exit(pid);
        const int want = sigs[q] == SIGKILL ? 128 + SIGKILL : 130;
        CHECK(rc == want || rc == 0, "signal %d: exit %d", sigs[q], rc);
        CHECK(rc == 0 ? dir_has("killed.h5") : !dir_has("killed.h5"), "signal %d, exit %d: killed.h5 %s", sigs[q], rc,
              dir_has("killed.h5") ? "exists" : "missing");
        printf("signal %d %s\n", sigs[q], rc == 0 ? "came after the run finished" : "stopped the pass");
        sh("rm -f killed.h5");
    }
    CHECK(run("%s", args) == 0, "the same command after the kills failed");
    CHECK(run("analyze --sae wide_sae --acts big.h5 --split all -o again.h5 --block-rows 1024") == 0, "analyze failed");
    CHECK(same_bytes("killed.h5", "again.h5"), "two runs of the same command differ");
    CHECK(!dir_has("killed.h5.partial"), "the finished run left its .partial");
}

int main(int argc, char **argv) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    const int gpu = argc == 3 && !strcmp(argv[1], "--device") && !strcmp(argv[2], "cuda");
    CHECK(argc == 1 || gpu, "usage: test_analyze [--device cuda]");
    if (gpu) {
        char why[512] = "";
        if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("no usable CUDA device (%s): GPU verification pending", why);
        g_dev = " --device cuda";
    }
    scratch_open(gpu ? "test_analyze_gpu" : "test_analyze");
    weights A, B;
    make_weights(&A, 11, 0);
    make_weights(&B, 12, 1);
    make_store(at("s.h5"), "test/model", D, LAYER);
    make_store(at("wide.h5"), "test/model", 16, LAYER);
    make_store(at("layer0.h5"), "test/model", D, 0);
    make_store(at("other.h5"), "other/model", D, LAYER);
    write_sae(at("saeA"), &A, 1);
    write_sae(at("saeB"), &B, 1);
    write_sae(at("nosplit"), &A, 0);
    test_recompute();
    if (!gpu) { /* refusals and kills do not depend on the device */
        test_bad_input();
        test_kill();
    }
    scratch_close();
    TEST_END();
}
