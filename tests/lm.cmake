# The MusicGen decoder LM (issue lm-cpu): HF goldens of the tiny model, hooks, generation, sampling, and the
# forward/generate verbs with their bad-input errors. Together well under 10 s in Release.
musae_add_test(test_lm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_lm.c LABELS cpu)
musae_add_test(test_lm_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_lm_cli.c LABELS cpu)
# The whole model (LM fp32/bf16, greedy generation, T5, EnCodec) on the CUDA table against the CPU table
# (skips without a GPU; tools/cuda_emu/run_model.sh runs it on the emulated kernels). --table cpu runs the
# same checks with the CPU table as the device: bf16 mode through linear_bf16w within the stated rule.
musae_add_test(test_model_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_gpu.c LABELS gpu)
add_test(NAME test_lm_bf16 COMMAND test_model_gpu --table cpu)
set_tests_properties(test_lm_bf16 PROPERTIES LABELS cpu TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "MUSAE_FIXTURES=${CMAKE_SOURCE_DIR}/tests/fixtures;MUSAE_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1;LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0")
