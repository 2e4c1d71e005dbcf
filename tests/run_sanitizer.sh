#!/bin/sh
# run_sanitizer.sh TOOL PROGRAM [ARGS...]: PROGRAM under compute-sanitizer --tool TOOL; any finding fails.
# Skips (77) when compute-sanitizer is absent; the program's own skip (77, no GPU) passes through.
tool=$1
shift
cs=$(command -v compute-sanitizer || true)
# not always on PATH: the toolkit's bin/ (any installed version), or its own folder in the toolkit
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda*/bin/compute-sanitizer \
         /usr/local/cuda*/compute-sanitizer/compute-sanitizer; do
  [ -z "$cs" ] && [ -x "$c" ] && cs=$c
done
if [ -z "$cs" ]; then
  echo "SKIPPED: compute-sanitizer not found (PATH, /usr/local/cuda*/bin, /usr/local/cuda*/compute-sanitizer)"
  exit 77
fi
extra=""
[ "$tool" = memcheck ] && extra="--leak-check full"
exec "$cs" --tool "$tool" $extra --error-exitcode 86 "$@"
