# Capture under mpirun (issue 21): 2- and 3-rank captures into a sharded store against one process, a rank and
# the launcher killed and the store resumed with another number of ranks, a corrupt shard, training on the
# joined store (tests/test_capture_dist.c).
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  musae_add_test(test_capture_dist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_capture_dist.c LABELS mpi TIMEOUT 600)
  target_compile_definitions(test_capture_dist PRIVATE MUSAE_MPIEXEC="${MPIEXEC_EXECUTABLE}")
  set_property(TEST test_capture_dist APPEND PROPERTY ENVIRONMENT
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none;OMP_NUM_THREADS=1;OMP_WAIT_POLICY=PASSIVE;ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
endif()
