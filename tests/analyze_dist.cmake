# musae analyze under mpirun (issues 15 and 21): -np 2 and -np 3 write the one-process FEATURES files bit for
# bit, a killed rank leaves no file and the same command then succeeds, ranks given different arguments are
# refused (tests/test_analyze_dist.c).
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  musae_add_test(test_analyze_dist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analyze_dist.c LABELS mpi TIMEOUT 600)
  target_compile_definitions(test_analyze_dist PRIVATE MUSAE_MPIEXEC="${MPIEXEC_EXECUTABLE}")
  set_property(TEST test_analyze_dist APPEND PROPERTY ENVIRONMENT
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none;OMP_NUM_THREADS=1;OMP_WAIT_POLICY=PASSIVE;ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
endif()
# The exact sum behind /features/mean_act: order- and split-independent, correctly rounded (tests/test_exact_sum.c).
musae_add_test(test_exact_sum SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_exact_sum.c LABELS cpu)
# One GPU per local rank under mpirun/srun: the mapping from the launcher's environment (tests/test_dist_gpu.c).
musae_add_test(test_dist_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_dist_gpu.c LABELS cpu)
