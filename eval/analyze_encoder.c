/* analyze's row encoder: GPU, a screen (AMX or int16) or sgemm, batch-top-k in pieces (analyze_encoder.h). */
#include "eval/analyze_encoder.h"

#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"
#ifdef MUSAE_CUDA
#include "sae/sae_gpu_infer.h"
#endif

void analyze_encoder_init(analyze_encoder *e, const sae_model *m, int64_t rows, int on_gpu) {
    memset(e, 0, sizeof *e);
    e->m = m;
    if (!on_gpu) e->screen = analyze_screen_init(m);
    if (e->screen) LOG_DEBUG("analyze: the %s screen and f32 rescore encode the rows", analyze_screen_name(analyze_screen_kind_of(e->screen)));
    /* a batch-top-k encode without a screen holds the [rows, M] pre-activations: at most 2^24 floats (64 MiB) at
     * once */
    e->pre_rows = rows;
    if (m->batch_topk && !e->screen) {
        int64_t r = ((int64_t)1 << 24) / m->M;
        e->pre_rows = r < 1 ? 1 : r < rows ? r : rows;
        e->pre = musae_xmalloc(sizeof(float) * (size_t)(e->pre_rows * m->M));
    }
    e->xc = musae_xmalloc(sizeof(float) * (size_t)(rows * m->d + 1));
    e->codes.ptr = musae_xcalloc((size_t)rows + 1, sizeof(int64_t));
#ifdef MUSAE_CUDA
    if (on_gpu) e->gpu = sae_gpu_encoder_init(m, e->pre_rows);
#else
    MUSAE_ASSERT(!on_gpu, "a GPU encoder in a build without CUDA");
#endif
}

/* One call's encode of n <= pre_rows rows into c: on the GPU when the encoder has one, else sae_model_infer.
 * A batch-top-k SAE's threshold is applied on the host either way (sae_model_threshold_codes). */
static void encode_call(analyze_encoder *e, const float *x, int64_t n, sae_codes *c) {
#ifdef MUSAE_CUDA
    if (e->gpu) {
        sae_gpu_encoder_run(e->gpu, x, n, c, e->pre);
        if (e->m->batch_topk) sae_model_threshold_codes(e->m, e->pre, n, c);
        return;
    }
#endif
    if (e->screen) {
        const int64_t d = e->m->d;
        const float *b_dec = e->m->p.b_dec;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < d; j++) e->xc[r * d + j] = x[r * d + j] - b_dec[j];
        analyze_screen_encode(e->screen, e->xc, n, c);
        return;
    }
    sae_model_infer(e->m, x, n, c, e->xc, e->pre);
}

void analyze_encoder_free(analyze_encoder *e) {
    analyze_screen_free(e->screen);
#ifdef MUSAE_CUDA
    sae_gpu_encoder_free(e->gpu);
#endif
    free(e->codes.ptr);
    free(e->codes.idx);
    free(e->codes.val);
    free(e->xc);
    free(e->pre);
    memset(e, 0, sizeof *e);
}

void analyze_encoder_run(analyze_encoder *e, const float *x, int64_t n) {
    const sae_model *m = e->m;
    if (!m->batch_topk || e->screen) { /* a screen needs no pre-activation buffer, whatever the SAE */
        encode_call(e, x, n, &e->codes);
        return;
    }
    sae_codes piece = {0};
    piece.ptr = musae_xcalloc((size_t)e->pre_rows + 1, sizeof(int64_t));
    int64_t total = 0;
    e->codes.ptr[0] = 0;
    for (int64_t r0 = 0; r0 < n; r0 += e->pre_rows) {
        const int64_t nr = r0 + e->pre_rows <= n ? e->pre_rows : n - r0;
        encode_call(e, x + r0 * m->d, nr, &piece);
        const int64_t add = piece.ptr[nr];
        if (total + add > e->codes.cap) {
            e->codes.cap = (total + add) * 2;
            e->codes.idx = musae_xrealloc(e->codes.idx, sizeof(int32_t) * (size_t)e->codes.cap);
            e->codes.val = musae_xrealloc(e->codes.val, sizeof(float) * (size_t)e->codes.cap);
        }
        memcpy(e->codes.idx + total, piece.idx, sizeof(int32_t) * (size_t)add);
        memcpy(e->codes.val + total, piece.val, sizeof(float) * (size_t)add);
        for (int64_t r = 0; r < nr; r++) e->codes.ptr[r0 + r + 1] = total + piece.ptr[r + 1];
        total += add;
    }
    e->codes.n_rows = n;
    free(piece.ptr);
    free(piece.idx);
    free(piece.val);
}
