# musae analyze / excerpt (issue 15): FEATURES.h5 recomputed with plain loops, refusals, kill and rerun.
musae_add_test(test_analyze SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analyze.c LABELS cpu)
set_property(TEST test_analyze APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
