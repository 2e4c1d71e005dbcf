#!/bin/sh
# run_mpi_gpu.sh MPIEXEC NP PROGRAM [ARGS...]: PROGRAM on NP ranks under MPIEXEC (tests/gpu.cmake: test_nccl_mpi2).
# Skips (77, with the reason) where MPIEXEC is not on this machine: the lent GPU machines' image may have no MPI.
# mpirun ends with the exit status of the first rank that ended non-zero and aborts the others (whose own SKIPPED
# line may then never reach the log: the ranks agree on a skip through an all-reduce before any of them skips,
# tests/test_nccl.cu), so its 77 is a skip when a rank printed "SKIPPED:" and none printed "FAIL".
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
fails=$(grep -c '^FAIL' "$log")
rm -f "$log"
if [ "$rc" = 77 ] && { [ "$skips" = 0 ] || [ "$fails" != 0 ]; }; then
  echo "FAIL: mpirun ended 77 with $skips SKIPPED and $fails FAIL line(s): not a skip every rank agreed on"
  exit 1
fi
exit "$rc"
