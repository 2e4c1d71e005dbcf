# Activation capture, generation-time capture and the spliced SAE evaluation (issue capture), end to end on the
# tiny model: rows == musae forward, kill -9 and resume, identity / zero SAEs, bad input. A few seconds in Release.
musae_add_test(test_capture SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_capture.c LABELS cpu)
set_property(TEST test_capture APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
