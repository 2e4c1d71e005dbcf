# The GPU SAE kernels (issue cuda-sae): op tests against the CPU reference, and the same test under
# compute-sanitizer (memcheck, racecheck; --small shapes). All skip (exit 77) without a GPU or a sanitizer.
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_sae_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_gpu.cu LABELS gpu TIMEOUT 900)
  foreach(tool memcheck racecheck)
    musae_add_test(test_sae_gpu_${tool} LABELS gpu TIMEOUT 1800
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/run_sanitizer.sh ${tool} $<TARGET_FILE:test_sae_gpu> --small)
  endforeach()
endif()
