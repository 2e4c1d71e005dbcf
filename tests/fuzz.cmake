# libFuzzer targets for the parsers that read untrusted files (safetensors headers, config.json, torch.save zips).
# Configure with clang and -DMUSAE_FUZZ=ON (scripts/fuzz.sh does). The parsers and what they stand on
# (host/core, host/io/safetensors.c, config.c, torch_zip.c, path.c) are compiled again into musae_fuzz_lib with
# -fsanitize=fuzzer-no-link,address,undefined (coverage for the fuzzer, ASan+UBSan for the bugs), so the
# fuzz build neither instruments nor depends on the rest of the tree; the fuzz executables add the
# libFuzzer main. Each target is a ctest labelled `fuzz` that runs for MUSAE_FUZZ_SECONDS on a copy of its
# seed corpus kept in the build folder (the copy grows across runs; the committed seeds are never written).
if(MUSAE_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "musae: MUSAE_FUZZ=ON needs clang (cmake -DCMAKE_C_COMPILER=clang ...); got ${CMAKE_C_COMPILER_ID}")
  endif()
  set(MUSAE_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs under ctest -L fuzz")
  message(STATUS "musae: fuzzing ✓ (libFuzzer, ${MUSAE_FUZZ_SECONDS} s per target)")
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
           -Wno-unknown-warning-option)
  file(GLOB _fuzz_lib_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/host/core/*.c)
  add_library(musae_fuzz_lib STATIC ${_fuzz_lib_sources}
              ${CMAKE_SOURCE_DIR}/host/io/safetensors.c ${CMAKE_SOURCE_DIR}/host/io/config.c
              ${CMAKE_SOURCE_DIR}/host/io/torch_zip.c ${CMAKE_SOURCE_DIR}/host/io/path.c)
  target_include_directories(musae_fuzz_lib PUBLIC ${CMAKE_SOURCE_DIR})
  target_compile_definitions(musae_fuzz_lib PUBLIC MUSAE_VERSION="${PROJECT_VERSION}" _GNU_SOURCE)
  target_compile_options(musae_fuzz_lib PRIVATE -fsanitize=fuzzer-no-link ${_san})
  target_link_libraries(musae_fuzz_lib PUBLIC ${MUSAE_DEP_LIBS} m)
  target_link_options(musae_fuzz_lib INTERFACE -fsanitize=address,undefined)

  function(musae_fuzz_target name max_len)
    cmake_parse_arguments(F "" "DICT" "SEEDS" ${ARGN})
    add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${name}.c)
    target_link_libraries(${name} PRIVATE musae_fuzz_lib)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${_san})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    set(dir ${CMAKE_BINARY_DIR}/fuzz/${name})
    file(MAKE_DIRECTORY ${dir}/corpus ${dir}/artifacts)
    set(copy "")
    foreach(s ${F_SEEDS})
      string(APPEND copy "cp -f ${s}/* ${dir}/corpus/ && ")
    endforeach()
    musae_add_test(${name} LABELS fuzz TIMEOUT 3600 COMMAND sh -c
      "${copy}exec $<TARGET_FILE:${name}> ${dir}/corpus -dict=${F_DICT} -max_len=${max_len} -max_total_time=${MUSAE_FUZZ_SECONDS} -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${dir}/artifacts/")
  endfunction()

  # headers of real checkpoints run to tens of KB, but every branch of the validator is reachable in 4 KB
  musae_fuzz_target(fuzz_safetensors 4096 DICT ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/safetensors.dict
    SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/safetensors/good ${CMAKE_CURRENT_SOURCE_DIR}/corpus/safetensors/bad)
  musae_fuzz_target(fuzz_config 8192 DICT ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/config.dict
    SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/config)
  # torch.save zips (pytorch_model.bin): the zip directory and the restricted pickle interpreter
  musae_fuzz_target(fuzz_torch_zip 8192 DICT ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/torch_zip.dict
    SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/torch_zip)
endif()
