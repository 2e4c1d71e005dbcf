/* MUSAE_HD marks small inline functions that the CPU code and the CUDA kernels share verbatim (dtype
 * conversion, Philox), so both sides compute bit-identical results from one definition. */
#ifndef MUSAE_HD_H
#define MUSAE_HD_H
#ifdef __CUDACC__
#define MUSAE_HD __host__ __device__ __forceinline__
#else
#define MUSAE_HD static inline
#endif
#endif /* MUSAE_HD_H */
