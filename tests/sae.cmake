# The activation store and the CPU SAE (issue sae-cpu). Budget: the cpu-labelled tests stay well under a
# minute together in Release on 2 cores; the planted-concept acceptance run is labelled slow.
musae_add_test(test_sae_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_ops.c LABELS cpu)
musae_add_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_store.c LABELS cpu)
musae_add_test(test_sae_train SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_train.c LABELS cpu)
musae_add_test(test_sae_planted SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_planted.c LABELS slow TIMEOUT 900)
# issue 14: the default recipe (no --tokens, --warmup, --lr) on a planted store with pairs, log-normal
# coefficients, anisotropic noise and a mean offset (about 15 s)
musae_add_test(test_sae_defaults SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_defaults.c LABELS slow TIMEOUT 600)
musae_add_test(test_sae_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_golden.c LABELS cpu)
# ctest -j runs these beside other tests on 2 cores: idle OpenMP threads must sleep, not spin
foreach(t test_sae_ops test_store test_sae_train test_sae_planted test_sae_defaults test_sae_golden)
  set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endforeach()
# musae train --device/--precision (issue cuda-sae): without a GPU (hidden), CPU and auto bitwise as no flag,
# refusals with reasons; under mpirun, the --dist combinations the GPU trainer does not take. The GPU half (GPU
# vs CPU quality, kill + resume on the GPU bitwise, states across devices) is labelled gpu and skips without one.
musae_add_test(test_sae_train_device SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_train_device.c LABELS cpu mpi)
set_property(TEST test_sae_train_device APPEND PROPERTY ENVIRONMENT
  "OMP_WAIT_POLICY=PASSIVE;OMP_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none")
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  target_compile_definitions(test_sae_train_device PRIVATE MUSAE_MPIEXEC="${MPIEXEC_EXECUTABLE}")
endif()
musae_add_test(test_sae_train_device_gpu SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sae_train_device_gpu.c LABELS gpu
               TIMEOUT 1200)
set_property(TEST test_sae_train_device_gpu APPEND PROPERTY ENVIRONMENT
  "OMP_WAIT_POLICY=PASSIVE;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
if(MUSAE_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  target_compile_definitions(test_sae_train_device_gpu PRIVATE MUSAE_MPIEXEC="${MPIEXEC_EXECUTABLE}")
endif()
