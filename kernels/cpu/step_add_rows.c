/* step_ops->add_rows_at on the CPU: a steering vector added to rows when the device position is in range; row r
 * takes vector r mod n_vec (one shared vector, or one per batch item). */
#include "kernels/cpu/step_cpu.h"

void cpu_step_add_rows_at(float *x, const float *v, int64_t n_vec, const float *alpha, int64_t rows, int64_t dim,
                          int64_t p0, int64_t p1, const int64_t *pos) {
    const int64_t p = *pos;
    if (p < p0 || p >= p1) return;
    for (int64_t r = 0; r < rows; r++) {
        const float *vr = v + (r % n_vec) * dim;
        for (int64_t i = 0; i < dim; i++) {
            const float d = alpha[r] * vr[i]; /* rounded before the add, as ops->add_rows */
            x[r * dim + i] += d;
        }
    }
}
