#!/usr/bin/env bash
# Times `filemesh find` and `filemesh ls` against the usual tools, side by side:
#
#   search '*.h' under /usr and under a generated tree of ~500,000 entries:
#     filemesh find --hidden   vs  fdfind -u -g   vs  find -name   vs  filemesh_floor
#     (one thread)  vs  filemesh_parallel_floor (the same walk, one thread per core)
#   time to the first printed match under /usr, streaming to a pipe
#   (bench/first_match.py): filemesh find and fdfind, first match / whole run
#   listing a generated directory of 100,000 files:
#     filemesh ls --page-size 100               vs  ls -f
#     filemesh ls --page-size 100 --sort size   vs  find -maxdepth 1 -printf '%s %T@ %p\n'
#
# Each command runs once to warm up, then FILEMESH_BENCH_RUNS times (default 5),
# the commands of a group taking turns; the median wall time is reported.
# Output goes to /dev/null. Match counts of filemesh, floor and find are checked
# once (and fd's shown); the exit status is 1 if they differ.
#
# Environment:
#   FILEMESH_BUILD_DIR   build directory holding src/cli/filemesh,
#                        bench/filemesh_floor and bench/filemesh_parallel_floor
#                        (default: <repo>/build/release)
#   FILEMESH_BENCH_RUNS  timed runs per command (default 5)
#   FILEMESH_BENCH_ROOT  tree for the first search (default /usr)
#   TMPDIR               where the generated trees go (default /tmp)
#
# Generated trees are removed at exit. Needs bash, python3, GNU find and ls.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${FILEMESH_BUILD_DIR:-$repo/build/release}
runs=${FILEMESH_BENCH_RUNS:-5}
usr_root=${FILEMESH_BENCH_ROOT:-/usr}
pattern='*.h'

filemesh=$build/src/cli/filemesh
floor=$build/bench/filemesh_floor
pfloor=$build/bench/filemesh_parallel_floor
for bin in "$filemesh" "$floor" "$pfloor"; do
  if [[ ! -x $bin ]]; then
    echo "compare.sh: $bin is missing; build it first:" >&2
    echo "  cmake --preset release && cmake --build --preset release" \
      "--target filemesh_cli filemesh_floor filemesh_parallel_floor" >&2
    exit 2
  fi
done
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
  echo "compare.sh: FILEMESH_BENCH_RUNS must be a positive whole number, not '$runs'" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed to generate the trees" >&2; exit 2; }

fd=$(command -v fdfind || command -v fd || true)
if [[ -z $fd ]]; then
  echo "NOTE: fdfind (fd) is not installed: the fd column is skipped."
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/filemesh-compare.XXXXXX")
cleanup() {
  echo "removing $tmp ..."
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ns() { date +%s%N; }

# seconds START_NS END_NS
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# median NS... : the median of the samples, in seconds.
median() {
  printf '%s\n' "$@" | sort -n |
    awk '{ v[NR] = $1 }
         END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
               printf "%.4f", m / 1e9 }'
}

