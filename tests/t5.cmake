# Text conditioning: T5 tokenizer (vs HF on 79 prompts), T5 encoder and enc_to_dec_proj (vs HF goldens),
# bad input. Goldens: tools/reference/golden_t5.py, tools/reference/t5_extra.py.
musae_add_test(test_t5_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_t5_tokenizer.c LABELS cpu)
musae_add_test(test_t5 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_t5.c LABELS cpu)
musae_add_test(test_t5_generate SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_t5_generate.c LABELS cpu)
add_dependencies(test_t5_generate musae)
