#!/usr/bin/env bash
# Issue 22's figures for the live index (FileIndex, mserv2 --index), each
# against a reference measured in the same run, on a generated tree of about
# 2 million entries (80 x 25 directories of 1,000 files: hard links to 16
# seeds per top directory, as compare.sh's tree):
#
#   1. building the index against the parallel floor's walk of the same tree
#      (filemesh_parallel_floor, names only): medians of 5 runs each;
#   2. memory per entry, queries (a glob, a substring, a regex: p50 of 30),
#      freshness at 1,000 changes/s (filemesh_index_bench);
#   3. the same three queries with Debian's plocate, its database built over
#      the same tree (-b: names, as filemesh matches them; -l 1000, as
#      filemesh's default max_results): median of 10 runs of the command;
#   4. through mserv2 --index and the gateway (curl), against mserv2
#      walking, when the examples are built (build/examples).
#
#   bench/index_bench.sh [BUILD_DIR]     BUILD_DIR: build/release by default
#
# Environment: TMPDIR (where the tree goes, default /tmp; about 2 GB of
# directory blocks), EXAMPLES_DIR (mserv2 and gateway; default build/examples),
# TOPS (top directories of 25,000 entries; default 80).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
examples=${EXAMPLES_DIR:-build/examples}
tops=${TOPS:-80}
floor=$build/bench/filemesh_parallel_floor
index_bench=$build/bench/filemesh_index_bench
for tool in "$floor" "$index_bench"; do
  [ -x "$tool" ] || { echo "index_bench.sh: $tool is not built (target filemesh_benchmarks)" >&2; exit 2; }
done
if ! command -v plocate >/dev/null || ! command -v updatedb >/dev/null; then
  echo "index_bench.sh: plocate is needed (apt-get install plocate)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-index-bench.XXXXXX")
