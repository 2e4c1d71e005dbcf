/* OpenMP wait policy for the musae processes. libgomp's default makes an idle team thread spin for up to
 * a few milliseconds before sleeping. On a machine whose cores are shared with other busy processes, the
 * spinning thread takes the CPU from the thread everyone is waiting for: measured on 2 cores at load ~3,
 * a MusicGen decoding step (about 200 parallel regions) took 1.3 s instead of 85 ms. With
 * OMP_WAIT_POLICY=passive idle threads sleep at once; on an idle machine that costs a few microseconds per
 * region (a few percent of a decoding step).
 *
 * libgomp reads the policy once, when it loads, so musae_omp_env_init re-executes the program with
 * OMP_WAIT_POLICY=passive unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set (the user's choice
 * wins). MUSAE_OMP_ENV=1 marks the re-executed process, so it happens at most once; if exec fails the
 * program continues with libgomp's defaults. Call it first thing in main. */
#ifndef MUSAE_OMP_ENV_H
#define MUSAE_OMP_ENV_H

#ifdef __cplusplus
extern "C" {
#endif

void musae_omp_env_init(char **argv);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_OMP_ENV_H */
