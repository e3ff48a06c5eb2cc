#!/usr/bin/env python3
"""Opens COUNT keep-alive connections to an HTTP server on loopback, makes one
request on each (GET PATH, answer read), and holds them idle until it gets
SIGTERM or SIGINT. Prints `holding COUNT` once they are all open and served.
For bench/gateway_bench.sh: the gateway's throughput and memory with many
idle connections. Bounded: COUNT at most 20,000; connects within 60 s.

    hold_connections.py HOST PORT COUNT [PATH]
"""

import resource
import signal
import socket
import sys
import time


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) == 5 else "/healthz"
    if not 1 <= count <= 20000 or host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("hold_connections: COUNT is 1..20000 and HOST a loopback address")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    deadline = time.monotonic() + 60
    conns = []
    for _ in range(count):
        if time.monotonic() > deadline:
            sys.exit(f"hold_connections: only {len(conns)} connections within 60 s")
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        answer = s.recv(65536)
        if not answer.startswith(b"HTTP/1.1 200 "):
            sys.exit(f"hold_connections: connection {len(conns)} got {answer[:80]!r}")
        conns.append(s)
    print(f"holding {len(conns)}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
