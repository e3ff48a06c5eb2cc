#!/usr/bin/env bash
# Load on the REST gateway with wrk: GET /api/v1/files for a small directory,
# (a) on the gRPC path (an mserv1 replica serving gRPC) and (b) on the AMQP
# path (the gateway's gRPC target has no replica; an AMQP-only mserv1 answers
# from the queue). Prints requests/s, p50 and p99 latency and the gateway's
# peak RSS (VmHWM) for each, and GET /healthz on the same gateway as a
# reference measured in the same run (HTTP and wrk without a backend call),
# with the gRPC path's ratio to it. A second reference, when
# filemesh_grpc_floor is built: the bare gRPC unary call between two
# processes with as many callers as wrk has connections (no HTTP, no JSON,
# no file system, no filemesh code), which the gRPC path contains once per
# request; and a bound: the cores' CPU over the CPU of what no implementation
# of the path on this stack can skip (an async bare call, an exchange with
# this HTTP server, the listing and the JSON), each measured in this run
# (bench/README.md). Two more references, in the same run: nginx (Debian's
# package, on a port of its own) serving the very JSON the gateway answers as
# a static file, and, for the AMQP path, filemesh_channel_bench's bare AMQP
# round trip with 32 callers. Last, the gRPC path again with IDLE keep-alive
# connections held open (bench/hold_connections.py), and the gateway's RSS.
# Bounded: DURATION seconds per path (at most 15), CONNECTIONS connections (at
# most 32), IDLE idle connections (at most 20,000), loopback only. Starts and
# stops its own RabbitMQ node (needs root), nginx and processes.
#
# Targets on the 2-core machine, wrk included: gRPC path >= 0.25x nginx with
# p99 <= 10 ms, /healthz >= 0.6x nginx, the gRPC path with 10,000 idle
# connections >= 0.9x without them and gateway RSS <= 128 MiB, AMQP path >=
# 0.7x the bare AMQP channel.
#
#   bench/gateway_bench.sh [BIN_DIR]     BIN_DIR holds mserv1 and gateway
#                                        (default build/examples)
#   DURATION=10 CONNECTIONS=32 THREADS=2 bench/gateway_bench.sh
#   PATHS=grpc bench/gateway_bench.sh    only the gRPC path (default "grpc amqp")
#   IDLE=10000 bench/gateway_bench.sh     idle connections held open (0: skip)
#   GRPC_FLOOR=path/to/filemesh_grpc_floor (default build/release/bench/...)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$repo/build/examples}
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
paths=${PATHS:-grpc amqp}
idle=${IDLE:-10000}
((idle >= 0 && idle <= 20000)) || { echo "gateway_bench: IDLE must be 0..20000" >&2; exit 2; }
for p in $paths; do
  [[ $p == grpc || $p == amqp ]] || { echo "gateway_bench: PATHS holds grpc and/or amqp" >&2; exit 2; }
done
floor=${GRPC_FLOOR:-$repo/build/release/bench/filemesh_grpc_floor}
((duration >= 1 && duration <= 15)) || { echo "gateway_bench: DURATION must be 1..15" >&2; exit 2; }
((connections >= 1 && connections <= 32)) || {
  echo "gateway_bench: CONNECTIONS must be 1..32" >&2
  exit 2
}
((threads >= 1 && threads <= connections)) || { echo "gateway_bench: bad THREADS" >&2; exit 2; }

