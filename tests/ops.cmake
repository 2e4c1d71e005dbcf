# The op-test driver: every op of kernels/ops.h against plain loops, through the CPU table (and the CUDA
# table when the build has one and a GPU is present).
musae_add_test(test_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops.c ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_cpu_bits.c
               ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_cpu_same_bits.c LABELS cpu)
