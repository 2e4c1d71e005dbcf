# Distributed SAE training (issue cuda-sae, the CPU MPI path). test_sae_dist alone checks the global top-k
# selections against the one-process ops; under mpirun -np 2 it runs the distributed step (both modes) against
# a one-process trainer. test_sae_dist_cli drives `mpirun -np 2 musae train --dist data|latent`.
musae_add_test(test_sae_dist SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_dist.c LABELS cpu ARGS 1)
set_property(TEST test_sae_dist APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  # as test_dist_mpi2 (tests/dist.cmake): two ranks with --oversubscribe on CI's two cores, one OpenMP thread
  # each; OpenMPI's dlclose'd plugins defeat LeakSanitizer in launched runs only
  set(_sae_dist_env "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none;OMP_NUM_THREADS=1;OMP_WAIT_POLICY=PASSIVE;ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
  musae_add_test(test_sae_dist_mpi2 LABELS mpi
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe $<TARGET_FILE:test_sae_dist> 2)
  set_property(TEST test_sae_dist_mpi2 APPEND PROPERTY ENVIRONMENT "${_sae_dist_env}")
  musae_add_test(test_sae_dist_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_dist_cli.c LABELS mpi TIMEOUT 600)
  target_compile_definitions(test_sae_dist_cli PRIVATE MUSAE_MPIEXEC="${MPIEXEC_EXECUTABLE}")
  set_property(TEST test_sae_dist_cli APPEND PROPERTY ENVIRONMENT "${_sae_dist_env}")
endif()
