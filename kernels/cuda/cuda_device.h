/* GPU discovery for the CLI's --device flag and for tests that must skip without a GPU. Compiled in every
 * configuration: without CUDA it reports no device. */
#ifndef MUSAE_CUDA_DEVICE_H
#define MUSAE_CUDA_DEVICE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices (0 when built without CUDA, or when the driver has none); `why` (may be
 * NULL) receives the reason when 0. */
int musae_cuda_device_count(char *why, int n);
/* Makes `device` the current one for this process's CUDA work (before the first use: the ops table, streams and
 * handles are created on the current device). 0, or -1 with the reason in why. */
int musae_cuda_select(int device, char *why, int n);
/* CUDA's current device belongs to each host thread (a new thread starts on device 0): a thread that does CUDA
 * work beside the one that selected calls this first, to work on the selected device. 0, or -1 with why. */
int musae_cuda_bind_thread(char *why, int n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CUDA_DEVICE_H */
