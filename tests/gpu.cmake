# GPU tests: built only in the CUDA configuration; each skips (exit 77, with the reason) without a device.
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_philox_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_philox_gpu.cu LABELS gpu)
endif()
if(MUSAE_HAVE_CUDA AND MUSAE_HAVE_NCCL)
  musae_add_test(test_nccl SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nccl.cu LABELS gpu)
endif()
