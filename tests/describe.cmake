# musae describe (issue describe): known-answer descriptors of clips synthesized in the test (click tracks, scales
# and cadences in known keys, sines at known loudness, noise), bad input, the DESCRIPTORS.h5 contract (h5dump) and
# --acts following a store's clip order. About 10 s in Release on one core.
musae_add_test(test_describe SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_describe.c LABELS cpu)
set_property(TEST test_describe APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
