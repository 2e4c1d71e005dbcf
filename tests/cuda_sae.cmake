# The GPU SAE kernels (issue cuda-sae): op tests against the CPU reference, and the same test under
# compute-sanitizer (memcheck, racecheck; --small shapes). All skip (exit 77) without a GPU or a sanitizer.
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_sae_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_gpu.cu ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_gpu_step.cu
                 LABELS gpu TIMEOUT 900)
  foreach(tool memcheck racecheck)
    musae_add_test(test_sae_gpu_${tool} LABELS gpu TIMEOUT 1800
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/run_sanitizer.sh ${tool} $<TARGET_FILE:test_sae_gpu> --small)
  endforeach()
endif()
# Python models of the kernels' selection and indexing logic against brute force: run everywhere (no GPU).
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  musae_add_test(test_sae_gpu_sim LABELS cpu COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/sim/sae_gpu_sim.py)
endif()
# The GPU trainer and the streamed feed: against the CPU trainer, planted concepts, store vs in-memory batches,
# exact load/store (skips without a GPU). The feed's reader thread alone runs everywhere.
musae_add_test(test_sae_feed SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_feed.c LABELS cpu)
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_sae_gpu_train SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_gpu_train.cu LABELS gpu TIMEOUT 1200)
endif()
