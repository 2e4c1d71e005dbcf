/* Reading a joined (sharded) store against the same rows in one file (issue 21): the shuffled training stream
 * over one epoch of each, rows/s and MB/s of stored data, the page cache warm for both (both were just written).
 *   store_join_bench [--clips N] [--shards S] [--d H] [--dir DIR]     (defaults 100, 4, 1024, /tmp)
 * One JSON line per store, then the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/store.h"

static double stream_epoch(const char *path, int64_t *rows_out) {
    char err[1200];
    musae_store *s = musae_store_open(path, err, sizeof err);
    if (!s) musae_fail("%s", err);
    const int64_t H = musae_store_get_info(s)->d_model, B = 4096;
    musae_stream_opts o = {.split = MUSAE_SPLIT_ALL, .seed = 1, .shuffle = 1, .window_rows = 131072, .loop = 0,
                           .n_layers = 1, .layers = {0}};
    float *buf = musae_xmalloc(sizeof(float) * (size_t)(B * H));
    const double t0 = musae_now();
    musae_stream *st = musae_stream_open(s, &o);
    int64_t rows = 0, got;
    while ((got = musae_stream_next(st, B, (float *const[]){buf})) > 0) rows += got;
    musae_stream_close(st);
    const double dt = musae_now() - t0;
    musae_store_close(s);
    free(buf);
    *rows_out = rows;
    return dt;
}

int main(int argc, char **argv) {
    int clips = 100, shards = 4, H = 1024;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--clips")) clips = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shards")) shards = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--d")) H = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else musae_fail("usage: store_join_bench [--clips N] [--shards S] [--d H] [--dir DIR]");
    }
    const int F = 500;
    char one[4200], joined[4200], shard_dir[4300];
    snprintf(one, sizeof one, "%s/store_join_bench_%d_one.h5", dir, (int)getpid());
    snprintf(joined, sizeof joined, "%s/store_join_bench_%d.h5", dir, (int)getpid());
    snprintf(shard_dir, sizeof shard_dir, "%s.shards", joined);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", shard_dir);
    MUSAE_ASSERT(system(cmd) == 0, "mkdir %s", shard_dir);
    musae_store_spec spec = {.model = "bench", .d_model = H, .frame_rate = 50, .n_layers = 1, .layers = {0},
                             .dtype = MUSAE_F16, .dtype_source = "f32"};
    float *acts = musae_xmalloc(sizeof(float) * (size_t)F * (size_t)H);
    char **paths = musae_xcalloc((size_t)shards, sizeof(char *));
    musae_store_segment *seg = musae_xcalloc((size_t)shards, sizeof *seg);
    musae_store_writer *w1 = musae_store_create(one, &spec), *ws = NULL;
    for (int c = 0, sd = -1; c < clips; c++) {
        if (c * shards / clips != sd) { /* the next shard: a contiguous run of clips, as capture's ranks write */
            if (ws) musae_store_close_writer(ws, 1);
            sd = c * shards / clips;
            paths[sd] = musae_xmalloc(4400);
            snprintf(paths[sd], 4400, "%s/s%03d.h5", shard_dir, sd);
            ws = musae_store_create(paths[sd], &spec);
            seg[sd] = (musae_store_segment){sd, 0, 0};
        }
        for (int64_t i = 0; i < (int64_t)F * H; i++) acts[i] = musae_u32_to_unit(musae_philox(9, (uint64_t)c, (uint64_t)i).v[0]) - 0.5f;
        char name[64];
        snprintf(name, sizeof name, "clip%05d", c);
        const float *l0[1] = {acts};
        musae_store_add_clip(w1, name, F, l0);
        musae_store_add_clip(ws, name, F, l0);
        seg[sd].n_clips++;
    }
    musae_store_close_writer(ws, 1);
    musae_store_close_writer(w1, 1);
    musae_store_join(joined, (const char *const *)paths, shards, seg, shards, 1);
    const double mb = (double)clips * F * H * 2 / 1e6;
    double t[2];
    const char *what[2] = {"one file", "joined"};
    for (int k = 0; k < 2; k++) {
        int64_t rows = 0;
        t[k] = stream_epoch(k ? joined : one, &rows);
        printf("{\"store\": \"%s\", \"shards\": %d, \"rows\": %lld, \"d\": %d, \"seconds\": %.3f, \"rows_per_s\": %.0f, "
               "\"mb_per_s\": %.1f}\n", what[k], k ? shards : 1, (long long)rows, H, t[k], rows / t[k], mb / t[k]);
    }
    printf("joined / one file: %.2fx the time\n", t[1] / t[0]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", one, joined, shard_dir);
    if (system(cmd)) fprintf(stderr, "could not remove the bench's stores\n");
    for (int i = 0; i < shards; i++) free(paths[i]);
    free(paths), free(seg), free(acts);
    return 0;
}
