#!/usr/bin/env python3
"""Runs a command (its output dropped, a failure fatal) and prints `wall_s cpu_s peak_rss_mib` of it: wall-clock
seconds, user + system CPU seconds of its process tree (the steadier figure on a shared host), and its peak RSS.
The bench/run_*.sh scripts read these three numbers; one copy for all of them.
    python3 bench/measure.py COMMAND [ARGS...]"""
import resource
import subprocess
import sys
import time

t = time.time()
subprocess.run(sys.argv[1:], check=True, capture_output=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{time.time() - t:.3f} {r.ru_utime + r.ru_stime:.3f} {r.ru_maxrss / 1024:.0f}")