mserv1="$bin/mserv1"
gateway="$bin/gateway"
for b in "$mserv1" "$gateway"; do
  [ -x "$b" ] || { echo "gateway_bench: build examples/ first (no $b)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "gateway_bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
nginx=$(command -v nginx || true)
[ -n "$nginx" ] || [ -x /usr/sbin/nginx ] || {
  echo "gateway_bench: nginx is missing (apt-get install nginx-light)" >&2
  exit 1
}
nginx=${nginx:-/usr/sbin/nginx}

work=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-gateway-bench.XXXXXX")
chmod 755 "$work" # the node runs as the rabbitmq user, in $work/rabbitmq
script="$repo/tests/rabbitmq/rabbitmq_node.sh"
amqp_port=$(bash "$script" free-port)

pids=()
cleanup() {
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  bash "$script" stop "$work/rabbitmq" "$amqp_port" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for_log, address_of, spawn.
# shellcheck source=tests/shell/log_events.sh
. "$repo/tests/shell/log_events.sh"

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# A small directory: 10 files of a few sizes.
tree="$work/tree"
mkdir -p "$tree/small"
for i in $(seq -w 1 10); do
  head -c $((10#$i * 37)) /dev/zero >"$tree/small/file$i.txt"
done

echo "starting a private RabbitMQ node on 127.0.0.1:$amqp_port ..."
amqp_url=$(bash "$script" start "$work/rabbitmq" "$amqp_port" | tail -n 1)

# busy_us: CPU time the machine has spent busy so far (all cores and
# processes; /proc/stat user + nice + system + irq + softirq), in us.
busy_us() {
  awk -v hz="$(getconf CLK_TCK)" \
    '$1 == "cpu" {printf "%.0f\n", ($2 + $3 + $4 + $7 + $8) * 1000000 / hz}' /proc/stat
}

# proc_cpu_us PID: the CPU time (us) process PID has used so far.
proc_cpu_us() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f\n", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"
}

# load URL [WRK FLAGS...]: wrk against URL; its output in $wrk_out, in
# $cpu_per_request the machine's busy CPU per request meanwhile (wrk, the
# gateway, the service and the broker all counted), in us, and in $cpu_split
# that of each process $watched names ("name pid" pairs), the rest last.
load() {
  local url=$1 before after requests i used rest
  shift
  local -a start=()
  for ((i = 1; i < ${#watched[@]}; i += 2)); do start+=("$(proc_cpu_us "${watched[i]}")"); done
  before=$(busy_us)
  wrk_out=$(wrk -t "$threads" -c "$connections" -d "${duration}s" "$@" "$url")
  after=$(busy_us)
  requests=$(awk '/ requests in / {print $1}' <<<"$wrk_out")
  ((requests > 0)) || { echo "gateway_bench: no request answered at $url" >&2; exit 1; }
  cpu_per_request=$(((after - before) / requests))
  cpu_split=""
  rest=$cpu_per_request
  for ((i = 1; i < ${#watched[@]}; i += 2)); do
    used=$((($(proc_cpu_us "${watched[i]}") - start[i / 2]) / requests))
    cpu_split+="${watched[i - 1]} $used + "
    rest=$((rest - used))
  done
  cpu_split+="wrk and the rest $rest"
}

# floor_cpu_per_call LINE: client + server CPU per call (us) in a line of
# filemesh_grpc_floor.
floor_cpu_per_call() {
  sed -n 's/.*client \([0-9]*\) us  server \([0-9]*\) us.*/\1 \2/p' <<<"$1" |
    awk '{print $1 + $2}'
}

# benchmark_cpu_us PROGRAM FILTER: the CPU time (us) per iteration of the
# Google Benchmark PROGRAM (beside filemesh_grpc_floor) FILTER selects.
benchmark_cpu_us() {
  "$(dirname "$floor")/$1" --benchmark_filter="$2" --benchmark_format=csv 2>/dev/null |
    awk -F, 'NR == 2 {
      unit = $5; t = $4
      if (unit == "ns") t /= 1000; else if (unit == "ms") t *= 1000; else if (unit == "s") t *= 1e6
      printf "%.1f\n", t }'
}

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# start_nginx FILE: nginx serving FILE at /small.json on a port of its own,
# as many workers as cores, no access log; its URL in $nginx_url.
start_nginx() {
  local dir="$work/nginx" port
  port=$(bash "$script" free-port)
  mkdir -p "$dir/www"
  chmod 755 "$dir" "$dir/www"
  cp "$1" "$dir/www/small.json"
  chmod 644 "$dir/www/small.json"
  cat >"$dir/nginx.conf" <<CONF
worker_processes $(nproc);
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
    default_type application/json;
  }
}
CONF
  spawn nginx "$nginx" -p "$dir" -c "$dir/nginx.conf"
  nginx_url="http://127.0.0.1:$port/small.json"
  local deadline=$((SECONDS + 10))
  until curl -sf "$nginx_url" >/dev/null; do
    ((SECONDS < deadline)) || { echo "gateway_bench: nginx did not start" >&2; cat "$dir/error.log" >&2; exit 1; }
    sleep 0.1
  done
}

# measure LABEL GRPC_TARGET EXPECTED_SERVED_BY SERVICE_PID: a fresh gateway,
# one check that the expected path serves, a warm-up, then wrk.
measure() {
  local label=$1 target=$2 expected=$3 service_pid=$4 served
  # Room for the idle connections and wrk's beside them, all from 127.0.0.1.
  spawn "gateway-$label" "$gateway" --listen 127.0.0.1:0 --lister_grpc "$target" \
    --amqp_url "$amqp_url" --queue_prefix bench. --request_timeout 5s \
    --max_connections $((idle + 1000)) --max_connections_per_client $((idle + 1000))
  local gw_pid=$spawned
  local address
  address=$(address_of "$(wait_for_log "$work/gateway-$label.log" http_listening)")
  local url="http://$address/api/v1/files?path=small"
  local deadline=$((SECONDS + 30))
  until served=$(curl -sf "$url" | grep -o '"served_by": *"[a-z]*"') &&
    [[ $served == *"\"$expected\"" ]]; do
    ((SECONDS < deadline)) || { echo "gateway_bench: $label: not served by $expected" >&2; exit 1; }
    sleep 0.1
  done
  wrk -t "$threads" -c "$connections" -d 2s "$url" >/dev/null # warm-up
  watched=(gateway "$gw_pid" mserv1 "$service_pid" rabbitmq "$(cat "$work/rabbitmq/beam.pid")")
  load "$url" --latency
  local rps p50 p99 errors rss path_cpu=$cpu_per_request
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$wrk_out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$wrk_out")
  rss=$(awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$gw_pid/status")
  printf '%-5s path: %10s req/s   p50 %-9s p99 %-9s gateway peak RSS %-10s non-2xx %s\n' \
    "$label" "$rps" "$p50" "$p99" "$rss" "${errors:-0}"
  printf '      CPU per request: %s us = %s\n' "$path_cpu" "$cpu_split"
  if [[ $label == grpc ]]; then
    # The reference, measured now on the same gateway: GET /healthz answers
    # without a backend call, so it is what wrk and the HTTP server reach on
    # this machine at this moment. The ratio survives a busier machine.
    load "http://$address/healthz"
    local reference http_cpu=$cpu_per_request
    reference=$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")
    printf 'reference GET /healthz: %10s req/s   grpc path = %.2f of it\n' \
      "$reference" "$(awk -v a="$rps" -v b="$reference" 'BEGIN {print a / b}')"
    printf '      CPU per request: %s us = %s\n' "$http_cpu" "$cpu_split"
    # nginx serving the same bytes as a static file: what a mature
    # event-driven server reaches here, now.
    curl -sf "$url" >"$work/small.json"
    start_nginx "$work/small.json"
    local nginx_pid=$spawned nginx_rps
    watched=(nginx "$nginx_pid")
    load "$nginx_url"
    nginx_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")
    printf 'reference nginx, same JSON as a static file: %10s req/s\n' "$nginx_rps"
    printf '      grpc path = %s x nginx (target >= 0.25)   /healthz = %s x nginx (target >= 0.6)\n' \
      "$(ratio "$rps" "$nginx_rps")" "$(ratio "$reference" "$nginx_rps")"
    stop_pid "$nginx_pid"
    watched=(gateway "$gw_pid" mserv1 "$service_pid")
    if [ -x "$floor" ]; then
      local line calls call_us async_us list_us json_us cores bound
      line=$("$floor" --callers "$connections" --seconds "$duration")
      calls=$(sed -n 's/.*: \([0-9]*\) calls\/s.*/\1/p' <<<"$line")
      call_us=$(floor_cpu_per_call "$line")
      printf 'reference bare gRPC call: %8s calls/s  grpc path = %.2f of it   CPU per call %s us\n' \
        "$calls" "$(awk -v a="$rps" -v b="$calls" 'BEGIN {print a / b}')" "$call_us"
      # What no implementation of the path can skip, each measured now: one
      # gRPC call made the cheapest way gRPC offers (async), one HTTP exchange,
      # the listing and its serialization, and the JSON. The cores' CPU over
      # that sum bounds the path.
      async_us=$(floor_cpu_per_call "$("$floor" --client async --callers "$connections" \
        --seconds "$duration")")
      list_us=$(benchmark_cpu_us filemesh_lister_bench 'BM_SmallDirectoryReply$')
      json_us=$(benchmark_cpu_us filemesh_proto_json_bench 'DirectWriter/10$')
      if [[ -z $async_us || -z $list_us || -z $json_us ]]; then
        echo "bound: skipped (build filemesh_benchmarks beside filemesh_grpc_floor)"
      else
        cores=$(nproc)
        bound=$(awk -v n="$cores" -v a="$async_us" -v h="$http_cpu" -v l="$list_us" -v j="$json_us" \
          'BEGIN {printf "%.0f", n * 1e6 / (a + h + l + j)}')
        printf 'bound: %d cores / (async gRPC call %s + HTTP exchange %s + list %s + JSON %s us)' \
          "$cores" "$async_us" "$http_cpu" "$list_us" "$json_us"
        printf ' = %s req/s   grpc path = %.2f of it\n' "$bound" \
          "$(awk -v a="$rps" -v b="$bound" 'BEGIN {print a / b}')"
      fi
    else
      echo "reference bare gRPC call: skipped (build filemesh_grpc_floor, or set GRPC_FLOOR)"
    fi
    if ((idle > 0)); then
      # The same path with IDLE keep-alive connections open and idle.
      spawn holder python3 "$repo/bench/hold_connections.py" 127.0.0.1 "${address##*:}" "$idle"
      local holder_pid=$spawned held_rps rss_idle
      wait_for_holder "$work/holder.log" "$holder_pid"
      rss_idle=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$gw_pid/status")
      load "$url" --latency
      held_rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$wrk_out")
      if grep -q 'Non-2xx' <<<"$wrk_out"; then
        echo "gateway_bench: errors with the idle connections open:" >&2
        echo "$wrk_out" >&2
        exit 1
      fi
      printf 'with %d idle keep-alive connections: %10s req/s = %s of the path without them (target >= 0.9)\n' \
        "$idle" "$held_rps" "$(ratio "$held_rps" "$rps")"
      printf '      p99 %s   gateway RSS %s MiB with them open, peak %s (target <= 128 MiB)\n' \
        "$(awk '$1 == "99%" {print $2}' <<<"$wrk_out")" "$rss_idle" \
        "$(awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$gw_pid/status")"
      stop_pid "$holder_pid"
    fi
  fi
  if [[ $label == amqp && -n $channel_rps ]]; then
    printf 'reference bare AMQP channel (channel_bench, 32 callers): %s calls/s   amqp path = %s of it (target >= 0.7)\n' \
      "$channel_rps" "$(ratio "$rps" "$channel_rps")"
  fi
  stop_pid "$gw_pid"
}

# wait_for_holder LOG PID: until hold_connections.py says it holds them all.
wait_for_holder() {
  local deadline=$((SECONDS + 90))
  until grep -q '^holding ' "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { echo "gateway_bench: hold_connections.py failed:" >&2; cat "$1" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "gateway_bench: idle connections not open in 90 s" >&2; exit 1; }
    sleep 0.2
  done
}

echo "wrk: $threads threads, $connections connections, ${duration}s per path, GET /api/v1/files"
if [[ " $paths " == *" grpc "* ]]; then
  spawn mserv1-grpc "$mserv1" --root "$tree" --grpc_listen 127.0.0.1:0 --amqp_url= --threads 2
  grpc_pid=$spawned
  grpc_address=$(address_of "$(wait_for_log "$work/mserv1-grpc.log" grpc_listening)")
  measure grpc "$grpc_address" grpc "$grpc_pid"
  stop_pid "$grpc_pid"
fi

channel_rps=""
if [[ " $paths " == *" amqp "* ]]; then
  # The reference first, before any other consumer takes its queue: the bare
  # AMQP channel, 32 callers, its server in the same process.
  channel_bench="$(dirname "$floor")/filemesh_channel_bench"
  if [ -x "$channel_bench" ]; then
    channel_rps=$(FILEMESH_BENCH_AMQP_URL="$amqp_url" "$channel_bench" \
      --benchmark_filter='BM_AmqpRoundTrip/.*threads:32' --benchmark_format=csv 2>/dev/null |
      awk -F, 'NR == 2 {for (i = 1; i <= NF; i++) if (h[i] == "items_per_second") printf "%.0f", $i}
               NR == 1 {for (i = 1; i <= NF; i++) h[i] = $i}')
  else
    echo "reference bare AMQP channel: skipped (build filemesh_channel_bench beside filemesh_grpc_floor)"
  fi
  # The AMQP path: the gateway keeps a gRPC target with no replica behind it.
  spawn mserv1-amqp "$mserv1" --root "$tree" --grpc_listen= --amqp_url "$amqp_url" \
    --queue_prefix bench. --threads 2
  amqp_pid=$spawned
  wait_for_log "$work/mserv1-amqp.log" amqp_connected >/dev/null
  measure amqp "127.0.0.1:$(bash "$script" free-port)" amqp "$amqp_pid"
fi
