#!/usr/bin/env bash
# Starts a service in the background (as a shell starts background jobs:
# SIGINT ignored), waits for its readiness log line, sends it a signal and
# checks that it logs event=stopping and exits 0. "@PORT@" in an argument
# becomes a free loopback port below the kernel's ephemeral range.
#
#   stops_on_signal.sh TERM|INT READY_REGEX COMMAND [ARGS...]
set -euo pipefail
signal=$1
ready=$2
shift 2
port=$(python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randint(20000, low - 1)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
PY
)
args=()
for arg in "$@"; do args+=("${arg//@PORT@/$port}"); done
set -- "${args[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$@" 2>"$log" &
pid=$!
if ! timeout 30 grep -q -m1 -E "$ready" <(tail -n +1 -f "$log" --pid "$pid"); then
  cat "$log" >&2
  echo "no line matching '$ready'" >&2
  kill -KILL "$pid" 2>/dev/null || true
  exit 1
fi
kill -s "$signal" "$pid"
status=0
wait "$pid" || status=$?
cat "$log" >&2
if [ "$status" -ne 0 ]; then
  echo "exit status $status after SIG$signal, expected 0" >&2
  exit 1
fi
grep -q "event=stopping signal=$signal" "$log" || {
  echo "no event=stopping signal=$signal line" >&2
  exit 1
}
