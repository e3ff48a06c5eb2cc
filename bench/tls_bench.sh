#!/usr/bin/env bash
# What TLS costs, measured against plain text in the same run. Three gateways
# on one small directory (10 files), loaded in turn with wrk over keep-alive
# connections (GET /api/v1/files?path=small):
#   plain   HTTP to the gateway, plain-text gRPC to mserv1 (the reference)
#   https   HTTPS to the gateway (TLS 1.3, the server certificate of
#           tests/tls/make_certs.sh), plain-text gRPC to mserv1
#   mtls    HTTP to the gateway, gRPC to a second mserv1 over mutual TLS
#           (--tls_ca, --allowed_peers gateway; the gateway's client
#           certificate)
# ROUNDS rounds, each loading the three in turn for DURATION seconds, so that
# a drift of the machine falls on all of them; prints every round's requests/s
# and p99, then the ratios of the medians: https/plain and mtls/plain.
# Targets (issue 19): both >= 0.8.
#
#   bench/tls_bench.sh [BIN_DIR]          BIN_DIR holds mserv1 and gateway
#                                         (default build/examples)
#   ROUNDS=3 DURATION=10 CONNECTIONS=32 THREADS=2 bench/tls_bench.sh
#
# Bounded: ROUNDS at most 9, DURATION at most 15 s, CONNECTIONS at most 64;
# loopback only; starts and stops its own processes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$repo/build/examples}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
((rounds >= 1 && rounds <= 9)) || { echo "tls_bench: ROUNDS must be 1..9" >&2; exit 2; }
((duration >= 1 && duration <= 15)) || { echo "tls_bench: DURATION must be 1..15" >&2; exit 2; }
((connections >= 1 && connections <= 64)) || { echo "tls_bench: CONNECTIONS must be 1..64" >&2; exit 2; }
((threads >= 1 && threads <= connections)) || { echo "tls_bench: bad THREADS" >&2; exit 2; }
mserv1="$bin/mserv1"
gateway="$bin/gateway"
for b in "$mserv1" "$gateway"; do
  [ -x "$b" ] || { echo "tls_bench: build examples/ first (no $b)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "tls_bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-tls-bench.XXXXXX")
pids=()
cleanup() {
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for_log, address_of, spawn.
# shellcheck source=tests/shell/log_events.sh
. "$repo/tests/shell/log_events.sh"

certs="$work/certs"
bash "$repo/tests/tls/make_certs.sh" "$certs" >/dev/null
mkdir -p "$work/tree/small"
for i in $(seq -w 1 10); do head -c $((10#$i * 37)) /dev/zero >"$work/tree/small/file$i.txt"; done

spawn mserv1-plain "$mserv1" --root "$work/tree" --grpc_listen 127.0.0.1:0 --threads 2
spawn mserv1-mtls "$mserv1" --root "$work/tree" --grpc_listen 127.0.0.1:0 --threads 2 \
  --tls_cert "$certs/server.pem" --tls_key "$certs/server.key" --tls_ca "$certs/ca.pem" \
  --allowed_peers gateway
plain_grpc=$(address_of "$(wait_for_log "$work/mserv1-plain.log" grpc_listening)")
mtls_grpc=$(address_of "$(wait_for_log "$work/mserv1-mtls.log" grpc_listening)")

gateway_at() { # NAME EXTRA FLAGS...: starts a gateway, prints its address
  local name=$1
  shift
  spawn "$name" "$gateway" --listen 127.0.0.1:0 --noui "$@"
  address_of "$(wait_for_log "$work/$name.log" http_listening)"
}
plain=$(gateway_at gateway-plain --lister_grpc "$plain_grpc")
https=$(gateway_at gateway-https --lister_grpc "$plain_grpc" \
  --tls_cert "$certs/server.pem" --tls_key "$certs/server.key")
mtls=$(gateway_at gateway-mtls --lister_grpc "$mtls_grpc" --backend_ca "$certs/ca.pem" \
  --backend_tls_cert "$certs/client.pem" --backend_tls_key "$certs/client.key")

declare -A url=(
  [plain]="http://$plain/api/v1/files?path=small"
  [https]="https://$https/api/v1/files?path=small"
  [mtls]="http://$mtls/api/v1/files?path=small"
)
# Each answers 200 over gRPC before it is measured.
for kind in plain https mtls; do
  body=$(curl -sf --cacert "$certs/ca.pem" "${url[$kind]}") ||
    { echo "tls_bench: ${url[$kind]} does not answer" >&2; exit 1; }
  [[ $body == *'"served_by":"grpc"'* ]] || { echo "tls_bench: $kind not over gRPC" >&2; exit 1; }
done

declare -A rates=()
load() { # KIND: one wrk run; appends its requests/s to rates[KIND], prints a line
  local out rps p99 errors
  out=$(wrk -t "$threads" -c "$connections" -d "${duration}s" --latency "${url[$1]}")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $5} /Socket errors:/ {print "socket-errors"}' <<<"$out")
  [ -z "$errors" ] || { echo "tls_bench: $1 had errors:" >&2; echo "$out" >&2; exit 1; }
  rates[$1]="${rates[$1]:-} $rps"
  printf '  %-6s %10s req/s   p99 %s\n' "$1" "$rps" "$p99"
}
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "tls_bench: $rounds rounds, ${duration}s each, $connections keep-alive connections, $threads wrk threads"
for ((r = 1; r <= rounds; r++)); do
  echo "round $r:"
  for kind in plain https mtls; do load "$kind"; done
done
p=$(median "${rates[plain]}")
h=$(median "${rates[https]}")
m=$(median "${rates[mtls]}")
awk -v p="$p" -v h="$h" -v m="$m" 'BEGIN {
  printf "medians: plain %.0f, https %.0f, mtls %.0f req/s\n", p, h, m
  printf "https/plain = %.3f (target >= 0.8)\n", h / p
  printf "mtls/plain  = %.3f (target >= 0.8)\n", m / p
}'
