/* The batch reader thread (sae/sae_feed.h) on a real store: the batches and positions it delivers equal those of
 * musae_stream_next with the same requests (shuffled endless stream; one-pass stream that ends short), slots
 * released late and from another thread (as the GPU feed's CUDA host callback does), the end marker, an early
 * close with the reader blocked, and the allocator hooks. Runs everywhere (no CUDA); the GPU half of the feed is
 * tests/test_sae_gpu_train.cu. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/store.h"
#include "sae/sae_feed.h"
#include "test.h"

enum { D = 12, N_CLIPS = 40 };

static int64_t frames_of(int64_t c) { return 7 + (c * 37) % 61; }
static float val_of(int l, int64_t c, int64_t t, int j) { return (float)(c * 1000 + t * 10 + j) + 0.25f * (float)l; }

static void make_store(const char *path) {
    musae_store_spec s = {0};
    s.model = "test/model";
    s.d_model = D;
    s.frame_rate = 50;
    s.n_layers = 2;
    s.layers[0] = 1;
    s.layers[1] = 4;
    s.dtype = MUSAE_F32;
    s.chunk_rows = 64;
    s.dtype_source = "f32";
    musae_store_writer *w = musae_store_create(path, &s);
    float *a = musae_xmalloc(sizeof(float) * 128 * D), *b = musae_xmalloc(sizeof(float) * 128 * D);
    for (int64_t c = 0; c < N_CLIPS; c++) {
        for (int64_t t = 0; t < frames_of(c); t++)
            for (int j = 0; j < D; j++) {
                a[t * D + j] = val_of(0, c, t, j);
                b[t * D + j] = val_of(1, c, t, j);
            }
        char name[64];
        snprintf(name, sizeof name, "clip%03d.wav", (int)c);
        const float *acts[2] = {a, b};
        musae_store_add_clip(w, name, frames_of(c), acts);
    }
    musae_store_close_writer(w, 1);
    free(a);
    free(b);
}

static musae_stream_opts opts(int shuffle, int loop) {
    musae_stream_opts o = {0};
    o.split = MUSAE_SPLIT_TRAIN;
    o.val_fraction = 0.1;
    o.split_seed = 3;
    o.seed = 7;
    o.shuffle = shuffle;
    o.window_rows = 256;
    o.loop = loop;
    o.n_layers = 2;
    o.layers[0] = 1;
    o.layers[1] = 4;
    return o;
}

static int same_pos(musae_stream_pos a, musae_stream_pos b) {
    return a.epoch == b.epoch && a.window == b.window && a.offset == b.offset && a.delivered == b.delivered &&
           a.skipped == b.skipped;
}

/* Releases a slot after a delay from its own thread, as a CUDA host callback would. */
typedef struct {
    sae_feed *f;
    int slot;
    useconds_t delay;
} late_release;
static void *release_later(void *arg) {
    late_release *r = arg;
    usleep(r->delay);
    sae_feed_release(r->f, r->slot);
    return NULL;
}

static int g_allocs = 0, g_frees = 0;
static void *count_alloc(size_t bytes, void *ctx) {
    (*(int *)ctx)++;
    g_allocs++;
    return musae_xmalloc(bytes);
}
static void count_free(void *p, void *ctx) {
    g_frees++;
    free(p);
}

