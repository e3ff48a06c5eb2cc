#!/usr/bin/env python3
"""Runs a command with its stdout on a pipe, reads (and drops) everything it
prints, and prints two numbers of nanoseconds: from the start to its first
output byte, and from the start to its exit.

    python3 bench/first_match.py CMD [ARG...]   ->   FIRST_NS TOTAL_NS

Used by bench/compare.sh for the time to the first printed match of a
streaming search. A command that prints nothing reports its total twice."""

import subprocess
import sys
import time

if len(sys.argv) < 2:
    sys.exit("usage: first_match.py CMD [ARG...]")
start = time.monotonic_ns()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        bufsize=0)
first = None
while True:
    chunk = proc.stdout.read(1 << 16)
    if not chunk:
        break
    if first is None:
        first = time.monotonic_ns()
proc.wait()
end = time.monotonic_ns()
print((first if first is not None else end) - start, end - start)
