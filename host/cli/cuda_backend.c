/* The musae binary's CUDA backend, loaded on demand (CUDA builds only; CMakeLists.txt: musae_cuda).
 *
 * The CUDA code (kernels/cuda, sae/sae_gpu.cu, host/dist/nccl.cu) is the module libmusae_cuda.so, not part of
 * the binary, so a run that never asks for a GPU never maps cudart, cuBLAS, cuBLASLt or NCCL (about 230 MB of
 * resident memory for `musae --help` when they were linked in). The functions below are the ones the host
 * code calls across that line; the first of them to need the module (musae_cuda_device_count, from --device
 * auto|cuda) loads it: first the driver (libcuda.so.1: without it there is nothing to load the module for,
 * and the reason says so), then the module next to the binary, else at the install prefix's lib/musae/.
 * Each forwarder resolves its function in the module once. Tests and benchmarks link the CUDA objects
 * directly (musae_lib) and never see this file. */
#ifdef MUSAE_CUDA
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/ops.h"
#include "kernels/step_ops.h"
#include "sae/sae_gpu.h"
#include "sae/sae_gpu_infer.h"
#ifdef MUSAE_NCCL
#include "host/dist/nccl.h"
#endif

static void *g_module;      /* the loaded module, NULL until loaded or when it cannot be */
static int g_tried;         /* loading was attempted (once per process) */
static char g_why[1024];    /* why g_module is NULL */

/* "<dir of the binary>/<rel>" into out; 0 when the binary's path is unknown. */
static int beside_binary(const char *rel, char *out, size_t n) {
    char exe[PATH_MAX];
    const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 0;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0;
    return snprintf(out, n, "%s/%s", exe, rel) < (int)n;
}

static void *backend(void) {
    if (g_tried) return g_module;
    g_tried = 1;
    if (!dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
        snprintf(g_why, sizeof g_why, "no NVIDIA driver (%s)", dlerror());
        return NULL;
    }
    static const char *places[] = {"libmusae_cuda.so", MUSAE_CUDA_MODULE_REL};
    char path[PATH_MAX + 64], first_error[512] = "";
    for (size_t i = 0; i < sizeof places / sizeof places[0] && !g_module; i++) {
        if (!beside_binary(places[i], path, sizeof path) || access(path, F_OK) != 0) continue;
        g_module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!g_module && !first_error[0]) snprintf(first_error, sizeof first_error, "%s", dlerror());
    }
    if (g_module) LOG_DEBUG("CUDA backend: %s", path);
    else if (first_error[0]) snprintf(g_why, sizeof g_why, "the CUDA backend did not load: %s", first_error);
    else
        snprintf(g_why, sizeof g_why, "the CUDA backend libmusae_cuda.so is missing (looked beside the binary and "
                 "in %s from it)", MUSAE_CUDA_MODULE_REL);
    return g_module;
}

static void *module_fn(const char *name) {
    if (!backend()) musae_fail("%s: no CUDA backend (%s)", name, g_why);
    void *f = dlsym(g_module, name);
    if (!f) musae_fail("the CUDA backend has no %s (%s): rebuild musae", name, dlerror());
    return f;
}

