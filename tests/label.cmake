# musae label (issue describe): the statistics against scipy constants and hand-derived cases, and the dsp labeler
# end to end (click-track clips, a store with a direction planted in the fast clips, an SAE holding it, analyze,
# describe --acts, label: the planted feature is "fast tempo", a control is not), refusals.
musae_add_test(test_stats SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_stats.c LABELS cpu)
musae_add_test(test_label SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_label.c LABELS cpu TIMEOUT 300)
set_property(TEST test_label APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
