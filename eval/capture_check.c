/* Capture's checks of a store it would continue (capture_int.h): the same model, layers, d_model, dtype and clip
 * grid, or a one-line refusal naming the store and what differs; and /capture/params, what the clips were cut
 * with. Split from capture.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "eval/capture_int.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/store.h"

void capture_layers_str(const int *l, int n, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%d", i ? "," : "", l[i]);
}

int capture_store_params(musae_store *s, capture_params *out) {
    int rank;
    int64_t shape[4];
    float *p = musae_store_get_f32(s, "/capture/params", &rank, shape);
    const int ok = p && rank == 1 && shape[0] == P_N && p[P_RATE] > 0 && p[P_CLIP_SAMPLES] > 0;
    if (ok)
        *out = (capture_params){.clip_samples = (int64_t)p[P_CLIP_SAMPLES], .min_samples = (int64_t)p[P_MIN_SAMPLES],
                                .captions = p[P_CAPTIONS] != 0, .rate = (int)p[P_RATE]};
    free(p);
    return ok ? 0 : -1;
}

void capture_check_resumable(const char *out, const char *model_id, const capture_opts *o, int d_model,
                            const float *params, const char *arith) {
    char err[600];
    musae_store *s = musae_store_open(out, err, sizeof err);
    if (!s) musae_fail("%s (it exists, so this run would continue it)", err);
    const musae_store_info *in = musae_store_get_info(s);
    char have[512], want[512];
    if (!musae_store_same_model(in->model, model_id))
        musae_fail("%s holds activations of model '%s'; this run uses '%s' (%s): refusing to mix models in one "
                   "store (write to a new file)", out, in->model, model_id, o->model_dir);
    capture_layers_str(in->layers, in->n_layers, have, sizeof have);
    capture_layers_str(o->layers, o->n_layers, want, sizeof want);
    if (strcmp(have, want))
        musae_fail("%s holds layers %s; this run asks for %s: refusing to continue it (give --layers %s, or write "
                   "to a new file)", out, have, want, have);
    if (in->d_model != d_model) musae_fail("%s holds d_model %d; the model has %d", out, in->d_model, d_model);
    if (in->dtype != o->dtype)
        musae_fail("%s holds %s rows; this run writes %s (give --dtype %s)", out, musae_dtype_name(in->dtype),
                   musae_dtype_name(o->dtype), in->dtype == MUSAE_F32 ? "f32" : "f16");
    int rank;
    int64_t shape[4];
    float *got = musae_store_get_f32(s, "/capture/params", &rank, shape), p[P_N];
    const int ok = got && rank == 1 && shape[0] == P_N;
    if (ok) memcpy(p, got, sizeof p);
    free(got); /* before any refusal: an exit through musae_fail must leave nothing allocated behind (LSan) */
    if (!ok) musae_fail("%s was not written by musae capture (no /capture/params): refusing to continue it", out);
    if (p[P_RATE] != params[P_RATE] || p[P_CLIP_SAMPLES] != params[P_CLIP_SAMPLES])
        musae_fail("%s was cut into %g s clips; this run asks for %g s (give --clip-seconds %g)", out,
                   (double)p[P_CLIP_SAMPLES] / p[P_RATE], (double)params[P_CLIP_SAMPLES] / params[P_RATE],
                   (double)p[P_CLIP_SAMPLES] / p[P_RATE]);
    if (p[P_MIN_SAMPLES] != params[P_MIN_SAMPLES])
        musae_fail("%s kept clips of at least %g s; this run asks for %g s (give --min-seconds %g)", out,
                   (double)p[P_MIN_SAMPLES] / p[P_RATE], (double)params[P_MIN_SAMPLES] / params[P_RATE],
                   (double)p[P_MIN_SAMPLES] / p[P_RATE]);
    if (p[P_CAPTIONS] != params[P_CAPTIONS])
        musae_fail("%s was captured %s; this run is %s", out, p[P_CAPTIONS] ? "with --captions" : "unconditionally",
                   params[P_CAPTIONS] ? "text-conditioned (--captions)" : "unconditional");
    /* rows of one store come from one arithmetic (kernels/cpu/isa.h: AMX hosts compute the LM's products in
     * bf16x3, other bits than the FMA kernels'; bf16 weights and the GPU differ again) */
    if (arith && in->cpu_arith[0] && strcmp(in->cpu_arith, arith)) {
        char have_a[32];
        snprintf(have_a, sizeof have_a, "%s", in->cpu_arith);
        const int amx_here = !strcmp(arith, "amx-bf16x3") && !strcmp(have_a, "fma-fp32");
        const int amx_there = !strcmp(have_a, "amx-bf16x3") && !strcmp(arith, "fma-fp32");
        musae_store_close(s);
        musae_fail("%s holds rows computed with %s; this run computes %s: refusing to mix them in one store (%s)", out,
                   have_a, arith,
                   amx_here    ? "run with MUSAE_ISA=avx512 to compute fma-fp32 here"
                   : amx_there ? "continue it on a CPU with AMX at the amx level (MUSAE_ISA unset), or write to a new file"
                               : "continue it with the --device and --precision it was captured with, or write to a new "
                                 "file");
    }
    /* a store from before the attribute: its arithmetic cannot be checked */
    if (arith && !in->cpu_arith[0])
        LOG_WARN("%s does not record the arithmetic of its rows (written before musae recorded it): continuing it "
                 "with %s, whose rows may differ from its in their last bits",
                 out, arith);
    musae_store_close(s);
}

void capture_check_shard(const char *shard, void *arg) {
    const capture_resume_check *r = arg;
    capture_check_resumable(shard, r->model_id, r->o, r->d_model, r->params, r->arith);
}
