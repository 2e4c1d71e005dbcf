# shellcheck shell=bash
# Sourced on the GPU machine: unpacks a devpack made by bench/pack_device.sh and sets the environment its
# binaries need there (the image has CUDA 13 and PyTorch but none of musae's build dependencies).
#   . bench/devpack_env.sh DEVPACK.tgz
# Afterwards:
#   MUSAE_DP_BUILD   the build folder as it was here, restored at the same absolute path, so its ctest files
#                    (absolute paths into the source and build trees) run as they are: ctest --test-dir "$MUSAE_DP_BUILD"
#   MUSAE_DP_COMMIT  the commit the pack was built from (the device's copy of the tree has no .git)
#   LD_LIBRARY_PATH  the pack's libraries that the machine lacks, the nvidia-* wheels PyTorch brought (cuBLAS,
#                    NCCL: libnccl is 200 MB, so it is never packed), then the CUDA toolkit's
# Must be sourced from the repository root (the scripts that source it cd there first).
_dp_tgz=$1
[ -f "$_dp_tgz" ] || { echo "devpack_env: no devpack at '$_dp_tgz' (made by bench/pack_device.sh; name it in carry)"; return 1; }
rm -rf /tmp/musae-dp && mkdir -p /tmp/musae-dp && tar xzf "$_dp_tgz" -C /tmp/musae-dp || return 1
. /tmp/musae-dp/devpack/env
# The pack's absolute paths start with the source root it was built in (MUSAE_SRC); make that path lead
# here. Both machines run the repository from a copy, so usually the path is the same already.
if [ "$(cd "$MUSAE_SRC" 2>/dev/null && pwd -P)" != "$(pwd -P)" ]; then
  if [ -e "$MUSAE_SRC" ] || [ -L "$MUSAE_SRC" ]; then
    echo "devpack_env: $MUSAE_SRC exists here and is not this repository ($(pwd -P)); ctest's absolute paths cannot resolve"
    return 1
  fi
  mkdir -p "$(dirname "$MUSAE_SRC")" && ln -s "$(pwd -P)" "$MUSAE_SRC" || return 1
  echo "devpack_env: $MUSAE_SRC -> $(pwd -P)"
fi
mkdir -p "$MUSAE_BUILD_REL" && cp -a /tmp/musae-dp/devpack/build/. "$MUSAE_BUILD_REL/" || return 1
export MUSAE_DP_BUILD="$MUSAE_SRC/$MUSAE_BUILD_REL" MUSAE_DP_COMMIT="$MUSAE_COMMIT"
# Only the packed libraries the machine lacks go on the path: a packed libcrypto or libz ahead of the
# machine's own would also be loaded by python3 (torch, the peers) and could clash with its other libraries.
_dp_need=/tmp/musae-dp/lib-needed
mkdir -p "$_dp_need"
_dp_have=$(ldconfig -p 2>/dev/null | awk '{print $1}')
for _l in /tmp/musae-dp/devpack/lib/*; do
  echo "$_dp_have" | grep -qxF "$(basename "$_l")" || ln -sf "$_l" "$_dp_need/"
done
# PyTorch's nvidia-* wheels before the toolkit: torch must get the cuBLAS it was built with; musae's binaries
# (built with CUDA 13.0) run on any 13.x
_dp_libs=$_dp_need
for _d in $(python3 -c 'import nvidia, os; [print(os.path.join(p, s, "lib")) for p in nvidia.__path__ for s in sorted(os.listdir(p))]' 2>/dev/null) \
          /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$_d" ] && _dp_libs=$_dp_libs:$_d
done
export LD_LIBRARY_PATH=$_dp_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "devpack_env: commit $MUSAE_DP_COMMIT, build $MUSAE_DP_BUILD; packed libraries used: $(ls "$_dp_need" | wc -l) of $(ls /tmp/musae-dp/devpack/lib | wc -l)"
# a library the pack left to the machine and the machine lacks fails every program at start: say which
for _b in "$MUSAE_DP_BUILD/musae" /tmp/musae-dp/devpack/bin/*; do
  [ -x "$_b" ] && ldd "$_b" 2>&1 | awk -v b="$(basename "$_b")" '/not found/ {print "devpack_env: " b ": " $0}'
done | sort -u
unset _dp_tgz _dp_libs _dp_need _dp_have _d _l _b
