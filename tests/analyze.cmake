# musae analyze / excerpt (issue 15): FEATURES.h5 recomputed with plain loops, refusals, kill and rerun.
musae_add_test(test_analyze SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analyze.c LABELS cpu)
set_property(TEST test_analyze APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
# The same recomputation with MUSAE_ISA=baseline: on AMX CPUs test_analyze takes the AMX encoder and neighbour
# paths, so this one runs the sgemm encoder and the half-matrix neighbours there (elsewhere it repeats test_analyze).
musae_add_test(test_analyze_sgemm COMMAND test_analyze LABELS cpu)
set_property(TEST test_analyze_sgemm APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;MUSAE_ISA=baseline")
# The same recomputation through the int16 screen (eval/analyze_screen_i16.c) at both of its levels: AVX-512
# (VNNI where the CPU has it) with AMX turned off, and its plain AVX2 kernel (neither VNNI) with OpenBLAS's Haswell
# kernels, as an AVX2-only CPU runs. (test_analyze itself compares the AVX-VNNI kernel's file with the others.)
musae_add_test(test_analyze_int16 COMMAND test_analyze LABELS cpu)
set_property(TEST test_analyze_int16 APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;MUSAE_ANALYZE_SCREEN=int16")
musae_add_test(test_analyze_int16_avx2 COMMAND test_analyze LABELS cpu)
set_property(TEST test_analyze_int16_avx2 APPEND PROPERTY ENVIRONMENT
             "OMP_WAIT_POLICY=PASSIVE;MUSAE_ISA=avx2;MUSAE_ANALYZE_SCREEN=int16-avx2;OPENBLAS_CORETYPE=Haswell")
# The same recomputation with the rows encoded on the GPU (musae analyze --device cuda); skips (77, with the
# reason) without a usable GPU, as in every CPU-only build.
musae_add_test(test_analyze_gpu COMMAND test_analyze ARGS --device cuda LABELS gpu)
set_property(TEST test_analyze_gpu APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
# The screened encoders (AMX bf16, int16 VNNI and AVX2) against double loops (random, padded, adversarial and
# saturated shapes) and against each other (bit for bit); skips only without AMX and AVX2.
musae_add_test(test_analyze_encode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analyze_encode.c LABELS cpu)
# The decoder neighbours on every screen and the sgemm against double cosines (random, clusters below the int16
# screen's bound, duplicates, a zero row, M < K) and the screens against each other (bit for bit).
musae_add_test(test_analyze_neighbours SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analyze_neighbours.c LABELS cpu)
# The planted-clip-rate acceptance run (synth_acts --clip-concepts -> train -> analyze): about 25 s on 2 cores.
musae_add_test(test_analyze_planted SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analyze_planted.c LABELS cpu TIMEOUT 600)
set_property(TEST test_analyze_planted APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
# musae excerpt: OGG excerpts and traces against the source and plain loops; moved/changed sources skipped.
musae_add_test(test_excerpt SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_excerpt.c LABELS cpu)
set_property(TEST test_excerpt APPEND PROPERTY ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
