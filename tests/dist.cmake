musae_add_test(test_dist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dist.c LABELS cpu ARGS 1)
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  # Two ranks on CI's two cores (--oversubscribe so it also runs where fewer slots are declared).
  musae_add_test(test_dist_mpi2 LABELS mpi
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe $<TARGET_FILE:test_dist> 2)
  # OpenMPI's plugins are dlclose'd at MPI_Finalize, so LeakSanitizer cannot attribute (or suppress) their
  # allocations: leak checking is off for launched runs only; the same code runs leak-checked single-process.
  set_property(TEST test_dist_mpi2 APPEND PROPERTY ENVIRONMENT
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none;ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
endif()
