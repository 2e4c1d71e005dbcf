# Activation capture, generation-time capture and the spliced SAE evaluation (issue capture), end to end on the
# tiny model: rows == musae forward, kill -9 and resume, identity / zero SAEs, bad input. A few seconds in Release.
musae_add_test(test_capture SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_capture.c LABELS cpu)
set_property(TEST test_capture APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
# Data safety of capture (issue 13): a full disk (tmpfs in a private mount namespace: needs root, as CI runs),
# a failed creation, the writer lock, the same files under another spelling. About 10 s in Release.
musae_add_test(test_capture_safety SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_capture_safety.c LABELS cpu)
set_property(TEST test_capture_safety APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
