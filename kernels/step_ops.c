/* Which step table goes with an ops table: the one on the same device. */
#include "kernels/step_ops.h"

const musae_step_ops *musae_step_ops_for(const musae_ops *ops) {
    if (ops->device == MUSAE_DEVICE_CPU) return musae_step_ops_cpu();
    if (ops->device == MUSAE_DEVICE_CUDA) return musae_step_ops_cuda();
    return NULL;
}
