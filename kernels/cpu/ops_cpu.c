#include "kernels/cpu/cpu_ops.h"

static const musae_ops k_cpu = {
    .name = "cpu",
    .device = MUSAE_DEVICE_CPU,
    .gemm = cpu_gemm,
    .linear = cpu_linear,
    .layernorm = cpu_layernorm,
    .rmsnorm = cpu_rmsnorm,
    .gelu = cpu_gelu,
    .gelu_tanh = cpu_gelu_tanh,
    .relu = cpu_relu,
    .add = cpu_add,
    .mul = cpu_mul,
    .embedding = cpu_embedding,
    .attention = cpu_attention,
};

const musae_ops *musae_ops_cpu(void) { return &k_cpu; }
