# GPU tests: built only in the CUDA configuration; each skips (exit 77, with the reason) without a device.
if(MUSAE_HAVE_CUDA)
  musae_add_test(test_philox_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_philox_gpu.cu LABELS gpu)
endif()
if(MUSAE_HAVE_CUDA AND MUSAE_HAVE_NCCL)
  # one rank: the plumbing (a one-rank all-reduce is the identity)
  musae_add_test(test_nccl SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nccl.cu LABELS gpu ARGS 1)
  if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
    # two ranks, one GPU each: sums and slices no single rank holds. tests/run_mpi_gpu.sh skips (77, with the
    # reason) where the launcher is missing (the lent GPU image may have no MPI); the ranks skip together with
    # fewer than 2 GPUs, and a 77 from mpirun counts as a skip only when every rank printed its reason.
    musae_add_test(test_nccl_mpi2 LABELS gpu mpi
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/run_mpi_gpu.sh ${MPIEXEC_EXECUTABLE} 2 $<TARGET_FILE:test_nccl> 2)
    set_property(TEST test_nccl_mpi2 APPEND PROPERTY ENVIRONMENT
      "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none")
  endif()
endif()
