# The activation store and the CPU SAE (issue sae-cpu). Budget: the cpu-labelled tests stay well under a
# minute together in Release on 2 cores; the planted-concept acceptance run is labelled slow.
musae_add_test(test_sae_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_ops.c LABELS cpu)
musae_add_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_store.c LABELS cpu)
musae_add_test(test_sae_train SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_train.c LABELS cpu)
musae_add_test(test_sae_planted SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_planted.c LABELS slow TIMEOUT 900)
musae_add_test(test_sae_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_golden.c LABELS cpu)
# ctest -j runs these beside other tests on 2 cores: idle OpenMP threads must sleep, not spin
foreach(t test_sae_ops test_store test_sae_train test_sae_planted test_sae_golden)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endforeach()
