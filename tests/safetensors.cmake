# safetensors and config.json readers against good and bad input (corpus: tools/corpus/make_malformed.py).
musae_add_test(test_safetensors SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_safetensors.c LABELS cpu)
target_compile_definitions(test_safetensors PRIVATE MUSAE_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/corpus")
add_dependencies(test_safetensors musae)
musae_add_test(test_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c LABELS cpu)
target_compile_definitions(test_config PRIVATE MUSAE_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/corpus")
