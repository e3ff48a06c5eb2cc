#!/usr/bin/env bash
# Runs bench/channel_bench.cc with a private RabbitMQ node, so both the gRPC
# and the AMQP round trips are measured in one run (1 and 32 callers, server
# and broker on this machine too). Targets with 32 callers on the 2-core
# machine: gRPC >= 10,000 calls/s, AMQP >= 4,000 calls/s.
#
#   bench/rpc_bench.sh            binaries from build/release
#   FILEMESH_BUILD_DIR=build/dev bench/rpc_bench.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${FILEMESH_BUILD_DIR:-$repo/build/release}
bench="$build/bench/filemesh_channel_bench"
[ -x "$bench" ] || { echo "rpc_bench: build filemesh_channel_bench first ($bench)" >&2; exit 1; }

node_dir=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-rpc-bench.XXXXXX")
script="$repo/tests/rabbitmq/rabbitmq_node.sh"
port=$(bash "$script" free-port)
cleanup() {
  bash "$script" stop "$node_dir" "$port" >/dev/null 2>&1 || true
  rm -rf "$node_dir"
}
trap cleanup EXIT

echo "starting a private RabbitMQ node on 127.0.0.1:$port ..."
url=$(bash "$script" start "$node_dir" "$port" | tail -n 1)
echo "broker: $url"
FILEMESH_BENCH_AMQP_URL="$url" "$bench" --benchmark_counters_tabular=true "$@"