/* The feed against a second stream read directly with the same requests. */
static void check_against_stream(musae_store *s, int shuffle, int loop, int64_t batch, int64_t total, int n_slots,
                                 int late) {
    musae_stream_opts o = opts(shuffle, loop);
    musae_stream *fs = musae_stream_open(s, &o), *ref = musae_stream_open(s, &o);
    int ctx = 0;
    sae_feed_allocator al = {count_alloc, count_free, &ctx};
    sae_feed *f = sae_feed_open(fs, 2, D, batch, total, n_slots, &al);
    CHECK(ctx == 2 * n_slots, "allocator called %d times for %d slots of 2 layers", ctx, n_slots);
    float *r0 = musae_xmalloc(sizeof(float) * (size_t)(batch * D)), *r1 = musae_xmalloc(sizeof(float) * (size_t)(batch * D));
    float *rb[2] = {r0, r1};
    int64_t done = 0, batches = 0, bad_rows = 0, bad_pos = 0;
    pthread_t th[64];
    late_release lr[64];
    int n_th = 0;
    sae_feed_batch b;
    while (sae_feed_next(f, &b)) {
        int64_t want = total - done < batch ? total - done : batch;
        int64_t got = musae_stream_next(ref, want, rb);
        CHECK(b.rows == got, "batch %lld: %lld rows, the stream gave %lld", (long long)batches, (long long)b.rows,
              (long long)got);
        CHECK(b.index == batches, "batch index %lld, expected %lld", (long long)b.index, (long long)batches);
        for (int l = 0; l < 2; l++)
            if (memcmp(b.x[l], rb[l], sizeof(float) * (size_t)(got * D))) bad_rows++;
        if (!same_pos(b.pos, musae_stream_tell(ref))) bad_pos++;
        done += b.rows;
        batches++;
        if (late && n_th < 64) { /* hold the slot a while and release it from another thread */
            lr[n_th] = (late_release){f, b.slot, (useconds_t)(500 + 300 * (batches % 3))};
            CHECK(pthread_create(&th[n_th], NULL, release_later, &lr[n_th]) == 0, "thread");
            n_th++;
        } else {
            sae_feed_release(f, b.slot);
        }
    }
    CHECK(b.rows == 0, "end marker holds %lld rows", (long long)b.rows);
    CHECK(sae_feed_next(f, &b) == 0, "a call after the end returns 0 again");
    for (int i = 0; i < n_th; i++) pthread_join(th[i], NULL);
    int64_t expect = total;
    if (!loop) {
        int64_t split = musae_stream_split_rows(ref);
        expect = split < total ? split : total;
    }
    CHECK(done == expect, "delivered %lld rows, expected %lld", (long long)done, (long long)expect);
    CHECK(bad_rows == 0 && bad_pos == 0, "%lld batches with other rows, %lld with another position (of %lld)",
          (long long)bad_rows, (long long)bad_pos, (long long)batches);
    CHECK(sae_feed_wait_seconds(f) >= 0 && sae_feed_read_seconds(f) > 0, "timers");
    printf("feed shuffle %d loop %d batch %lld total %lld slots %d late %d: %lld batches, %lld rows ok\n", shuffle, loop,
           (long long)batch, (long long)total, n_slots, late, (long long)batches, (long long)done);
    g_frees = 0;
    sae_feed_close(f);
    CHECK(g_frees == 2 * n_slots, "freed %d slot buffers of %d", g_frees, 2 * n_slots);
    musae_stream_close(fs);
    musae_stream_close(ref);
    free(r0);
    free(r1);
}

/* Close while the reader waits for a slot the consumer still holds, and while it is mid-schedule. */
static void check_early_close(musae_store *s) {
    musae_stream_opts o = opts(1, 1);
    musae_stream *st = musae_stream_open(s, &o);
    int ctx = 0;
    sae_feed_allocator al = {count_alloc, count_free, &ctx};
    g_frees = 0;
    sae_feed *f = sae_feed_open(st, 2, D, 50, 1 << 20, 2, &al);
    sae_feed_batch b;
    CHECK(sae_feed_next(f, &b) == 1 && b.rows == 50, "first batch");
    usleep(20000); /* the reader fills the other slot and blocks on this one */
    sae_feed_close(f); /* returns (a hang is the test's timeout) and frees the held slot too */
    musae_stream_close(st);
    CHECK(ctx == 2 * 2 && g_frees == ctx, "the early close freed %d of the %d slot buffers", g_frees, ctx);
}

int main(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/test_sae_feed_%d.h5", test_tmp(), (int)getpid());
    unlink(path);
    make_store(path);
    char err[512];
    musae_store *s = musae_store_open(path, err, sizeof err);
    CHECK(s != NULL, "open: %s", err);
    if (!s) TEST_END();
    check_against_stream(s, 1, 1, 100, 1234, 2, 0);   /* shuffled, endless, last batch short */
    check_against_stream(s, 1, 1, 64, 64 * 20, 3, 1); /* three slots, late releases from other threads */
    check_against_stream(s, 1, 1, 37, 2500, 2, 1);    /* more rows than an epoch holds */
    check_against_stream(s, 0, 0, 90, 1 << 30, 2, 1); /* one pass: ends short at the split's end */
    check_against_stream(s, 0, 0, 50, 300, 2, 0);     /* one pass, schedule shorter than the split */
    check_early_close(s);
    CHECK(g_allocs > 0, "allocator used");
    musae_store_close(s);
    unlink(path);
    TEST_END();
}
