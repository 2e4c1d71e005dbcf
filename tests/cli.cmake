# The musae binary as a user meets it (issue 14): option parsing and refusals of every verb (test_cli), and in
# CUDA builds the on-demand CUDA backend (test_cuda_backend.sh: no CUDA library mapped by a CPU run; the module
# loads where a driver is, here a stub one).
if(MUSAE_HAVE_CUDA)
  add_library(cuda_driver_stub SHARED ${CMAKE_CURRENT_SOURCE_DIR}/cuda_stub/libcuda_stub.c)
  set_target_properties(cuda_driver_stub PROPERTIES OUTPUT_NAME cuda SUFFIX .so.1 PREFIX lib
                        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cuda_stub)
  add_dependencies(musae cuda_driver_stub)
  musae_add_test(test_cuda_backend COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_backend.sh
                 $<TARGET_FILE:musae> ${CMAKE_CURRENT_BINARY_DIR}/cuda_stub LABELS cpu)
endif()
musae_add_test(test_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.c LABELS cpu)
add_dependencies(test_cli musae)
