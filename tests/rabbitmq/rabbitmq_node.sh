#!/usr/bin/env bash
# A private RabbitMQ node for tests: its own state folder, ports, node name and
# epmd, on loopback.
#
#   rabbitmq_node.sh start|stop|restart|kill DIR PORT
#   rabbitmq_node.sh ctl DIR PORT ARGS...     rabbitmqctl ARGS for that node
#   rabbitmq_node.sh free-port [COUNT]
#
# DIR holds the node's state (mnesia, logs, pid, plugins file, cookie) and is
# made if missing. PORT is the AMQP port; the node also uses PORT+1 (Erlang
# distribution) and PORT+2 (its own epmd), so all three must be free. `start`
# waits (at most RABBITMQ_NODE_START_TIMEOUT seconds, default 60) until the
# node accepts AMQP connections and prints the URL. `stop` stops the node and
# its epmd (killing them if a clean stop does not finish in time); stopping a
# node that is not running is not an error. `kill` is kill -9 of the node (a
# node lost as a crash loses it), returning once its process is gone. Needs root (the node runs as the
# `rabbitmq` user, as Debian's scripts arrange). `free-port` prints a PORT
# for `start`: PORT to PORT+COUNT-1 (COUNT defaults to 3) free on 127.0.0.1,
# between 20000 and 32000, below Linux's ephemeral range (where a port free
# now can be taken by any outgoing connection before the node binds it).
#
# A cluster on one machine (RabbitMQ's clustering guide): nodes with
# RABBITMQ_NODE_EPMD_PORT (one epmd for all, started by the first node, left
# running by `stop`: kill it with `epmd -port N -kill` after the last) and
# RABBITMQ_NODE_COOKIE (the Erlang cookie they share), joined with
# `ctl DIR PORT stop_app`, `ctl DIR PORT join_cluster filemesh-test-P1@localhost`
# and `ctl DIR PORT start_app`. RABBITMQ_NODE_ERL_ARGS adds Erlang VM flags
# (e.g. "+sbwt none" when several nodes share the cores).
#
# Nodes on other hosts, or in network namespaces (e2e_multi_host): with
# RABBITMQ_NODE_ADDRESS=A.B.C.D the node listens (AMQP, distribution, its
# epmd) on that IPv4 address instead of 127.0.0.1, and is named
# filemesh-test-PORT@A.B.C.D (long names), so nodes in other namespaces reach
# it by address: join with `ctl DIR PORT join_cluster filemesh-test-P@A.B.C.D`.
# Each namespace then runs its own epmd on RABBITMQ_NODE_EPMD_PORT.
#
# TLS: when DIR/tls holds ca.pem, server.pem and server.key (as made by
# tests/tls/make_certs.sh), the node listens with TLS only (no plain-text
# listener) on PORT, verifies client certificates against ca.pem when given
# (not required), and also offers the EXTERNAL mechanism (the user is the
# client certificate's CN; plugin rabbitmq_auth_mechanism_ssl). The URL
# printed is then amqps://guest:guest@localhost:PORT/ (the certificate names
# localhost).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|restart|kill DIR PORT" >&2
  echo "       $0 ctl DIR PORT ARGS..." >&2
  echo "       $0 free-port [COUNT]" >&2
  exit 2
}