pids=()
cleanup() {
  # serve() runs in a command substitution: its processes are in pids.txt.
  [ -f "$work/pids.txt" ] && mapfile -t -O "${#pids[@]}" pids <"$work/pids.txt"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
tree=$work/tree
now_ns() { date +%s%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "[1/4] generating the tree under $work ..."
start=$(now_ns)
# Files of their own (the index reads a hard-linked file's attributes from
# the disk at each answer); LINKS=1: hard links, much faster to make.
python3 bench/make_tree.py "$tree" --tops "$tops" --files 1000 ${LINKS:+--links}
echo "  generated in $(( ($(now_ns) - start) / 1000000 )) ms"

echo "[2/4] building the index against the parallel floor (5 runs each, alternating) ..."
floor_s=() build_s=() touch_s=()
for _ in 1 2 3 4 5; do
  start=$(now_ns)
  "$floor" "$tree" 'no-such-name' >/dev/null
  floor_s+=("$(awk -v n=$(( $(now_ns) - start )) 'BEGIN {printf "%.3f", n / 1e9}')")
  out=$("$index_bench" "$tree" 1 --build-only)
  build_s+=("$(sed -n 's/.*built in \([0-9.]*\) s.*/\1/p' <<<"$out")")
  touch_s+=("$(sed -n 's/^first touch of .*: \([0-9.]*\) s$/\1/p' <<<"$out")")
done
# Each build less the first touch its own process measured (the kernel's
# share, spread over the walker threads): the index's own cost.
own_s=()
for i in "${!build_s[@]}"; do
  own_s+=("$(awk -v b="${build_s[$i]}" -v t="${touch_s[$i]}" -v c="$(nproc)" \
    'BEGIN {printf "%.3f", b - t / c}')")
done
floor_median=$(printf '%s\n' "${floor_s[@]}" | median)
build_median=$(printf '%s\n' "${build_s[@]}" | median)
own_median=$(printf '%s\n' "${own_s[@]}" | median)
echo "  parallel floor: ${floor_s[*]} s (median $floor_median)"
echo "  index build:    ${build_s[*]} s (median $build_median)"
echo "  first touch of the index's memory (one thread): ${touch_s[*]} s"
echo "  build less its first touch / $(nproc) threads: ${own_s[*]} s (median $own_median)"
awk -v b="$build_median" -v f="$floor_median" -v o="$own_median" \
  'BEGIN {printf "  build / floor: %.2f (target <= 1.30); less the first touch: %.2f\n", b / f, o / f}'

echo "[3/4] the index: memory, queries, freshness (filemesh_index_bench) ..."
"$index_bench" "$tree" 30 | sed 's/^/  /'

echo "      plocate over the same tree (median of 10 runs of the command) ..."
updatedb -U "$tree" -o "$work/plocate.db" --prunepaths '' --prunefs '' --prunenames '' \
  --prune-bind-mounts no -l no
plocate_time() {
  local runs=() start count
  for _ in $(seq 10); do
    start=$(now_ns)
    count=$(plocate -d "$work/plocate.db" "$@" | wc -l)
    runs+=("$(awk -v n=$(( $(now_ns) - start )) 'BEGIN {printf "%.2f", n / 1e6}')")
  done
  echo "$(printf '%s\n' "${runs[@]}" | median) ms ($count matches)"
}
echo "  plocate -b -l 1000 '*.h':              $(plocate_time -b -l 1000 '*.h')"
echo "  plocate -b -l 1000 util_7:             $(plocate_time -b -l 1000 util_7)"
echo "  plocate -b -r '^lexer_9[0-9]\\.cc\$':   $(plocate_time -b -r '^lexer_9[0-9]\.cc$')"

echo "[4/4] through mserv2 and the gateway ..."
if [ ! -x "$examples/mserv2" ] || [ ! -x "$examples/gateway" ]; then
  echo "  skipped: $examples/mserv2 and $examples/gateway are not built"
  exit 0
fi
port() { python3 -c 'import random; print(random.randrange(20000, 30000))'; }
serve() {  # NAME MSERV2-FLAGS...: mserv2 and a gateway; prints the gateway's URL
  local name=$1 grpc http
  shift
  grpc=$(port); http=$(port)
  "$examples/mserv2" --root "$tree" --grpc_listen "127.0.0.1:$grpc" "$@" >"$work/$name-mserv2.log" 2>&1 &
  echo $! >>"$work/pids.txt"
  "$examples/gateway" --listen "127.0.0.1:$http" --searcher_grpc "127.0.0.1:$grpc" \
    --request_timeout 60s >"$work/$name-gateway.log" 2>&1 &
  echo $! >>"$work/pids.txt"
  for _ in $(seq 600); do
    if curl -sf "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 &&
       { [ "$name" = walk ] || grep -q event=index_attributes_kept "$work/$name-mserv2.log"; }; then
      echo "http://127.0.0.1:$http"
      return
    fi
    sleep 0.1
  done
  echo "index_bench.sh: $name did not start" >&2
  cat "$work/$name-mserv2.log" "$work/$name-gateway.log" >&2
  exit 1
}
through() {  # URL QUERY RUNS: median ms of RUNS requests
  local runs=() t
  for _ in $(seq "$3"); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "$1/api/v1/search?$2")
    runs+=("$(awk -v t="$t" 'BEGIN {printf "%.2f", t * 1000}')")
  done
  printf '%s\n' "${runs[@]}" | median
}
indexed=$(serve index --index)
walking=$(serve walk)
for query in 'q=*.h' 'q=util_7&syntax=substring' 'q=%5Elexer_9%5B0-9%5D%5C.cc%24&syntax=regex' \
  'q=*&min_size=4990&max_results=100000'; do
  printf '  %-50s index p50 %7s ms (target <= 30) | walk p50 %7s ms\n' "$query" \
    "$(through "$indexed" "$query" 30)" "$(through "$walking" "$query" 5)"
done
