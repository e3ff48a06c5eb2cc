#!/usr/bin/env bash
# The AMQP path through a three-node RabbitMQ cluster against one node, same
# run: bench/channel_bench.cc's BM_AmqpRoundTrip (1 and 32 callers) once with
# a private single node (classic queues, the default for one URL) and once
# with a private cluster of three on this machine (the URL list: quorum
# queues, replicated on all three). Target: the cluster at >= 0.7x the single
# node with 32 callers. All nodes, the server and the callers share this
# machine's cores, so the cluster also pays for its two followers' CPU.
#
#   bench/cluster_bench.sh            binaries from build/release
#   FILEMESH_BUILD_DIR=build/dev bench/cluster_bench.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${FILEMESH_BUILD_DIR:-$repo/build/release}
bench="$build/bench/filemesh_channel_bench"
[ -x "$bench" ] || { echo "cluster_bench: build filemesh_channel_bench first ($bench)" >&2; exit 1; }
script="$repo/tests/rabbitmq/rabbitmq_node.sh"
# Four Erlang VMs share the cores here: schedulers that busy-wait for work
# steal each other's time (RabbitMQ's runtime tuning guide), so none does,
# on the single node too. Measured: cluster 1,579 -> 2,005 calls/s with 32
# callers; +S 1:1 on top made it worse (1,396).
export RABBITMQ_NODE_ERL_ARGS=${RABBITMQ_NODE_ERL_ARGS:-"+sbwt none +sbwtdcpu none +sbwtdio none"}

work=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-cluster-bench.XXXXXX")
chmod 755 "$work"  # the rabbitmq user reaches the node folders below
single_port=$(bash "$script" free-port)
base=$(bash "$script" free-port 9)
epmd_port=$((base + 2))
cookie="filemeshbench$RANDOM$RANDOM"
cluster_env=(RABBITMQ_NODE_EPMD_PORT="$epmd_port" RABBITMQ_NODE_COOKIE="$cookie")
cleanup() {
  bash "$script" stop "$work/single" "$single_port" >/dev/null 2>&1 || true
  for i in 2 1 0; do
    env "${cluster_env[@]}" bash "$script" stop "$work/node$i" $((base + 3 * i)) >/dev/null 2>&1 || true
  done
  epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "starting a private single node and a cluster of three ..."
single=$(bash "$script" start "$work/single" "$single_port" | tail -n 1)
urls=()
for i in 0 1 2; do
  urls+=("$(env "${cluster_env[@]}" bash "$script" start "$work/node$i" $((base + 3 * i)) | tail -n 1)")
done
for i in 1 2; do
  for args in stop_app "join_cluster filemesh-test-$base@localhost" start_app await_startup; do
    # shellcheck disable=SC2086  # args is a rabbitmqctl command and its argument
    env "${cluster_env[@]}" bash "$script" ctl "$work/node$i" $((base + 3 * i)) $args >/dev/null
  done
done
cluster=$(IFS=,; echo "${urls[*]}")
echo "single node: $single"
echo "cluster:     $cluster"

cpu_ticks() {  # busy and total jiffies of the whole machine
  awk '/^cpu /{busy=$2+$3+$4+$7+$8; total=busy+$5+$6; print busy, total}' /proc/stat
}
run() {  # NAME URL: the benchmark, and how busy the machine's cores were
  local before after
  before=$(cpu_ticks)
  FILEMESH_BENCH_AMQP_URL="$2" "$bench" --benchmark_filter='BM_AmqpRoundTrip' \
    --benchmark_counters_tabular=true --benchmark_out="$work/$1.json" \
    --benchmark_out_format=json
  after=$(cpu_ticks)
  read -r b0 t0 <<<"$before"
  read -r b1 t1 <<<"$after"
  echo $(((b1 - b0) * 100 / (t1 - t0))) >"$work/$1.cpu"
}
echo "== one node"
run single "$single"
echo "== three-node cluster"
run cluster "$cluster"

python3 - "$work/single.json" "$work/cluster.json" <<'PY'
import json, sys
def rates(path):
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        out[b["threads"]] = b["items_per_second"]
    return out
single, cluster = rates(sys.argv[1]), rates(sys.argv[2])
cpu = [open(p[:-len(".json")] + ".cpu").read().strip() for p in sys.argv[1:3]]
print(f"cores busy while measured: one node {cpu[0]} %, cluster {cpu[1]} %")
for threads in sorted(single):
    if threads not in cluster:
        print(f"{threads:2d} callers: cluster not measured")
        continue
    ratio = cluster[threads] / single[threads]
    target = "  (target >= 0.70)" if threads == 32 else ""
    print(f"{threads:2d} callers: one node {single[threads]:7.0f} calls/s, cluster "
          f"{cluster[threads]:7.0f} calls/s, ratio {ratio:.2f}{target}")
PY
