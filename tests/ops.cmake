# The op-test driver: every op of kernels/ops.h against plain loops, through the CPU table (and the CUDA
# table when the build has one and a GPU is present).
musae_add_test(test_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops.c ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_cpu_bits.c
               ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_cpu_same_bits.c LABELS cpu)
# The bf16x3 AMX GEMM (kernels/cpu/gemm_amx.c): accuracy against double sums and the FMA kernels, its plain-loop
# definition, NaN/Inf, and per-element determinism; skips (saying why) on CPUs without AMX.
musae_add_test(test_ops_amx SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_amx.c LABELS cpu)
