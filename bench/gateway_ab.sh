#!/usr/bin/env bash
# The gateway's gRPC path of two builds, A and B, in the same run: each BIN
# directory holds mserv1 and gateway (e.g. examples of an older commit built
# against its own install, and build/examples). Both pairs run side by side
# on loopback, each with a ten-file directory; wrk loads one gateway at a
# time, A then B, for ROUNDS rounds, so that a change in the machine's speed
# falls on both alike. Prints each round and the ratio of the means (B/A).
# Bounded: ROUNDS at most 20, DURATION seconds a load at most 15.
#
#   bench/gateway_ab.sh A_BIN B_BIN
#   ROUNDS=6 DURATION=10 CONNECTIONS=32 bench/gateway_ab.sh /tmp/old/bin build/examples
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 A_BIN B_BIN" >&2; exit 2; }
rounds=${ROUNDS:-6}
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
((rounds >= 1 && rounds <= 20)) || { echo "gateway_ab: ROUNDS must be 1..20" >&2; exit 2; }
((duration >= 1 && duration <= 15)) || { echo "gateway_ab: DURATION must be 1..15" >&2; exit 2; }
((connections >= 2 && connections <= 32)) || {
  echo "gateway_ab: CONNECTIONS must be 2..32" >&2
  exit 2
}
command -v wrk >/dev/null || { echo "gateway_ab: wrk is missing (apt-get install wrk)" >&2; exit 1; }
for bin in "$1" "$2"; do
  for program in mserv1 gateway; do
    [ -x "$bin/$program" ] || { echo "gateway_ab: no $bin/$program" >&2; exit 1; }
  done
done

work=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-gateway-ab.XXXXXX")
pids=()
cleanup() {
  if ((${#pids[@]})); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The directory gateway_bench.sh lists: 10 files of a few sizes.
mkdir -p "$work/tree/small"
for i in 01 02 03 04 05 06 07 08 09 10; do
  head -c $((10#$i * 37)) /dev/zero >"$work/tree/small/file$i.txt"
done

declare -A url
start_pair() {
  local label=$1 bin=$2 port
  # Three free ports below the ephemeral range; this uses two of them.
  port=$(bash "$repo/tests/rabbitmq/rabbitmq_node.sh" free-port)
  "$bin/mserv1" --root "$work/tree" --grpc_listen "127.0.0.1:$port" --amqp_url= --threads 2 \
    >"$work/mserv1-$label.log" 2>&1 &
  pids+=($!)
  "$bin/gateway" --listen "127.0.0.1:$((port + 1))" --lister_grpc "127.0.0.1:$port" --amqp_url= \
    --request_timeout 5s --max_connections 1000 >"$work/gateway-$label.log" 2>&1 &
  pids+=($!)
  url[$label]="http://127.0.0.1:$((port + 1))/api/v1/files?path=small"
  local deadline=$((SECONDS + 30))
  until curl -sf "${url[$label]}" | grep -q '"served_by": *"grpc"'; do
    ((SECONDS < deadline)) || {
      echo "gateway_ab: $label does not answer on the gRPC path" >&2
      cat "$work/mserv1-$label.log" "$work/gateway-$label.log" >&2
      exit 1
    }
    sleep 0.1
  done
  wrk -t 2 -c "$connections" -d 2s "${url[$label]}" >/dev/null # warm-up
}
start_pair A "$1"
start_pair B "$2"

echo "wrk: 2 threads, $connections connections, ${duration}s a load, GET /api/v1/files, A=$1 B=$2"
sum_a=0 sum_b=0
for round in $(seq "$rounds"); do
  line="round $round:"
  for label in A B; do
    rps=$(wrk -t 2 -c "$connections" -d "${duration}s" "${url[$label]}" |
      awk '/^Requests\/sec:/ {print $2}')
    line+=$(printf '  %s %10s req/s' "$label" "$rps")
    if [[ $label == A ]]; then sum_a=$(awk -v s="$sum_a" -v r="$rps" 'BEGIN {print s + r}'); fi
    if [[ $label == B ]]; then sum_b=$(awk -v s="$sum_b" -v r="$rps" 'BEGIN {print s + r}'); fi
  done
  echo "$line"
done
awk -v a="$sum_a" -v b="$sum_b" -v n="$rounds" \
  'BEGIN {printf "means: A %.0f req/s, B %.0f req/s; B/A = %.3f\n", a / n, b / n, b / a}'
