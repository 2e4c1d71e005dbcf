/* A stand-in for the NVIDIA driver (built as libcuda.so.1, tests/cli.cmake): present, so musae loads its CUDA
 * backend module, but without a single driver entry point, so the CUDA runtime inside the module reports
 * that the driver will not do. tests/test_cuda_backend.sh uses it to check the module loads and answers on a
 * machine without a GPU. */
int musae_test_cuda_driver_stub;
