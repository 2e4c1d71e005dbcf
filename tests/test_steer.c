/* Per-item steering vectors in one CFG batch (mg_hook.vec_n = n_cond; kernels/step_ops.h add_rows_at with
 * n_vec vectors) on tests/fixtures/tiny-musicgen: a batch of 3 text-conditioned items with guidance 3, each item
 * with its own ADD vector (item 1's is zero), gives every item the codes it gets when generated alone with its
 * vector, for the conditional, unconditional and both branches, on the host loop and the device loop (CPU step
 * table). Items 0 and 2 must also differ from their unsteered codes, so a hook that added nothing would fail. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/philox.h"
#include "model/generate.h"
#include "test.h"

enum { B = 3, S = 5, FRAMES = 16 };

static mg_model g_m;
static uint64_t g_draw;
static float unif(void) {
    musae_u32x4 w = musae_philox(0x5ee7, 1, g_draw / 4);
    return musae_u32_to_unit(w.v[g_draw++ % 4]);
}

/* Generates n items (text rows [b0, b0 + n) of states/mask) with vectors vecs [n, H] (NULL: no hook). */
static void gen(int64_t n, int64_t b0, const float *states, const float *mask, const float *vecs, mg_branch br,
                mg_gen_loop loop, int64_t *codes) {
    const int64_t H = g_m.H;
    mg_text text = {states + b0 * S * H, mask + b0 * S, S};
    mg_gen_params p = {.steps = mg_delay_plan_frames(g_m.K, FRAMES).steps, .guidance = 3.0f,
                       .sampler = {.greedy = 1}, .loop = loop};
    float *dv = NULL;
    mg_hook hk = {0};
    if (vecs) {
        dv = g_m.ops->alloc(sizeof(float) * (size_t)(n * H));
        g_m.ops->upload(dv, vecs, sizeof(float) * (size_t)(n * H));
        hk = (mg_hook){.kind = MG_HOOK_ADD, .layer = 0, .branch = br, .pos_begin = 2, .pos_end = MG_POS_END,
                       .vec = dv, .vec_n = n, .scale = 1.0f};
    }
    mg_generate(&g_m, n, &text, &p, vecs ? &hk : NULL, vecs ? 1 : 0, NULL, NULL, codes);
    if (dv) g_m.ops->free(dv);
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny-musicgen", test_fixtures());
    mg_load(&g_m, dir, musae_ops_cpu(), MUSAE_PREC_FP32);
    const int64_t H = g_m.H, K = g_m.K, per = K * FRAMES;
    float *states = malloc(sizeof(float) * B * S * H), *mask = malloc(sizeof(float) * B * S);
    float *vecs = calloc((size_t)(B * H), sizeof(float));
    for (int64_t i = 0; i < B * S * H; i++) states[i] = unif() * 2.0f - 1.0f;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < S; j++) mask[b * S + j] = j < S - b ? 1.0f : 0.0f;
    for (int64_t i = 0; i < H; i++) { /* item 1 keeps the zero vector */
        vecs[i] = 3.0f * (unif() - 0.5f);
        vecs[2 * H + i] = 3.0f * (unif() - 0.5f);
    }
    int64_t *batch = malloc(sizeof(int64_t) * (size_t)(B * per)), *alone = malloc(sizeof(int64_t) * (size_t)per);
    int64_t *plain = malloc(sizeof(int64_t) * (size_t)(B * per));
    gen(B, 0, states, mask, NULL, MG_BRANCH_COND, MG_LOOP_HOST, plain);
    const mg_branch branches[] = {MG_BRANCH_COND, MG_BRANCH_UNCOND, MG_BRANCH_BOTH};
    const char *bname[] = {"cond", "uncond", "both"};
    for (int l = 0; l < 2; l++) {
        const mg_gen_loop loop = l ? MG_LOOP_DEVICE : MG_LOOP_HOST;
        for (int bi = 0; bi < 3; bi++) {
            gen(B, 0, states, mask, vecs, branches[bi], loop, batch);
            for (int64_t b = 0; b < B; b++) {
                gen(1, b, states, mask, vecs + b * H, branches[bi], loop, alone);
                int64_t diff = 0, moved = 0;
                for (int64_t i = 0; i < per; i++) {
                    diff += batch[b * per + i] != alone[i];
                    moved += batch[b * per + i] != plain[b * per + i];
                }
                CHECK(diff == 0, "%s loop, %s branch, item %lld: %lld of %lld codes differ from the item run alone",
                      l ? "device" : "host", bname[bi], (long long)b, (long long)diff, (long long)per);
                CHECK(b == 1 ? moved == 0 : moved > 0, "%s loop, %s branch, item %lld: %lld codes moved by steering",
                      l ? "device" : "host", bname[bi], (long long)b, (long long)moved);
                printf("%-6s loop %-6s item %lld: %lld codes differ from alone, %lld moved by its vector\n",
                       l ? "device" : "host", bname[bi], (long long)b, (long long)diff, (long long)moved);
            }
        }
    }
    free(batch), free(alone), free(plain), free(states), free(mask), free(vecs);
    mg_free(&g_m);
    TEST_END();
}
