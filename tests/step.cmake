# The device-resident decoding step (issue cuda-lm): the sampling op against model/sampling.c, and mg_generate's
# device loop against its host loop on the tiny model (tests/test_step.c, CPU table). The CUDA step table against
# the CPU one and graph generation (tests/test_step_gpu.cu) need a GPU: label gpu, skip (77) without one.
musae_add_test(test_step SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_step.c LABELS cpu)
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_step_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_step_gpu.cu LABELS gpu)
endif()
