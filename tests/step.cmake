# The device-resident decoding step (issue cuda-lm): the sampling op against model/sampling.c, and mg_generate's
# device loop against its host loop on the tiny model (tests/test_step.c, CPU table). The CUDA step table against
# the CPU one and graph generation (tests/test_step_gpu.cu) need a GPU: label gpu, skip (77) without one.
musae_add_test(test_step SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_step.c LABELS cpu)
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_step_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_step_gpu.cu LABELS gpu)
endif()
# Steering (issue 20): generate --steer against HF goldens with a forward hook, α = 0 against plain generate,
# the refusals (tests/test_steer_cli.c, through the binary); per-item ADD vectors in one batch against each item
# run alone, on both loops (tests/test_steer.c).
musae_add_test(test_steer_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_steer_cli.c LABELS cpu)
add_dependencies(test_steer_cli musae)
musae_add_test(test_steer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_steer.c LABELS cpu)
# The steering experiment (musae steer) and generate --features: statistics recomputed from steer.jsonl, controls'
# norms, paired seeds, α = 0 = plain generate, a stopped and continued run, refusals (tests/test_steer_run.c).
musae_add_test(test_steer_run SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_steer_run.c LABELS cpu)
add_dependencies(test_steer_run musae)
musae_add_test(test_steer_stats SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_steer_stats.c LABELS cpu)
