#!/usr/bin/env bash
# Runs bench/operations_bench.cc with a private RabbitMQ node and a private
# PostgreSQL server: how soon a call answered 202 by one gateway replica has
# its answer readable on another, from the service's reply (target: p99
# <= 100 ms), against two gateways on one SQLite file and one gateway in
# memory, same run.
#
#   bench/operations_bench.sh            binaries from build/release
#   FILEMESH_BUILD_DIR=build/dev bench/operations_bench.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${FILEMESH_BUILD_DIR:-$repo/build/release}
bench="$build/bench/filemesh_operations_bench"
[ -x "$bench" ] || { echo "operations_bench: build filemesh_operations_bench first ($bench)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-operations-bench.XXXXXX")
chmod 755 "$dir"
rabbit="$repo/tests/rabbitmq/rabbitmq_node.sh"
postgres="$repo/tests/postgres/postgres_server.sh"
rabbit_port=$(bash "$rabbit" free-port)
postgres_port=$(bash "$rabbit" free-port 1)
cleanup() {
  bash "$rabbit" stop "$dir/rabbit" "$rabbit_port" >/dev/null 2>&1 || true
  bash "$postgres" stop "$dir/postgres" "$postgres_port" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

echo "starting a private RabbitMQ node on 127.0.0.1:$rabbit_port and PostgreSQL on $postgres_port ..."
amqp_url=$(bash "$rabbit" start "$dir/rabbit" "$rabbit_port" | tail -n 1)
bash "$postgres" start "$dir/postgres" "$postgres_port" >/dev/null
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
bash "$postgres" psql "$dir/postgres" "$postgres_port" "ALTER USER postgres PASSWORD '$password'"
bash "$postgres" psql "$dir/postgres" "$postgres_port" "CREATE DATABASE filemesh_bench"
# The gateways' and the service's log lines go to a file, shown on failure.
if ! FILEMESH_BENCH_AMQP_URL="$amqp_url" \
  FILEMESH_BENCH_POSTGRES_URL="postgresql://postgres:$password@127.0.0.1:$postgres_port/filemesh_bench" \
  "$bench" "$@" 2>"$dir/bench.log"; then
  tail -n 40 "$dir/bench.log" >&2
  exit 1
fi
