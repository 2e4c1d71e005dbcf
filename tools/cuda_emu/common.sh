# shellcheck shell=bash
# Sourced by tools/cuda_emu/run*.sh: what every emulated run shares.
#   emu_init BUILD_DIR OUT_NAME LINK_TARGET  sets root, here, bdir (a configured CPU-only Ninja build whose
#       musae_lib is brought up to date), out (BUILD_DIR/OUT_NAME, with gen/), flags (g++ for emulated sources)
#       and libs (LINK_TARGET's link line from build.ninja: the CPU references and system libraries)
#   emu_compile SRC.cu [g++ flags]  transforms SRC.cu to host C++ and compiles it, unless its object is newer
#       than SRC, every header a source may include, the emulation and the calling script; prints the object
#   emu_op_kernels  the kernels/cuda sources of the op and step tables (not the SAE kernels, the device query
#       or the Philox fill, which the scripts that need them add)
#   emu_link OUT OBJECTS...  links an emulated test program with emu_rt.o and libs
#   emu_env  the run-time environment of an emulated test (no leak checks here: the ordinary ASan build
#       runs these tests with them)
emu_init() {
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  here="$root/tools/cuda_emu"
  bdir=$(cd "$1" && pwd)
  out="$bdir/$2"
  mkdir -p "$out/gen"
  # (a tree mid-edit may not configure: then the library already built is used, with a note)
  if ! cmake --build "$bdir" -j2 --target musae_lib >"$out/lib_build.log" 2>&1; then
    [ -f "$bdir/libmusae_lib.a" ] || { cat "$out/lib_build.log"; exit 1; }
    echo "note: musae_lib did not rebuild (see $out/lib_build.log); using the existing $bdir/libmusae_lib.a"
  fi
  libs=$(grep -A6 "build tests/$3:" "$bdir/build.ninja" | grep LINK_LIBRARIES |
         sed "s/.*LINK_LIBRARIES = //; s#libmusae_lib.a#$bdir/libmusae_lib.a#")
  [ -n "$libs" ] || { echo "no $3 link line in $bdir/build.ninja (configure a CPU-only Ninja build first)"; exit 1; }
  flags=(-std=c++20 -O1 -g "-fsanitize=address,undefined" -fno-sanitize-recover=undefined -fno-omit-frame-pointer
         -Wno-unknown-pragmas -I"$here/include" -I"$root" -I"$root/tests" -D_GNU_SOURCE
         -DMUSAE_FIXTURES="\"$root/tests/fixtures\"" -DMUSAE_BIN="\"$bdir/musae\"")
  emu_newest=$(ls -t "$0" "$here/common.sh" "$here/include/emu.h" "$here/include/cub/cub.cuh" "$here/transform.py" \
               "$root"/kernels/*.h "$root"/kernels/cuda/*.cuh "$root"/kernels/cuda/*.h "$root"/host/core/*.h \
               "$root"/model/*.h "$root"/sae/*.h "$root"/tests/*.h | head -1)
  g++ "${flags[@]}" -c "$here/emu_rt.cpp" -o "$out/emu_rt.o"
}

emu_compile() {
  local f=$1 n o
  shift
  n=$(basename "$f" .cu)
  o="$out/gen/$n.o"
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$emu_newest" -nt "$o" ]; then
    python3 "$here/transform.py" "$f" "$out/gen/$n.cpp"
    g++ "${flags[@]}" "$@" -c "$out/gen/$n.cpp" -o "$o" >&2
  fi
  echo "$o"
}

emu_op_kernels() {
  local f
  for f in "$root"/kernels/cuda/*.cu; do
    case $(basename "$f") in sae_*|cuda_device.cu|philox_fill.cu) continue ;; esac
    echo "$f"
  done
}

emu_link() {
  local o=$1
  shift
  # shellcheck disable=SC2086
  g++ -fsanitize=address,undefined -o "$o" "$@" "$out/emu_rt.o" $libs -pthread
}

emu_env() {
  export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  export OPENBLAS_NUM_THREADS=1
}
