#!/bin/sh
# run_mpi_gpu.sh MPIEXEC NP PROGRAM [ARGS...]: PROGRAM on NP ranks under MPIEXEC (tests/gpu.cmake: test_nccl_mpi2).
# Skips (77, with the reason) where MPIEXEC is not on this machine: the lent GPU machines' image may have no MPI.
# mpirun ends with the exit status of the first rank that ended non-zero and aborts the others, so its 77 is a
# skip only when all NP ranks printed "SKIPPED:"; fewer (one rank skipped, another failed or was aborted) fails.
mpiexec=$1 np=$2
shift 2
if [ ! -x "$mpiexec" ]; then
  echo "SKIPPED: no MPI launcher at $mpiexec on this machine (the $np-rank test needs mpirun)"
  exit 77
fi
log=$(mktemp) || exit 1
"$mpiexec" -n "$np" --oversubscribe "$@" >"$log" 2>&1
rc=$?
cat "$log"
skips=$(grep -c '^SKIPPED:' "$log")
rm -f "$log"
if [ "$rc" = 77 ] && [ "$skips" != "$np" ]; then
  echo "FAIL: mpirun ended 77 but only $skips of $np ranks printed SKIPPED: the ranks disagree"
  exit 1
fi
exit "$rc"
