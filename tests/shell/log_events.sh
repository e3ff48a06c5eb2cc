# shellcheck shell=bash
# Shell helpers for scripts that start filemesh programs and read their logs
# (bench/*.sh, .ci/demo). Source it; it defines functions only.
#
#   wait_for_log FILE EVENT [SECONDS]   prints the first line of FILE with
#       event=EVENT, waiting up to SECONDS (default 30) for it; otherwise says
#       so on stderr with the end of FILE, and fails
#   address_of LINE                     the address= field of a log line
#   spawn NAME COMMAND...               runs COMMAND in the background,
#       logging to $work/NAME.log; its pid goes to $spawned and onto the
#       array pids (both the caller's, as is $work)

wait_for_log() {
  local deadline=$((SECONDS + ${3:-30})) line
  while ((SECONDS < deadline)); do
    if line=$(grep -m 1 -a "event=$2\\b" "$1" 2>/dev/null); then
      printf '%s\n' "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "${0##*/}: no event=$2 in $1 within ${3:-30} s; it says:" >&2
  tail -n 20 "$1" >&2
  return 1
}

address_of() { sed -n 's/.*[[:space:]]address=\([^[:space:]]*\).*/\1/p' <<<"$1"; }

spawn() {
  local name=$1
  shift
  # shellcheck disable=SC2154 # $work is the caller's
  "$@" >"$work/$name.log" 2>&1 </dev/null &
  # shellcheck disable=SC2034 # for the caller
  spawned=$!
  pids+=("$spawned")
}