if [[ $# -ge 1 && $1 == free-port ]]; then
  count=${2:-3}
  if ! [[ $count =~ ^[0-9]+$ ]] || ((count < 1 || count > 64)); then
    echo "$0: bad port count '$count' (1 to 64)" >&2
    exit 2
  fi
  exec python3 - "$count" <<'EOF'
import random, socket, sys
count = int(sys.argv[1])
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
for _ in range(200):
    base = random.randint(20000, 32767 - count)
    if all(free(base + i) for i in range(count)):
        print(base)
        sys.exit(0)
print(f"no {count} consecutive free ports found between 20000 and 32767", file=sys.stderr)
sys.exit(1)
EOF
fi

[[ $# -ge 3 ]] || usage
action=$1
dir=$2
port=$3
shift 3
[[ $action == ctl || $# -eq 0 ]] || usage
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65533)); then
  echo "$0: bad port '$port'" >&2
  exit 2
fi

start_timeout=${RABBITMQ_NODE_START_TIMEOUT:-60}
stop_timeout=${RABBITMQ_NODE_STOP_TIMEOUT:-30}
address=${RABBITMQ_NODE_ADDRESS:-127.0.0.1}
if ! [[ $address =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
  echo "$0: RABBITMQ_NODE_ADDRESS must be an IPv4 address, not '$address'" >&2
  exit 2
fi
if [[ $address == 127.0.0.1 ]]; then
  node="filemesh-test-${port}@localhost"
  longnames=()
else
  node="filemesh-test-${port}@${address}"
  longnames=(--longnames)
  export RABBITMQ_USE_LONGNAME=true
fi
dist_port=$((port + 1))
# Nodes of one cluster share an epmd (RABBITMQ_NODE_EPMD_PORT, started by the
# first node and left running by `stop`) and an Erlang cookie
# (RABBITMQ_NODE_COOKIE); a lone node has its own epmd on PORT+2.
shared_epmd=${RABBITMQ_NODE_EPMD_PORT:-}
epmd_port=${shared_epmd:-$((port + 2))}

tls_only() { [[ -f $dir/tls/server.pem ]]; }

node_env() {
  export RABBITMQ_NODENAME="$node"
  if tls_only; then
    # The listeners come from rabbitmq.conf (write_tls_config).
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  else
    export RABBITMQ_NODE_IP_ADDRESS="$address"
    export RABBITMQ_NODE_PORT="$port"
  fi
  export RABBITMQ_DIST_PORT="$dist_port"
  export ERL_EPMD_PORT="$epmd_port"
  export ERL_EPMD_ADDRESS="$address"
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_PID_FILE="$dir/pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/plugins"
  export HOME="$dir"
  # Distribution on that address only, like everything else here.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {${address//./,}} ${RABBITMQ_NODE_ERL_ARGS:-}"
}

ctl() {
  # rabbitmqctl's own timeout, and ours in case it hangs.
  timeout 30 rabbitmqctl "${longnames[@]}" -n "$node" "$@"
}

port_open() {
  (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null
}

beam_pid() {
  # The node's OS pid, if it still runs: from the copy `start` keeps (the
  # node removes its own pid file before its process has exited), else from
  # the node's pid file.
  local pid file
  for file in "$dir/beam.pid" "$dir/pid"; do
    pid=$(cat "$file" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
  done
  return 0
}

write_tls_config() {
  cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp = none
listeners.ssl.default = $address:$port
ssl_options.cacertfile = $dir/tls/ca.pem
ssl_options.certfile = $dir/tls/server.pem
ssl_options.keyfile = $dir/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
ssl_cert_login_from = common_name
CONF
  echo '[rabbitmq_auth_mechanism_ssl].' >"$dir/plugins"
}

start() {
  mkdir -p "$dir/mnesia" "$dir/log"
  echo '[].' >"$dir/plugins"
  if tls_only; then write_tls_config; fi
  if [[ -n ${RABBITMQ_NODE_COOKIE:-} ]]; then
    printf '%s' "$RABBITMQ_NODE_COOKIE" >"$dir/.erlang.cookie"
    chmod 400 "$dir/.erlang.cookie"
  fi
  chown -R rabbitmq:rabbitmq "$dir"
  node_env
  local p ports=("$port" "$dist_port")
  [[ -n $shared_epmd ]] || ports+=("$epmd_port")
  for p in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/$address/$p") 2>/dev/null; then
      echo "$0: port $p is already in use (the node needs $port, $dist_port and $epmd_port)" >&2
      exit 1
    fi
  done
  # The node's own epmd (or the cluster's, if not running yet), on loopback
  # (before anything else starts one). It daemonizes even when it cannot bind
  # its port: check that it answers.
  if [[ -z $shared_epmd ]] || ! epmd -port "$epmd_port" -names >/dev/null 2>&1; then
    epmd -daemon -address "$address" -port "$epmd_port"
  fi
  local epmd_deadline=$((SECONDS + 10))
  until epmd -port "$epmd_port" -names >/dev/null 2>&1; do
    if ((SECONDS >= epmd_deadline)); then
      echo "$0: epmd did not come up on $address:$epmd_port (is the port taken?)" >&2
      exit 1
    fi
    sleep 0.1
  done
  # setsid: the node must not die with the caller's process group or terminal.
  setsid rabbitmq-server >"$dir/log/console.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + start_timeout))
  until port_open; do
    if ((SECONDS >= deadline)); then
      echo "$0: node $node did not listen on $port within ${start_timeout}s; log:" >&2
      tail -n 30 "$dir/log/console.log" >&2 || true
      stop_node
      exit 1
    fi
    sleep 0.2
  done
  if ! ctl --timeout "$start_timeout" await_startup >/dev/null; then
    echo "$0: node $node did not finish starting" >&2
    stop_node
    exit 1
  fi
  cp "$dir/pid" "$dir/beam.pid"
  if tls_only; then
    echo "amqps://guest:guest@localhost:${port}/"
  else
    echo "amqp://guest:guest@${address}:${port}/"
  fi
}

stop_node() {
  node_env
  local pid
  pid=$(beam_pid)
  if [[ -n $pid ]] || port_open; then
    ctl stop >/dev/null 2>&1 || true
  fi
  local deadline=$((SECONDS + stop_timeout))
  while [[ -n $(beam_pid) ]] && ((SECONDS < deadline)); do sleep 0.2; done
  pid=$(beam_pid)
  if [[ -n $pid ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # The node's own epmd (a cluster's shared one stays for the other nodes).
  [[ -n $shared_epmd ]] || epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
  rm -f "$dir/pid" "$dir/beam.pid"
}

kill_node() {
  local pid
  pid=$(beam_pid)
  [[ -n $pid ]] || return 0
  kill -KILL "$pid"
  local deadline=$((SECONDS + stop_timeout))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  # Its own epmd (if it had one) forgets it when it dies; the pid files stay
  # for `stop`, which finds nothing running.
}

case $action in
  start) start ;;
  stop) stop_node ;;
  kill) kill_node ;;
  ctl)
    node_env
    ctl "$@"
    ;;
  restart)
    stop_node
    start
    ;;
  *) usage ;;
esac
