/* Part of the GPU SAE op test (tests/test_sae_gpu.cu, whose main runs these with the shapes it picks): the
 * training step past the loss, against the CPU reference under the driver's tolerance rules — backward (f32 and
 * bf16 activations, AuxK, hot latents), Adam and the decoder's Adam with its row renormalisation —, the centring
 * and bf16 copies a step opens with, and a whole bf16 step run twice from the same state (bitwise equal).
 * Split from test_sae_gpu.cu, whose encode, batch-top-k, decode and loss rows come first; the results table,
 * buffers and comparisons are the driver's (test_sae_gpu.h), so every row and check counts there. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "host/core/dtype.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/sae_ops.h"
#include "test_sae_gpu.h"

// ---- backward -------------------------------------------------------------------------------------------------------------
void test_backward(int64_t N, int64_t d, int64_t M, int k, int k_aux, musae_dtype act_t, int hot) {
    std::vector<uint8_t> dead((size_t)M);
    for (int64_t i = 0; i < M; i++) dead[(size_t)i] = i % 4 == 3;
    sae_codes hc = make_codes(N, 16, M, k, 61, NULL, hot);
    sae_codes ha = k_aux ? make_codes(N, 16, M, k_aux, 62, dead.data(), 0) : hcodes(N, 1);
    std::vector<float> gx((size_t)(N * d)), ge((size_t)(N * d)), xc((size_t)(N * d)), We((size_t)(M * d)), Wd((size_t)(M * d));
    fill(gx.data(), N * d, 63, 1e-3f);
    fill(ge.data(), N * d, 64, 1e-4f);
    fill(xc.data(), N * d, 65, 1.0f);
    fill(We.data(), M * d, 66, 0.1f);
    fill(Wd.data(), M * d, 67, 0.1f);
    std::vector<float> rWe((size_t)(M * d)), rbe((size_t)M), rWd((size_t)(M * d)), rbd((size_t)d);
    const int64_t nnz = hc.ptr[N] + (k_aux ? ha.ptr[N] : 0);
    std::vector<char> scr(sae_cpu_backward_scratch_bytes(N, nnz, M));
    sae_cpu_backward(&hc, k_aux ? &ha : NULL, gx.data(), k_aux ? ge.data() : NULL, xc.data(), We.data(), Wd.data(), d, M,
                     rWe.data(), rbe.data(), rWd.data(), rbd.data(), scr.data());
    // device: codes with spare capacity (the sentinel path), inputs in act_t
    sae_codes dc = dcodes_up(&hc, N * k + 3), da = dcodes_up(&ha, k_aux ? N * k_aux : 1);
    const void *dgx, *dge, *dxc;
    if (act_t == MUSAE_F32) {
        dgx = dup(gx.data(), N * d), dge = dup(ge.data(), N * d), dxc = dup(xc.data(), N * d);
    } else {
        std::vector<uint16_t> a = to_bf16(gx.data(), N * d), b = to_bf16(ge.data(), N * d), c = to_bf16(xc.data(), N * d);
        dgx = dup(a.data(), N * d), dge = dup(b.data(), N * d), dxc = dup(c.data(), N * d);
    }
    float *dWe = dup(We.data(), M * d), *dWd = dup(Wd.data(), M * d);
    float *oWe = dnew<float>(M * d), *obe = dnew<float>(M), *oWd = dnew<float>(M * d), *obd = dnew<float>(d);
    const size_t sb = sae_cuda_backward_scratch_bytes(N, dc.cap, k_aux ? da.cap : 0, d, M);
    void *scratch = dmalloc(sb);
    sae_cuda_backward(&dc, k_aux ? &da : NULL, act_t, dgx, k_aux ? dge : NULL, dxc, dWe, dWd, d, M, oWe, obe, oWd, obd,
                      scratch, sb, 0);
    std::vector<float> gWe((size_t)(M * d)), gbe((size_t)M), gWd((size_t)(M * d)), gbd((size_t)d);
    down(gWe.data(), oWe, M * d);
    down(gbe.data(), obe, M);
    down(gWd.data(), oWd, M * d);
    down(gbd.data(), obd, d);
    char shape[48], name[40];
    shape_str(shape, sizeof shape, N, d, M, k, k_aux);
    if (hot) strncat(shape, " hot", sizeof shape - strlen(shape) - 1);
    const char *tag = act_t == MUSAE_F32 ? "f32" : "bf16";
    // reduction lengths: entries per latent (<= N·2 with aux) for dW/db_enc, then N + M for db_dec
    const double n_lat = (double)(2 * N), n_dec = (double)(N + M) + n_lat;
    struct {
        const char *what;
        const float *g, *r;
        int64_t n;
        double len;
    } outs[4] = {{"dW_enc", gWe.data(), rWe.data(), M * d, n_lat + d},
                 {"db_enc", gbe.data(), rbe.data(), M, n_lat + d},
                 {"dW_dec", gWd.data(), rWd.data(), M * d, n_lat},
                 {"db_dec", gbd.data(), rbd.data(), d, n_dec + d}};
    std::vector<float> nWe, nbe, nWd, nbd; // naive bf16 reference
    if (act_t == MUSAE_BF16) {
        std::vector<float> a = round_bf16(gx.data(), N * d), b = round_bf16(ge.data(), N * d), c = round_bf16(xc.data(), N * d);
        nWe.resize((size_t)(M * d)), nbe.resize((size_t)M), nWd.resize((size_t)(M * d)), nbd.resize((size_t)d);
        sae_cpu_backward(&hc, k_aux ? &ha : NULL, a.data(), k_aux ? b.data() : NULL, c.data(), We.data(), Wd.data(), d, M,
                         nWe.data(), nbe.data(), nWd.data(), nbd.data(), scr.data());
    }
    const float *naive[4] = {nWe.data(), nbe.data(), nWd.data(), nbd.data()};
    for (int o = 0; o < 4; o++) {
        snprintf(name, sizeof name, "backward.%s.%s", tag, outs[o].what);
        const double e = max_abs_diff(outs[o].g, outs[o].r, outs[o].n), q = nmse(outs[o].g, outs[o].r, outs[o].n);
        if (act_t == MUSAE_F32) {
            const double tol = order_tol(outs[o].len);
            report(name, shape, "order", e, q, tol, 0, q <= tol);
        } else {
            const double tol = 2 * max_abs_diff(naive[o], outs[o].r, outs[o].n) +
                               sqrt(order_tol(outs[o].len)) * max_abs(outs[o].r, outs[o].n);
            report(name, shape, "FA", e, q, tol, 0, e <= tol);
        }
    }
    hcodes_free(&hc), hcodes_free(&ha);
    dfree_all("backward");
}

// ---- optimizer ---------------------------------------------------------------------------------------------------------------
void test_adam(int64_t n, int offset) {
    std::vector<float> p((size_t)n), g((size_t)n), m((size_t)n), v((size_t)n);
    fill(p.data(), n, 71, 1.0f);
    fill(g.data(), n, 72, 1e-2f);
    fill(m.data(), n, 73, 1e-3f);
    fill(v.data(), n, 74, 1e-4f);
    for (float &x : v) x = x * x;
    sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 6.25e-10f, 3};
    // device copies at an offset of `offset` floats (breaks 16-byte alignment -> the scalar kernel)
    float *dp = dnew<float>(n + offset), *dg = dnew<float>(n + offset), *dm = dnew<float>(n + offset),
          *dv = dnew<float>(n + offset);
    uint16_t *d16 = dnew<uint16_t>(n + offset);
    CUDA_CHECK(cudaMemcpy(dp + offset, p.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dg + offset, g.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dm + offset, m.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dv + offset, v.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    sae_cpu_adam(p.data(), g.data(), m.data(), v.data(), n, &h);
    sae_cuda_adam(dp + offset, dg + offset, dm + offset, dv + offset, n, &h, d16 + offset, 0);
    std::vector<float> gp((size_t)n), gm((size_t)n), gv((size_t)n);
    std::vector<uint16_t> g16((size_t)n);
    down(gp.data(), dp + offset, n);
    down(gm.data(), dm + offset, n);
    down(gv.data(), dv + offset, n);
    down(g16.data(), d16 + offset, n);
    long long bad = word_mismatch(gp.data(), p.data(), n) + word_mismatch(gm.data(), m.data(), n) +
                    word_mismatch(gv.data(), v.data(), n);
    for (int64_t i = 0; i < n; i++) bad += g16[(size_t)i] != musae_f32_to_bf16(p[(size_t)i]);
    char shape[48];
    snprintf(shape, sizeof shape, "n%lld%s", (long long)n, offset ? " unaligned" : "");
    report("adam", shape, "exact", max_abs_diff(gp.data(), p.data(), n), 0, 0, bad, bad == 0);
    dfree_all("adam");
}

void test_adam_decoder(int64_t M, int64_t d) {
    std::vector<float> W((size_t)(M * d)), g((size_t)(M * d)), m((size_t)(M * d)), v((size_t)(M * d));
    fill(W.data(), M * d, 81, 1.0f);
    sae_cpu_normalize_rows(W.data(), M, d);
    fill(g.data(), M * d, 82, 1e-2f);
    fill(m.data(), M * d, 83, 1e-3f);
    fill(v.data(), M * d, 84, 1e-3f);
    for (float &x : v) x = x * x;
    for (int64_t j = 0; j < d; j++) W[(size_t)(1 * d + j)] = 0.0f; // a zero row stays zero... until Adam moves it
    sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 6.25e-10f, 5};
    float *dW = dup(W.data(), M * d), *dg = dup(g.data(), M * d), *dm = dup(m.data(), M * d), *dv = dup(v.data(), M * d);
    uint16_t *d16 = dnew<uint16_t>(M * d);
    sae_cpu_adam_decoder(W.data(), g.data(), m.data(), v.data(), M, d, &h);
    sae_cuda_adam_decoder(dW, dg, dm, dv, M, d, &h, d16, 0);
    std::vector<float> gW((size_t)(M * d)), gg((size_t)(M * d)), gm((size_t)(M * d)), gv((size_t)(M * d));
    std::vector<uint16_t> g16((size_t)(M * d));
    down(gW.data(), dW, M * d);
    down(gg.data(), dg, M * d);
    down(gm.data(), dm, M * d);
    down(gv.data(), dv, M * d);
    down(g16.data(), d16, M * d);
    char shape[48];
    snprintf(shape, sizeof shape, "M%lld d%lld", (long long)M, (long long)d);
    // the row sums (<g,w>, ‖w‖²) differ from the CPU's by order; everything downstream inherits that
    const double tol = order_tol((double)d);
    const struct {
        const char *what;
        const float *a, *b;
    } o[4] = {{"adam_decoder.W", gW.data(), W.data()}, {"adam_decoder.g", gg.data(), g.data()},
              {"adam_decoder.m", gm.data(), m.data()}, {"adam_decoder.v", gv.data(), v.data()}};
    for (int i = 0; i < 4; i++) {
        const double q = nmse(o[i].a, o[i].b, M * d);
        report(o[i].what, shape, "order", max_abs_diff(o[i].a, o[i].b, M * d), q, tol, 0, q <= tol);
    }
    long long bad = 0;
    for (int64_t i = 0; i < M * d; i++) bad += g16[(size_t)i] != musae_f32_to_bf16(gW[(size_t)i]);
    report("adam_decoder.shadow", shape, "exact", 0, 0, 0, bad, bad == 0);
    // normalize_rows
    std::vector<float> X((size_t)(M * d));
    fill(X.data(), M * d, 85, 3.0f);
    for (int64_t j = 0; j < d; j++) X[(size_t)j] = 0.0f;
    float *dX = dup(X.data(), M * d);
    sae_cpu_normalize_rows(X.data(), M, d);
    sae_cuda_normalize_rows(dX, M, d, 0);
    std::vector<float> gX((size_t)(M * d));
    down(gX.data(), dX, M * d);
    const double q = nmse(gX.data(), X.data(), M * d);
    report("normalize_rows", shape, "order", max_abs_diff(gX.data(), X.data(), M * d), q, tol, 0, q <= tol);
    dfree_all("adam_decoder");
}

// ---- helpers: centre (as sae_trainer_step) and bf16 copies ------------------------------------------------------------------
void test_center(int64_t N, int64_t d) {
    std::vector<float> x((size_t)(N * d)), b((size_t)d), xs((size_t)(N * d)), xc((size_t)(N * d));
    fill(x.data(), N * d, 101, 3.0f);
    fill(b.data(), d, 102, 0.5f);
    const float s = 1.37f;
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < d; j++) {
            const float v = x[(size_t)(r * d + j)] * s;
            xs[(size_t)(r * d + j)] = v;
            xc[(size_t)(r * d + j)] = v - b[(size_t)j];
        }
    float *dx = dup(x.data(), N * d), *db = dup(b.data(), d), *dxs = dnew<float>(N * d), *dxc = dnew<float>(N * d);
    uint16_t *d16 = dnew<uint16_t>(N * d), *e16 = dnew<uint16_t>(N * d);
    sae_cuda_center(dx, s, db, N, d, dxs, dxc, d16, 0);
    sae_cuda_to_bf16(dx, N * d, e16, 0);
    std::vector<float> gs((size_t)(N * d)), gc((size_t)(N * d));
    std::vector<uint16_t> g16((size_t)(N * d)), h16((size_t)(N * d));
    down(gs.data(), dxs, N * d);
    down(gc.data(), dxc, N * d);
    down(g16.data(), d16, N * d);
    down(h16.data(), e16, N * d);
    long long bad = word_mismatch(gs.data(), xs.data(), N * d) + word_mismatch(gc.data(), xc.data(), N * d);
    for (int64_t i = 0; i < N * d; i++)
        bad += g16[(size_t)i] != musae_f32_to_bf16(xc[(size_t)i]) || h16[(size_t)i] != musae_f32_to_bf16(x[(size_t)i]);
    char shape[48];
    snprintf(shape, sizeof shape, "N%lld d%lld", (long long)N, (long long)d);
    report("center+to_bf16", shape, "exact", max_abs_diff(gc.data(), xc.data(), N * d), 0, 0, bad, bad == 0);
    dfree_all("center");
}

// ---- determinism: a whole bf16 training step twice from the same state ----------------------------------------------------
void test_determinism(cublasHandle_t blas, int64_t N, int64_t d, int64_t M, int k, int k_aux) {
    std::vector<float> x((size_t)(N * d)), W((size_t)(M * d)), b((size_t)M), bd((size_t)d);
    fill(x.data(), N * d, 91, 1.0f);
    fill(W.data(), M * d, 92, 1.0f);
    sae_cpu_normalize_rows(W.data(), M, d);
    fill(b.data(), M, 93, 0.05f);
    fill(bd.data(), d, 94, 0.1f);
    std::vector<uint8_t> dead((size_t)M);
    for (int64_t i = 0; i < M; i++) dead[(size_t)i] = i % 7 == 0;
    const size_t s_enc = sae_cuda_encode_scratch_bytes(N, M, k, k_aux);
    const size_t s_bwd = sae_cuda_backward_scratch_bytes(N, N * k, N * k_aux, d, M);
    const size_t s_tv = sae_cuda_total_variance_scratch_bytes(N, d), s_loss = sae_cuda_loss_grad_scratch_bytes(N);
    std::vector<std::vector<char>> result[2];
    for (int run = 0; run < 2; run++) { // every buffer per run: dfree_all below frees them all
        uint8_t *ddead = dup(dead.data(), M);
        float *dx = dup(x.data(), N * d);
        float *We = dup(W.data(), M * d), *Wd = dup(W.data(), M * d), *be = dup(b.data(), M), *bdd = dup(bd.data(), d);
        float *gWe = dnew<float>(M * d), *gWd = dnew<float>(M * d), *gbe = dnew<float>(M), *gbd = dnew<float>(d);
        std::vector<float> zeros((size_t)(M * d), 0.0f);
        float *mWe = dup(zeros.data(), M * d), *vWe = dup(zeros.data(), M * d), *mWd = dup(zeros.data(), M * d),
              *vWd = dup(zeros.data(), M * d), *mbe = dup(zeros.data(), M), *vbe = dup(zeros.data(), M),
              *mbd = dup(zeros.data(), d), *vbd = dup(zeros.data(), d);
        uint16_t *We16 = dnew<uint16_t>(M * d), *Wd16 = dnew<uint16_t>(M * d), *xc16 = dnew<uint16_t>(N * d);
        uint16_t *gx16 = dnew<uint16_t>(N * d), *ge16 = dnew<uint16_t>(N * d);
        float *xs = dnew<float>(N * d), *xc = dnew<float>(N * d), *xh = dnew<float>(N * d), *eh = dnew<float>(N * d);
        float *gx = dnew<float>(N * d), *ge = dnew<float>(N * d);
        double *tv = dnew<double>(1), *fvu = dnew<double>(1), *aux = dnew<double>(1);
        sae_codes c = dcodes(N, N * k), a = dcodes(N, N * k_aux);
        void *se = dmalloc(s_enc), *sbw = dmalloc(s_bwd), *stv = dmalloc(s_tv), *sl = dmalloc(s_loss);
        sae_cuda_to_bf16(We, M * d, We16, 0);
        sae_cuda_to_bf16(Wd, M * d, Wd16, 0);
        for (int step = 1; step <= 2; step++) {
            sae_cuda_center(dx, 1.0f, bdd, N, d, xs, xc, xc16, 0);
            sae_cuda_encode(blas, MUSAE_BF16, xc16, We16, be, N, d, M, k, ddead, k_aux, &c, &a, NULL, se, s_enc, 0);
            sae_cuda_decode(&c, MUSAE_BF16, Wd16, bdd, d, xh, 0);
            sae_cuda_decode(&a, MUSAE_BF16, Wd16, NULL, d, eh, 0);
            sae_cuda_total_variance(xs, N, d, tv, stv, 0);
            sae_cuda_loss_grad(xs, xh, eh, N, d, tv, 1.0f / 32, gx, ge, gx16, ge16, fvu, aux, sl, 0);
            sae_cuda_backward(&c, &a, MUSAE_BF16, gx16, ge16, xc16, We, Wd, d, M, gWe, gbe, gWd, gbd, sbw, s_bwd, 0);
            sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 6.25e-10f, step};
            sae_cuda_adam(We, gWe, mWe, vWe, M * d, &h, We16, 0);
            sae_cuda_adam(be, gbe, mbe, vbe, M, &h, NULL, 0);
            sae_cuda_adam(bdd, gbd, mbd, vbd, d, &h, NULL, 0);
            sae_cuda_adam_decoder(Wd, gWd, mWd, vWd, M, d, &h, Wd16, 0);
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        auto grab = [&](const void *p, size_t bytes) {
            std::vector<char> h(bytes);
            CUDA_CHECK(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
            result[run].push_back(h);
        };
        int64_t nnz[2];
        down(&nnz[0], c.ptr + N, 1);
        down(&nnz[1], a.ptr + N, 1);
        grab(c.ptr, 8 * (size_t)(N + 1)), grab(c.idx, 4 * (size_t)nnz[0]), grab(c.val, 4 * (size_t)nnz[0]);
        grab(a.ptr, 8 * (size_t)(N + 1)), grab(a.idx, 4 * (size_t)nnz[1]), grab(a.val, 4 * (size_t)nnz[1]);
        grab(We, 4 * (size_t)(M * d)), grab(Wd, 4 * (size_t)(M * d)), grab(be, 4 * (size_t)M), grab(bdd, 4 * (size_t)d);
        grab(gWe, 4 * (size_t)(M * d)), grab(gWd, 4 * (size_t)(M * d)), grab(gbd, 4 * (size_t)d), grab(fvu, 8), grab(aux, 8);
        dfree_all("determinism");
    }
    long long bad = 0;
    for (size_t i = 0; i < result[0].size(); i++)
        bad += result[0][i].size() != result[1][i].size() ||
               memcmp(result[0][i].data(), result[1][i].data(), result[0][i].size()) != 0;
    char shape[48];
    shape_str(shape, sizeof shape, N, d, M, k, k_aux);
    report("determinism.step.bf16", shape, "exact", 0, 0, 0, bad, bad == 0);
}
