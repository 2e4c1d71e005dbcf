# musae_add_test(<name> SOURCES <files...> [LABELS cpu|gpu|mpi|slow|fuzz ...] [ARGS ...] [TIMEOUT s]
#                [COMMAND <cmd...>])
# The one way to register a test. A test executable exits 0 on success, non-zero on failure, and 77 when it
# must skip (it prints why first); CTest reports 77 as "skipped". With COMMAND the test runs that command
# instead of the executable itself (e.g. the musae binary, or mpirun). MUSAE_FIXTURES and MUSAE_BIN are
# compiled in and exported to the environment so tests find the committed fixtures and the binary.
function(musae_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LABELS;ARGS;COMMAND" ${ARGN})
  if(T_SOURCES)
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE musae_lib)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
    target_compile_definitions(${name} PRIVATE
      MUSAE_FIXTURES="${CMAKE_SOURCE_DIR}/tests/fixtures" MUSAE_BIN="$<TARGET_FILE:musae>")
    if(MUSAE_HAVE_CUDA)
      set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CUDA)
    endif()
  endif()
  if(T_COMMAND)
    add_test(NAME ${name} COMMAND ${T_COMMAND} ${T_ARGS})
  else()
    add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  endif()
  if(NOT T_LABELS)
    set(T_LABELS cpu)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "MUSAE_FIXTURES=${CMAKE_SOURCE_DIR}/tests/fixtures;MUSAE_BIN=$<TARGET_FILE:musae>;MUSAE_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1;LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0")
endfunction()
