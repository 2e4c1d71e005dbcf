# The CUDA op table against the CPU table (tests/test_ops_gpu.cu): every op, every dispatch branch, guard
# bytes, tolerances from stated rules. Label gpu; each test skips (77, with the reason) without a GPU.
#
# compute-sanitizer: test_ops_gpu --sanitize <tool> re-runs itself with --quick shapes under
#   compute-sanitizer --tool <tool> --error-exitcode 1
# (found via $COMPUTE_SANITIZER, the toolkit's bin/ at configure time, or /usr/local/cuda), and skips when no
# compute-sanitizer exists. By hand: compute-sanitizer --tool racecheck build/tests/test_ops_gpu --quick -o attention
# Benchmarks are not tests: build/tests/test_ops_gpu perf [-o op] prints cold-L2 timings (test_ops_gpu_perf.cu).
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_ops_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_gpu.cu ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_gpu_perf.cu
                 LABELS gpu TIMEOUT 900)
  target_compile_definitions(test_ops_gpu PRIVATE MUSAE_CUDA_BIN_DIR="${CUDAToolkit_BIN_DIR}")
  musae_add_test(test_ops_gpu_memcheck LABELS gpu TIMEOUT 1800
                 COMMAND $<TARGET_FILE:test_ops_gpu> --sanitize memcheck)
  musae_add_test(test_ops_gpu_racecheck LABELS gpu TIMEOUT 3600
                 COMMAND $<TARGET_FILE:test_ops_gpu> --sanitize racecheck)
endif()
