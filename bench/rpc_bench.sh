#!/usr/bin/env bash
# Runs bench/channel_bench.cc with a private RabbitMQ node, so both the gRPC
# and the AMQP round trips are measured in one run (1 and 32 callers, server
# and broker on this machine too). Targets with 32 callers on the 2-core
# machine: gRPC >= 10,000 calls/s, AMQP >= 4,000 calls/s. Then fast calls
# with and without 1-second calls beside them on the same server, through a
# gRPC + AMQP channel: the mix keeps >= 0.9 of the rate and <= 1.1 of the p99,
# with nothing failed over or served twice (ratios printed at the end).
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
out="$node_dir/results.json"
FILEMESH_BENCH_AMQP_URL="$url" "$bench" --benchmark_counters_tabular=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@"

# Fast calls beside 1-second ones against fast calls alone, same run: a slow
# call must not slow the others down (targets: rate and p99 within 10 %) nor
# fail over (nothing served twice).
python3 - "$out" <<'PY'
import json, sys
runs = {b["run_name"].split("/")[0]: b for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("run_type", "iteration") == "iteration"}
alone, mixed = runs.get("BM_FastCalls"), runs.get("BM_FastCallsBesideSlowOnes")
if not alone or not mixed or alone.get("error_occurred") or mixed.get("error_occurred"):
    print("fast/slow mix: not measured (see above)")
    sys.exit(0)
rate = mixed["items_per_second"] / alone["items_per_second"]
p99 = mixed["p99_us"] / alone["p99_us"]
print(f"fast calls alone:            {alone['items_per_second']:9.0f} calls/s  p99 {alone['p99_us']:7.0f} us")
print(f"fast calls beside 1-s calls: {mixed['items_per_second']:9.0f} calls/s  p99 {mixed['p99_us']:7.0f} us"
      f"  ({mixed['slow_calls']:.0f} slow calls)")
print(f"ratio: rate {rate:.2f} (target >= 0.90), p99 {p99:.2f} (target <= 1.10)")
print(f"failed over or failed: fast {mixed['fast_not_on_grpc']:.0f}, slow {mixed['slow_not_on_grpc']:.0f};"
      f" slow calls served twice: {mixed['slow_served_twice']:.0f} (target 0 each)")
PY
