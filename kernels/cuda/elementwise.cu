/* Elementwise kernels: one functor per op, two kernels per arity (float4 and scalar). The math mirrors
 * kernels/cpu/activation.c and kernels/cpu/elu.c expression by expression; relu/add/mul/add_rows are
 * bit-identical to the CPU, the transcendental ones agree to a few ulps (CUDA's erff/tanhf/expm1f vs glibc
 * and the CPU's expm1 polynomial). */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/elementwise.cuh"

// ---- functors
struct gelu_op {
    __device__ float operator()(float x) const { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
};
struct gelu_tanh_op {
    __device__ float operator()(float v) const {
        const float c = 0.7978845608028654f; /* sqrt(2/pi) */
        return 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
};
struct relu_op {
    __device__ float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};
struct elu_op { // NaN fails `v <= 0` and passes through, as on the CPU and in torch
    __device__ float operator()(float v) const { return v <= 0.0f ? expm1f(v) : v; }
};
struct tanh_op {
    __device__ float operator()(float x) const { return tanhf(x); }
};
struct add_op {
    __device__ float operator()(float a, float b) const { return a + b; }
};
struct mul_op {
    __device__ float operator()(float a, float b) const { return a * b; }
};

// ---- CUDA kernels
// float4 body over the first n/4 groups, then the n % 4 tail by the first (n % 4) threads of the grid.
// Streaming data is touched once, so plain loads/stores are enough; the next op usually hits it in L2.
template <class Op>
static __global__ void unary_vec4_kernel(float *out, const float *x, int64_t n, Op op) {
    const int64_t n4 = n / 4, tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = tid; i < n4; i += stride) {
        float4 v = reinterpret_cast<const float4 *>(x)[i];
        v.x = op(v.x), v.y = op(v.y), v.z = op(v.z), v.w = op(v.w);
        reinterpret_cast<float4 *>(out)[i] = v;
    }
    const int64_t t = n4 * 4 + tid;
    if (t < n) out[t] = op(x[t]);
}

template <class Op>
static __global__ void unary_scalar_kernel(float *out, const float *x, int64_t n, Op op) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = op(x[i]);
}

template <class Op>
static __global__ void binary_vec4_kernel(float *out, const float *a, const float *b, int64_t n, Op op) {
    const int64_t n4 = n / 4, tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = tid; i < n4; i += stride) {
        float4 u = reinterpret_cast<const float4 *>(a)[i], v = reinterpret_cast<const float4 *>(b)[i];
        u.x = op(u.x, v.x), u.y = op(u.y, v.y), u.z = op(u.z, v.z), u.w = op(u.w, v.w);
        reinterpret_cast<float4 *>(out)[i] = u;
    }
    const int64_t t = n4 * 4 + tid;
    if (t < n) out[t] = op(a[t], b[t]);
}

template <class Op>
static __global__ void binary_scalar_kernel(float *out, const float *a, const float *b, int64_t n, Op op) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = op(a[i], b[i]);
}

// Rows along y (grid-strided past 65535), columns along x: no division per element. __fmul_rn/__fadd_rn keep
// the compiler from fusing the two into an FMA, so alpha = 1 adds v exactly and the CPU matches bit for bit.
static __global__ void add_rows_kernel(float *x, const float *v, float alpha, int64_t rows, int64_t dim) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= dim) return;
    const float d = __fmul_rn(alpha, v[i]);
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) x[r * dim + i] = __fadd_rn(x[r * dim + i], d);
}

static __global__ void scale_kernel(float *x, float beta, int64_t n) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = beta == 0.0f ? 0.0f : x[i] * beta;
}

// ---- kernel launchers
static const int k_block = 256;

template <class Op>
static void unary_launch(float *out, const float *x, int64_t n, cudaStream_t stream, const char *name) {
    MUSAE_ASSERT(n >= 0, "%s: n = %lld", name, (long long)n);
    if (n == 0) return;
    MUSAE_ASSERT(out && x, "%s: NULL pointer", name);
    if (is_aligned16(out) && is_aligned16(x)) {
        unary_vec4_kernel<<<grid_for(CEIL_DIV(n, 4), k_block), k_block, 0, stream>>>(out, x, n, Op());
    } else {
        unary_scalar_kernel<<<grid_for(n, k_block), k_block, 0, stream>>>(out, x, n, Op());
    }
    CUDA_LAUNCH_CHECK();
}

template <class Op>
static void binary_launch(float *out, const float *a, const float *b, int64_t n, cudaStream_t stream,
                          const char *name) {
    MUSAE_ASSERT(n >= 0, "%s: n = %lld", name, (long long)n);
    if (n == 0) return;
    MUSAE_ASSERT(out && a && b, "%s: NULL pointer", name);
    if (is_aligned16(out) && is_aligned16(a) && is_aligned16(b)) {
        binary_vec4_kernel<<<grid_for(CEIL_DIV(n, 4), k_block), k_block, 0, stream>>>(out, a, b, n, Op());
    } else {
        binary_scalar_kernel<<<grid_for(n, k_block), k_block, 0, stream>>>(out, a, b, n, Op());
    }
    CUDA_LAUNCH_CHECK();
}

void gelu_cuda(float *out, const float *x, int64_t n, cudaStream_t s) { unary_launch<gelu_op>(out, x, n, s, "gelu"); }
void gelu_tanh_cuda(float *out, const float *x, int64_t n, cudaStream_t s) {
    unary_launch<gelu_tanh_op>(out, x, n, s, "gelu_tanh");
}
void relu_cuda(float *out, const float *x, int64_t n, cudaStream_t s) { unary_launch<relu_op>(out, x, n, s, "relu"); }
void elu_cuda(float *out, const float *x, int64_t n, cudaStream_t s) { unary_launch<elu_op>(out, x, n, s, "elu"); }
void tanh_cuda(float *out, const float *x, int64_t n, cudaStream_t s) { unary_launch<tanh_op>(out, x, n, s, "tanh"); }
void add_cuda(float *out, const float *a, const float *b, int64_t n, cudaStream_t s) {
    binary_launch<add_op>(out, a, b, n, s, "add");
}
void mul_cuda(float *out, const float *a, const float *b, int64_t n, cudaStream_t s) {
    binary_launch<mul_op>(out, a, b, n, s, "mul");
}

void add_rows_cuda(float *x, const float *v, float alpha, int64_t rows, int64_t dim, cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 0 && dim > 0, "add_rows dims %lld x %lld", (long long)rows, (long long)dim);
    if (rows == 0) return;
    MUSAE_ASSERT(x && v, "add_rows: NULL pointer");
    dim3 grid((unsigned)CEIL_DIV(dim, (int64_t)k_block), (unsigned)(rows < 65535 ? rows : 65535));
    MUSAE_ASSERT(CEIL_DIV(dim, (int64_t)k_block) < INT32_MAX, "add_rows: dim %lld too large", (long long)dim);
    add_rows_kernel<<<grid, k_block, 0, stream>>>(x, v, alpha, rows, dim);
    CUDA_LAUNCH_CHECK();
}

void scale_cuda(float *x, float beta, int64_t n, cudaStream_t stream) {
    MUSAE_ASSERT(n >= 0, "scale: n = %lld", (long long)n);
    if (n == 0) return;
    scale_kernel<<<grid_for(n, k_block), k_block, 0, stream>>>(x, beta, n);
    CUDA_LAUNCH_CHECK();
}
