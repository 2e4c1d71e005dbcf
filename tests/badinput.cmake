# Bad input (issue 13): refusals of malformed files, flags and folders, each a one-line error with exit 1, and the
# layer rule of docs/ARCHITECTURE.md checked over the sources.
musae_add_test(test_layers COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_layers.sh ${CMAKE_SOURCE_DIR} LABELS cpu)
musae_add_test(test_badinput SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_badinput.c LABELS cpu)
