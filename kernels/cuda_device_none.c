/* The CPU-only build's answer to GPU discovery (kernels/cuda/cuda_device.cu replaces it when CUDA is on). It lives
 * in kernels/, beside the other *_cuda_none.c stand-ins, because host/core must not include kernels/. */
#ifndef MUSAE_CUDA
#include <stdio.h>

#include "kernels/cuda/cuda_device.h"

int musae_cuda_device_count(char *why, int n) {
    if (why) snprintf(why, (size_t)n, "musae was built without CUDA (configure with -DMUSAE_CUDA=ON)");
    return 0;
}

int musae_cuda_select(int device, char *why, int n) {
    if (why) snprintf(why, (size_t)n, "device %d: musae was built without CUDA", device);
    return -1;
}

int musae_cuda_bind_thread(char *why, int n) {
    if (why) snprintf(why, (size_t)n, "musae was built without CUDA");
    return -1;
}
#endif