# ratio A B: A/B to two decimals ("n/a" when either is missing).
ratio() {
  if [[ -z $1 || -z $2 ]]; then echo "n/a"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

# verdict RATIO LIMIT: "ok" if RATIO <= LIMIT, else "MISS".
verdict() {
  if [[ $1 == n/a ]]; then echo "-"; return; fi
  awk -v r="$1" -v l="$2" 'BEGIN { print (r <= l) ? "ok" : "MISS" }'
}

# time_group KEY FUNC... : warms each FUNC up once, then runs the FUNCs in turn
# $runs times, and stores each median (seconds) in med[KEY:FUNC].
declare -A med=()
time_group() {
  local key=$1 f i start end
  shift
  local -A samples=()
  for f in "$@"; do "$f" >/dev/null 2>&1 || true; done
  for ((i = 0; i < runs; i++)); do
    for f in "$@"; do
      start=$(now_ns)
      "$f" >/dev/null 2>&1 || true
      end=$(now_ns)
      samples[$f]+="$((end - start)) "
    done
  done
  for f in "$@"; do
    # shellcheck disable=SC2086  # the samples are whitespace-separated numbers
    med[$key:$f]=$(median ${samples[$f]})
  done
}

# count FUNC: lines FUNC prints (warns if it fails).
count() {
  local n
  n=$("$1" 2>/dev/null | wc -l) || echo "warning: $1 exited with an error" >&2
  echo "$n"
}

# The commands compared. They read $root (search) or $listdir (listing).
search_filemesh() { "$filemesh" find --root "$root" --hidden "$pattern"; }
search_fd() { "$fd" -u -g "$pattern" "$root"; }
search_find() { find "$root" -name "$pattern"; }
search_floor() { "$floor" "$root" "$pattern"; }
search_pfloor() { "$pfloor" "$root" "$pattern"; }
ls_filemesh_first() { "$filemesh" ls --root "$listdir" --page-size 100; }
ls_f() { ls -f "$listdir"; }
ls_filemesh_size() { "$filemesh" ls --root "$listdir" --page-size 100 --sort size; }
find_printf() { find "$listdir" -maxdepth 1 -printf '%s %T@ %p\n'; }

mismatch=0
declare -A matches=() entries=()

# search_round KEY ROOT: counts, checks and times the search commands.
search_round() {
  local key=$1 n_filemesh n_floor n_pfloor n_find n_fd="-"
  root=$2
  entries[$key]=$("$floor" "$root" '*' 2>/dev/null | wc -l || true)
  n_filemesh=$(count search_filemesh)
  n_floor=$(count search_floor)
  n_pfloor=$(count search_pfloor)
  n_find=$(count search_find)
  [[ -n $fd ]] && n_fd=$(count search_fd)
  matches[$key]=$n_filemesh
  echo "  $root: ${entries[$key]} entries; '$pattern' matches: filemesh $n_filemesh," \
    "floor $n_floor, parallel floor $n_pfloor, find $n_find, fd $n_fd"
  if [[ "$n_filemesh $n_floor $n_pfloor" != "$n_find $n_find $n_find" ]]; then
    echo "  MISMATCH: filemesh, the floors and find disagree on the match count"
    mismatch=1
  fi
  local funcs=(search_filemesh search_floor search_pfloor search_find)
  [[ -n $fd ]] && funcs+=(search_fd)
  echo "  timing ${#funcs[@]} commands, 1 warm-up + $runs runs each ..."
  time_group "$key" "${funcs[@]}"
}

# ---------------------------------------------------------------------------
echo "filemesh compare: $runs runs per command (median), build $build"
echo "machine: $(nproc) cores; filemesh find uses one walker thread per core"
if [[ -r /proc/loadavg ]]; then
  read -r load1 _ < /proc/loadavg
  echo "load average (1 min) before the run: $load1 (timings assume an idle machine)"
fi
echo

echo "[1/3] search under $usr_root"
search_round usr "$usr_root"

# first_round: the time to the first printed match and to the end, through a
# pipe, of the streaming searches under /usr; medians in first[] and whole[].
declare -A first=() whole=()
first_round() {
  local name i sample f w
  local -A cmd=([filemesh]="$filemesh find --root $usr_root --hidden $pattern")
  [[ -n $fd ]] && cmd[fd]="$fd -u -g $pattern $usr_root"
  for name in "${!cmd[@]}"; do
    local firsts=() wholes=()
    # shellcheck disable=SC2086  # the command line is split on purpose (no spaces in it)
    python3 "$repo/bench/first_match.py" ${cmd[$name]} >/dev/null
    for ((i = 0; i < runs; i++)); do
      # shellcheck disable=SC2086
      sample=$(python3 "$repo/bench/first_match.py" ${cmd[$name]})
      read -r f w <<<"$sample"
      firsts+=("$f")
      wholes+=("$w")
    done
    first[$name]=$(median "${firsts[@]}")
    whole[$name]=$(median "${wholes[@]}")
  done
}
echo "  time to the first printed match (streaming to a pipe), $runs runs ..."
first_round

echo "[2/3] search under a generated tree"
tree=$tmp/tree
start=$(now_ns)
# 40 x 25 directories of 500 files (1 in 16 is *.h), plus in each top-level
# directory 16 "seed" files and a hidden directory of 10 files: 502,120
# entries (bench/make_tree.py). The searches compared read names only
# (filemesh stats the matches; shared inodes were measured to make no
# difference to its time).
python3 "$repo/bench/make_tree.py" "$tree" --tops 40 --files 500 --hidden --links
echo "  generated in $(seconds "$start" "$(now_ns)") s"
search_round tree "$tree"

echo "[3/3] listing a directory of 100,000 files"
listdir=$tmp/list
start=$(now_ns)
# Sparse files of varied sizes, created in scrambled name order.
python3 - "$listdir" <<'EOF'
import os, sys
root = sys.argv[1]
os.mkdir(root)
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
exts = [".txt", ".log", ".cc", ".h", ".json", ".png"]
for i in range(100000):
    n = i * 7919 % 100000
    f = os.open("file_%06d%s" % (n, exts[n % 6]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
    os.ftruncate(f, n * 37 % 65536)
    os.close(f)
os.close(fd)
EOF
echo "  generated in $(seconds "$start" "$(now_ns)") s"
n_first=$(count ls_filemesh_first)
n_ls=$(count ls_f)
echo "  filemesh ls first page: $n_first lines; ls -f: $n_ls lines (with . and ..)"
echo "  timing 4 commands, 1 warm-up + $runs runs each ..."
time_group list ls_filemesh_first ls_f ls_filemesh_size find_printf

# ---------------------------------------------------------------------------
fdv() { if [[ -n $fd ]]; then echo "${med[$1:search_fd]}"; fi; }
row() { printf '  %-44s %10s\n' "$1" "$2"; }
rrow() { printf '  %-36s %8s   %-8s %s\n' "$1" "$2" "$3" "$4"; }

echo
echo "== median wall time, seconds ($runs runs) =="
for key in usr tree; do
  [[ $key == usr ]] && where=$usr_root || where="generated tree"
  echo "search '$pattern' under $where (${entries[$key]} entries, ${matches[$key]} matches)"
  row "filemesh find --hidden" "${med[$key:search_filemesh]}"
  if [[ -n $fd ]]; then row "fdfind -u -g" "${med[$key:search_fd]}"; else row "fdfind -u -g" "(not installed)"; fi
  row "find -name" "${med[$key:search_find]}"
  row "filemesh_floor (1 thread)" "${med[$key:search_floor]}"
  row "filemesh_parallel_floor ($(nproc) threads)" "${med[$key:search_pfloor]}"
done
echo "search '$pattern' under $usr_root, through a pipe: first match printed / whole run"
for name in filemesh fd; do
  [[ -n ${first[$name]:-} ]] || continue
  row "$name: first match" "${first[$name]}"
  row "$name: whole run" "${whole[$name]}"
done
echo "listing a directory of 100,000 files"
row "filemesh ls --page-size 100 (by name)" "${med[list:ls_filemesh_first]}"
row "ls -f" "${med[list:ls_f]}"
row "filemesh ls --page-size 100 --sort size" "${med[list:ls_filemesh_size]}"
row "find -maxdepth 1 -printf '%s %T@ %p\\n'" "${med[list:find_printf]}"

echo
echo "== ratios (lower is better for filemesh) =="
rrow "ratio" "value" "target" "verdict"
for key in usr tree; do
  [[ $key == usr ]] && where=$usr_root || where=tree
  r_fd=$(ratio "${med[$key:search_filemesh]}" "$(fdv "$key")")
  r_floor=$(ratio "${med[$key:search_filemesh]}" "${med[$key:search_floor]}")
  r_pfloor=$(ratio "${med[$key:search_filemesh]}" "${med[$key:search_pfloor]}")
  r_floors=$(ratio "${med[$key:search_pfloor]}" "${med[$key:search_floor]}")
  r_find=$(ratio "${med[$key:search_filemesh]}" "${med[$key:search_find]}")
  if [[ $key == usr ]]; then
    rrow "search $where filemesh/fd" "$r_fd" "<= 0.5" "$(verdict "$r_fd" 0.5)"
    rrow "search $where filemesh/floor" "$r_floor" "<= 0.6" "$(verdict "$r_floor" 0.6)"
  else
    rrow "search $where filemesh/fd" "$r_fd" "-" ""
    rrow "search $where filemesh/floor" "$r_floor" "-" ""
  fi
  rrow "search $where filemesh/parallel floor" "$r_pfloor" "-" ""
  rrow "  (parallel floor/floor)" "$r_floors" "-" ""
  rrow "search $where filemesh/find" "$r_find" "-" ""
done
r_stream=$(ratio "${first[filemesh]}" "${whole[filemesh]}")
rrow "find $usr_root: first match / whole run" "$r_stream" "<= 0.1" "$(verdict "$r_stream" 0.1)"
if [[ -n ${first[fd]:-} ]]; then
  rrow "  (fd: first match / whole run)" "$(ratio "${first[fd]}" "${whole[fd]}")" "-" ""
fi
r_first=$(ratio "${med[list:ls_filemesh_first]}" "${med[list:ls_f]}")
r_size=$(ratio "${med[list:ls_filemesh_size]}" "${med[list:find_printf]}")
rrow "ls first page / ls -f" "$r_first" "<= 2" "$(verdict "$r_first" 2)"
rrow "ls by size / find -printf" "$r_size" "<= 0.6" "$(verdict "$r_size" 0.6)"
echo

if ((mismatch)); then
  echo "compare.sh: match counts differ (see above)" >&2
  exit 1
fi
