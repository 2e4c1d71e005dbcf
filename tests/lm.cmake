# The MusicGen decoder LM (issue lm-cpu): HF goldens of the tiny model, hooks, generation, sampling, and the
# forward/generate verbs with their bad-input errors. Together well under 10 s in Release.
musae_add_test(test_lm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_lm.c LABELS cpu)
musae_add_test(test_lm_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_lm_cli.c LABELS cpu)