/* Declares f, the module's `name` with the prototype of this file's `name`, resolved on first use. */
#define FORWARD(name)                                                                                      \
    static __typeof__(&name) f;                                                                            \
    if (!f) f = (__typeof__(&name))module_fn(#name)

int musae_cuda_device_count(char *why, int n) {
    if (!backend()) {
        if (why) snprintf(why, (size_t)n, "%s", g_why);
        return 0;
    }
    FORWARD(musae_cuda_device_count);
    return f(why, n);
}

int musae_cuda_select(int device, char *why, int n) {
    if (!backend()) {
        if (why) snprintf(why, (size_t)n, "%s", g_why);
        return -1;
    }
    FORWARD(musae_cuda_select);
    return f(device, why, n);
}

int musae_cuda_bind_thread(char *why, int n) {
    if (!backend()) {
        if (why) snprintf(why, (size_t)n, "%s", g_why);
        return -1;
    }
    FORWARD(musae_cuda_bind_thread);
    return f(why, n);
}

const musae_ops *musae_ops_cuda(void) {
    if (!backend()) return NULL;
    FORWARD(musae_ops_cuda);
    return f();
}

const musae_step_ops *musae_step_ops_cuda(void) {
    if (!backend()) return NULL;
    FORWARD(musae_step_ops_cuda);
    return f();
}

/* ---- the GPU SAE trainer and its feed (sae/train.c) ---------------------------------------------------- */
sae_gpu_trainer *sae_gpu_trainer_init(const sae_config *cfg, int64_t batch, musae_dtype precision, void *stream) {
    FORWARD(sae_gpu_trainer_init);
    return f(cfg, batch, precision, stream);
}
void sae_gpu_trainer_free(sae_gpu_trainer *g) {
    FORWARD(sae_gpu_trainer_free);
    f(g);
}
void *sae_gpu_trainer_stream(const sae_gpu_trainer *g) {
    FORWARD(sae_gpu_trainer_stream);
    return f(g);
}
size_t sae_gpu_trainer_device_bytes(const sae_gpu_trainer *g) {
    FORWARD(sae_gpu_trainer_device_bytes);
    return f(g);
}
void sae_gpu_trainer_load_from_cpu(sae_gpu_trainer *g, const sae_trainer *t) {
    FORWARD(sae_gpu_trainer_load_from_cpu);
    f(g, t);
}
void sae_gpu_trainer_store_to_cpu(sae_gpu_trainer *g, sae_trainer *t) {
    FORWARD(sae_gpu_trainer_store_to_cpu);
    f(g, t);
}
void sae_gpu_trainer_step(sae_gpu_trainer *g, const float *x, int64_t n) {
    FORWARD(sae_gpu_trainer_step);
    f(g, x, n);
}
int sae_gpu_trainer_stats(sae_gpu_trainer *g, int64_t step, sae_step_stats *out) {
    FORWARD(sae_gpu_trainer_stats);
    return f(g, step, out);
}
void sae_gpu_trainer_set_data_parallel(sae_gpu_trainer *g, musae_nccl *nccl, int rank, int world) {
    FORWARD(sae_gpu_trainer_set_data_parallel);
    f(g, nccl, rank, world);
}
sae_gpu_feed *sae_gpu_feed_open(musae_stream *st, int n_layers, int d, int64_t batch, int64_t total_rows,
                                void *compute_stream) {
    FORWARD(sae_gpu_feed_open);
    return f(st, n_layers, d, batch, total_rows, compute_stream);
}
int64_t sae_gpu_feed_next(sae_gpu_feed *fd, const float **dev, musae_stream_pos *pos) {
    FORWARD(sae_gpu_feed_next);
    return f(fd, dev, pos);
}
sae_gpu_feed_stats sae_gpu_feed_get_stats(sae_gpu_feed *fd) {
    FORWARD(sae_gpu_feed_get_stats);
    return f(fd);
}
void sae_gpu_feed_close(sae_gpu_feed *fd) {
    FORWARD(sae_gpu_feed_close);
    f(fd);
}

/* ---- the GPU inference encoder (eval/analyze.c: musae analyze --device cuda) ----------------------------- */
sae_gpu_encoder *sae_gpu_encoder_init(const sae_model *m, int64_t rows) {
    FORWARD(sae_gpu_encoder_init);
    return f(m, rows);
}
void sae_gpu_encoder_run(sae_gpu_encoder *e, const float *x, int64_t n, sae_codes *codes, float *pre) {
    FORWARD(sae_gpu_encoder_run);
    f(e, x, n, codes, pre);
}
void sae_gpu_encoder_free(sae_gpu_encoder *e) {
    if (!e) return; /* nothing to free: no reason to load the module */
    FORWARD(sae_gpu_encoder_free);
    f(e);
}

#ifdef MUSAE_NCCL
musae_nccl *musae_nccl_init(const musae_dist *d) {
    FORWARD(musae_nccl_init);
    return f(d);
}
void musae_nccl_free(musae_nccl *c) {
    FORWARD(musae_nccl_free);
    f(c);
}
#endif
#endif /* MUSAE_CUDA */
