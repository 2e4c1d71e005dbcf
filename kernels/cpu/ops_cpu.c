#include <string.h>
#include <sys/mman.h>

#include "kernels/cpu/cpu_ops.h"

/* On the CPU "device" memory is host memory: 64-byte aligned for the vector loops. Buffers of 2 MiB and
 * more are 2 MiB aligned and asked to be backed by transparent huge pages: filling a fresh weight arena
 * was half page faults on 4 KiB pages (one fault, lock and zeroing per page; measured in a musicgen-small
 * load), and large GEMM operands miss the TLB less. Where THP is off the advice is ignored. */
#define HUGE_BYTES ((size_t)2 << 20)
static void *cpu_alloc(size_t bytes) {
    const size_t align = bytes >= HUGE_BYTES ? HUGE_BYTES : 64;
    const size_t n = (bytes + 63) / 64 * 64 + 64;
    void *p = aligned_alloc(align, (n + align - 1) / align * align);
    if (!p) musae_fail("out of memory allocating %zu bytes", bytes);
    if (align == HUGE_BYTES) (void)madvise(p, (n + align - 1) / align * align, MADV_HUGEPAGE);
    return p;
}
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_sync(void) {}

static const musae_ops k_cpu = {
    .name = "cpu",
    .device = MUSAE_DEVICE_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .gemm = cpu_gemm,
    .linear = cpu_linear,
    .linear_gelu = cpu_linear_gelu,
    .packed_floats = cpu_packed_floats_if_fma,
    .pack_weights = cpu_pack_weights,
    .linear_packed = cpu_linear_packed,
    .layernorm = cpu_layernorm,
    .rmsnorm = cpu_rmsnorm,
    .gelu = cpu_gelu,
    .gelu_tanh = cpu_gelu_tanh,
    .relu = cpu_relu,
    .add = cpu_add,
    .mul = cpu_mul,
    .embedding = cpu_embedding,
    .add_rows = cpu_add_rows,
    .attention = cpu_attention,
    .elu = cpu_elu,
    .conv1d = cpu_conv1d,
    .conv_transpose1d = cpu_conv_transpose1d,
    .lstm = cpu_lstm,
    .add_layernorm = cpu_add_layernorm,
    .linear_bf16w = cpu_linear_bf16w,
    .f32_to_bf16 = cpu_f32_to_bf16,
    .tanh = cpu_tanh,
    .l2_normalize = cpu_l2_normalize,
};

const musae_ops *musae_ops_cpu(void) { return &k_cpu; }
