musae_add_test(test_dist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dist.c LABELS cpu ARGS 1)
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  # Two ranks on CI's two cores (--oversubscribe so it also runs where fewer slots are declared).
  musae_add_test(test_dist_mpi2 LABELS mpi
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe $<TARGET_FILE:test_dist> 2)
  set_property(TEST test_dist_mpi2 APPEND PROPERTY ENVIRONMENT
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none")
endif()
