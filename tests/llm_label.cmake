# musae label --labeler llm / musae score (issue 19) against the scripted chat-completions server of
# tests/llm_server.py on 127.0.0.1 (Python stdlib only): labels, failures, retries, cache, kill and resume,
# detection metrics recomputed from the scripted answers.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  musae_add_test(test_llm_label LABELS cpu TIMEOUT 600
                 COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_llm_label.py)
  set_property(TEST test_llm_label APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endif()
# The parsers, base64, WAV, cache and LABELS.jsonl pieces without a server.
musae_add_test(test_llm_parse SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_llm_parse.c LABELS cpu)
