#include <stdio.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"

int musae_cuda_device_count(char *why, int n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        if (why) snprintf(why, (size_t)n, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky error so later queries start clean */
        return 0;
    }
    if (count == 0 && why) snprintf(why, (size_t)n, "the driver reports no device");
    return count;
}

static int g_selected; /* the device musae_cuda_select chose (0 until then) */

int musae_cuda_select(int device, char *why, int n) {
    g_selected = device;
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        if (why) snprintf(why, (size_t)n, "cudaSetDevice(%d): %s", device, cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    return 0;
}

int musae_cuda_bind_thread(char *why, int n) { return musae_cuda_select(g_selected, why, n); }
