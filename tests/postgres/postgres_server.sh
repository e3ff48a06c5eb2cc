#!/usr/bin/env bash
# A private PostgreSQL 15 server for tests: its own folder and port, on
# loopback, as Debian's `postgres` user.
#
#   postgres_server.sh start|stop|restart|crash-restart DIR PORT
#   postgres_server.sh psql DIR PORT SQL [DB]  runs SQL as the superuser (in
#                                              database DB, default postgres)
#
# DIR holds the cluster (DIR/data, made by initdb on the first start), its
# socket and logs; it is made if missing and handed to the postgres user.
# The server listens on 127.0.0.1:PORT and on a socket in DIR. Local (socket)
# connections are trusted; TCP ones need a password (scram-sha-256), so set
# one with `psql DIR PORT "ALTER USER postgres PASSWORD '...'"` or make
# users. `start` waits (at most 60 s) until the server accepts connections.
# `stop` is a fast stop (no error when it is not running); `crash-restart`
# stops it as a crash would (immediate mode: connections cut, no checkpoint)
# and starts it again on the same port.
#
# TLS: when DIR/tls holds ca.pem, server.pem and server.key (as made by
# tests/tls/make_certs.sh), the server also accepts TLS (ssl=on) with that
# certificate; clients ask for it with sslmode (verify-full checks the
# certificate's names: localhost, 127.0.0.1).
#
# Other hosts, or network namespaces (e2e_multi_host): with
# POSTGRES_SERVER_ADDRESS=A.B.C.D the server listens on that address instead
# of 127.0.0.1, and POSTGRES_SERVER_CLIENTS=CIDR lets clients of that range
# in with a password (pg_hba.conf, written at the first start).
#
# Tuned for tests, not for data: fsync is off.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|restart|crash-restart DIR PORT" >&2
  echo "       $0 psql DIR PORT SQL [DB]" >&2
  exit 2
}

[[ $# -ge 3 ]] || usage
action=$1
dir=$2
port=$3
shift 3
[[ $action == psql && ($# -eq 1 || $# -eq 2) || $action != psql && $# -eq 0 ]] || usage
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
  echo "$0: bad port '$port'" >&2
  exit 2
fi

bin=/usr/lib/postgresql/15/bin
[[ -x $bin/pg_ctl ]] || { echo "$0: no PostgreSQL 15 (apt-get install postgresql-15)" >&2; exit 1; }

as_postgres() {
  if [[ $(id -un) == postgres ]]; then
    "$@"
  else
    runuser -u postgres -- "$@"
  fi
}

data=$dir/data
address=${POSTGRES_SERVER_ADDRESS:-127.0.0.1}
clients=${POSTGRES_SERVER_CLIENTS:-}

server_options() {
  local options="-p $port -k $dir -c listen_addresses=$address -c fsync=off"
  options+=" -c max_connections=40 -c shared_buffers=16MB"
  if [[ -f $dir/tls/server.pem ]]; then
    options+=" -c ssl=on -c ssl_cert_file=$dir/tls/server.pem"
    options+=" -c ssl_key_file=$dir/tls/server.key -c ssl_ca_file=$dir/tls/ca.pem"
  fi
  printf '%s' "$options"
}

start() {
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres "$dir"
    if [[ -d $dir/tls ]]; then
      chown -R postgres "$dir/tls"
      chmod 600 "$dir/tls/server.key"
    fi
  fi
  if [[ ! -f $data/PG_VERSION ]]; then
    as_postgres "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C --no-sync \
      --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log"
    if [[ -n $clients ]]; then
      echo "host all all $clients scram-sha-256" >>"$data/pg_hba.conf"
    fi
  fi
  as_postgres "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "$(server_options)" start >/dev/null
  echo "postgresql://$address:$port/postgres"
}

stop() { # MODE
  if [[ -f $data/postmaster.pid ]]; then
    as_postgres "$bin/pg_ctl" -D "$data" -m "$1" -w -t 60 stop >/dev/null
  fi
}

case $action in
  start) start ;;
  stop) stop fast ;;
  restart) stop fast && start ;;
  crash-restart) stop immediate && start ;;
  psql)
    as_postgres "$bin/psql" -h "$dir" -p "$port" -U postgres -d "${2:-postgres}" \
      -v ON_ERROR_STOP=1 -X -q -A -t -c "$1"
    ;;
  *) usage ;;
esac
