"""Harness for the end-to-end tests: real mserv1, mserv2 and gateway
processes, a private RabbitMQ node, and a sample tree on disk.

Everything runs on loopback. The services and the gateway log in to the
broker as users of their own (mserv1, mserv2, gateway) with the permissions
docs/protocol.md gives, and the gateway believes only the services' replies
(--amqp_service_users): start_mserv and start_gateway turn a broker's guest
URL into their user's. Every process and broker started here is
registered and stopped by the test's cleanup, and again at interpreter exit,
whatever happened. Waiting is always a bounded poll of a condition
(wait_until, wait_for_log); nothing sleeps to synchronise.

Each test file ends with `harness.main()`, which takes the binaries' paths
from the command line (ctest passes them) and runs unittest:

    python3 test_rest_api.py --mserv1 PATH --mserv2 PATH --gateway PATH
        --broker-script tests/rabbitmq/rabbitmq_node.sh [unittest arguments]

(one command line; FILEMESH_E2E_ECHO=1 copies every process's log lines to
stderr as they come.)
"""

import argparse
import atexit
import base64
import ctypes
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

# Set by main(): paths of the binaries and of the broker script.
BINARIES = {"mserv1": None, "mserv2": None, "gateway": None, "broker_script": None}

# ctest treats this exit code as "skipped" (SKIP_RETURN_CODE).
SKIP_EXIT_CODE = 77

_LIVE = []  # processes and brokers still to stop at exit
_LIVE_LOCK = threading.Lock()


def _register(thing):
    with _LIVE_LOCK:
        _LIVE.append(thing)


def _unregister(thing):
    with _LIVE_LOCK:
        if thing in _LIVE:
            _LIVE.remove(thing)


@atexit.register
def _stop_everything():
    with _LIVE_LOCK:
        things = list(reversed(_LIVE))
    for thing in things:
        try:
            thing.close()
        except Exception as e:  # pylint: disable=broad-except
            print(f"harness: cleanup of {thing!r} failed: {e}", file=sys.stderr)


def _exit_on_term(signum, _frame):
    # ctest (or a user) ending the run: let atexit stop the processes.
    sys.exit(128 + signum)


# ---------------------------------------------------------------------------
# Waiting


def wait_until(predicate, timeout, what="condition", interval=0.05):
    """Polls `predicate` until it returns something truthy, and returns that.
    Fails the test (AssertionError) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def wait_for_log(proc, event, timeout=30, **fields):
    """The first log event `event` of `proc` whose fields include `fields`."""
    return proc.wait_for_log(event, timeout, **fields)


# ---------------------------------------------------------------------------
# Log lines: key=value pairs, values quoted with escapes when needed.

_PAIR = re.compile(r'([A-Za-z0-9_.\-]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_log_line(line):
    """{key: value} of one key=value log line (quoted values unescaped)."""
    fields = {}
    for key, value in _PAIR.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(
                m.group(1), m.group(1)), value[1:-1])
        fields[key] = value
    return fields


# ---------------------------------------------------------------------------
# Ports


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count=1, attempts=200):
    """`count` consecutive free loopback ports, below the ephemeral range so
    that no outgoing connection takes them while a process is down (a
    restarted replica or broker comes back on the same port)."""
    high = _ephemeral_low() - count
    for _ in range(attempts):
        base = random.randint(20000, high)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def free_port():
    return free_ports(1)


def loopback(port):
    return f"127.0.0.1:{port}"


def _listen_address(address):
    """`address`, with port 0 ("127.0.0.1:0") replaced by a free port below
    the ephemeral range: servers under test never take a port there."""
    if address.endswith(":0"):
        return f"{address[:-2]}:{free_port()}"
    return address


# ---------------------------------------------------------------------------
# Processes

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # If the test runner is killed outright, its children go too. (Cleared by
    # the kernel when the child changes user, as under setpriv.)
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def running_as_root():
    return os.geteuid() == 0


def unprivileged_prefix():
    """argv prefix running a command as `nobody` (root only): mode bits then
    apply to it, so an unreadable directory really is unreadable."""
    if not running_as_root():
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


class Process:
    """A child process whose stdout and stderr lines are collected by a
    reader thread, parsed as key=value log events."""

    def __init__(self, name, argv, env=None, prefix=()):
        self.name = name
        self.argv = list(prefix) + [str(a) for a in argv]
        full_env = dict(os.environ)
        # A FILEMESH_* variable of the caller must not configure the child.
        for key in list(full_env):
            if key.startswith("FILEMESH_"):
                del full_env[key]
        full_env.update(env or {})
        self._lines = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      env=full_env, preexec_fn=_die_with_parent)
        self.pid = self.popen.pid
        _register(self)
        self._reader = threading.Thread(target=self._read, name=f"log-{name}", daemon=True)
        self._reader.start()

    def __repr__(self):
        return f"<Process {self.name} pid={self.pid}>"

    def _read(self):
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "backslashreplace").rstrip("\n")
            if os.environ.get("FILEMESH_E2E_ECHO"):
                print(f"[{self.name}] {line}", file=sys.stderr)
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def lines(self):
        with self._cond:
            return list(self._lines)

    def mark(self):
        """A position in the log, for events(since=...)."""
        with self._cond:
            return len(self._lines)

    def events(self, event, since=0, **fields):
        """Parsed log lines of `event` whose fields include `fields` (from
        position `since` on)."""
        found = []
        for line in self.lines()[since:]:
            parsed = parse_log_line(line)
            if parsed.get("event") != event:
                continue
            if all(parsed.get(k) == str(v) for k, v in fields.items()):
                found.append(parsed)
        return found

    def wait_for_log(self, event, timeout=30, **fields):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    parsed = parse_log_line(line)
                    if parsed.get("event") == event and all(
                            parsed.get(k) == str(v) for k, v in fields.items()):
                        return parsed
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    break
                self._cond.wait(min(left, 0.5))
        state = "running" if self.popen.poll() is None else f"exited {self.popen.returncode}"
        raise AssertionError(f"{self.name} ({state}) logged no event={event} {fields} within "
                             f"{timeout}s; last lines:\n" + "\n".join(self.lines()[-25:]))

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self):
        """SIGKILL, then reap."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self._reader.join(timeout=5)
        if not self._reader.is_alive():
            self.popen.stdout.close()
        _unregister(self)

    def stop(self, timeout=15):
        """SIGTERM; the exit code, or None if it had to be killed."""
        if not self.alive():
            self.kill()
            return self.popen.returncode
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        return code

    def close(self):
        self.kill()

    def _status_kib(self, field):
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def peak_rss_kib(self):
        """VmHWM of the process, in KiB."""
        return self._status_kib("VmHWM")

    def rss_kib(self):
        """VmRSS of the process, in KiB."""
        return self._status_kib("VmRSS")


def start_mserv(binary_key, root, grpc_listen="", amqp_url="", queue_prefix="", threads=2,
                log_calls=False, name=None, prefix=(), wait=True, extra=()):
    """mserv1 or mserv2; waits until it listens (gRPC) and consumes (AMQP).
    With grpc_listen "127.0.0.1:0" a free port below the ephemeral range is
    chosen; the address is in `.grpc_address`."""
    grpc_listen = _listen_address(grpc_listen)
    amqp_url = broker_url_as(amqp_url, binary_key)
    argv = [BINARIES[binary_key], f"--root={root}", f"--grpc_listen={grpc_listen}",
            f"--amqp_url={amqp_url}", f"--queue_prefix={queue_prefix}", f"--threads={threads}"]
    if log_calls:
        argv.append("--log_calls")
    argv.extend(extra)
    proc = Process(name or binary_key, argv, prefix=prefix)
    proc.grpc_address = None
    if wait:
        if grpc_listen:
            proc.grpc_address = proc.wait_for_log("grpc_listening", 30)["address"]
        if amqp_url:
            proc.wait_for_log("amqp_connected", 60)
    return proc


def start_gateway(lister_grpc="", searcher_grpc="", amqp_url="", queue_prefix="", api_key="",
                  request_timeout="5s", attempt_timeout="250ms", breaker_cooldown="1s",
                  listen="127.0.0.1:0", extra=(), name="gateway", env=None, prefix=()):
    """The gateway; waits until it listens. `.http` is a client for it.
    Port 0 in `listen` means a free port below the ephemeral range."""
    listen = _listen_address(listen)
    if "//guest:guest@" in amqp_url:
        amqp_url = broker_url_as(amqp_url, "gateway")
        extra = ("--amqp_service_users=mserv1,mserv2", *extra)
    argv = [BINARIES["gateway"], f"--listen={listen}", f"--lister_grpc={lister_grpc}",
            f"--searcher_grpc={searcher_grpc}", f"--amqp_url={amqp_url}",
            f"--queue_prefix={queue_prefix}", f"--request_timeout={request_timeout}",
            f"--attempt_timeout={attempt_timeout}", f"--breaker_cooldown={breaker_cooldown}"]
    if api_key:
        argv.append(f"--api_key={api_key}")
    argv.extend(extra)
    proc = Process(name, argv, env=env, prefix=prefix)
    address = proc.wait_for_log("http_listening", 30)["address"]
    host, port = address.rsplit(":", 1)
    proc.http = HttpClient(host, int(port), api_key=api_key or None)
    return proc


# ---------------------------------------------------------------------------
# A private RabbitMQ node


# The broker users the services and the gateway log in as, with the
# permissions of docs/protocol.md ("Broker users and permissions") for any
# queue prefix: (configure, write, read) regular expressions.
_ANY_PREFIX = r"(.*\.)?"


def _service_permissions(service):
    queues = rf"^({_ANY_PREFIX}filemesh\.v1\.{service}(\.dlq)?|filemesh\.dlx)$"
    write = rf"^({_ANY_PREFIX}filemesh\.v1\.{service}\.dlq|filemesh\.dlx|amq\.default)$"
    return queues, write, queues


_GATEWAY_QUEUES = (rf"^({_ANY_PREFIX}(filemesh\.v1\.(FileLister|FileSearcher)(\.dlq)?|"
                   rf"filemesh\.reply\..+)|filemesh\.dlx)$")
BROKER_USERS = {
    "mserv1": _service_permissions("FileLister"),
    "mserv2": _service_permissions("FileSearcher"),
    "gateway": (_GATEWAY_QUEUES,
                rf"^({_ANY_PREFIX}filemesh\.v1\.(FileLister|FileSearcher)\.dlq|filemesh\.dlx|"
                r"amq\.default)$",
                _GATEWAY_QUEUES),
}


def broker_url_as(url, user):
    """`url` (a test broker's guest URL, or a cluster's list of them) logging
    in as `user` of BROKER_USERS instead: the services and the gateway never
    use guest."""
    if user not in BROKER_USERS or "//guest:guest@" not in url:
        return url
    return url.replace("//guest:guest@", f"//{user}:{user}-e2e-password@")


class Broker:
    """A RabbitMQ node of its own (tests/rabbitmq/rabbitmq_node.sh) in a
    temporary directory, on ports PORT, PORT+1 and PORT+2 of loopback, with a
    broker user per process (BROKER_USERS); `url` is guest's, for the tests'
    own inspection."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="filemesh-e2e-broker-")
        self.port = None
        self.url = None
        _register(self)

    def __repr__(self):
        return f"<Broker port={self.port}>"

    def _script(self, action, timeout=150):
        return subprocess.run(["bash", BINARIES["broker_script"], action, self.dir,
                               str(self.port)], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self):
        """Starts the node (on fresh ports the first time, on the same ones
        after stop()); returns its AMQP URL."""
        fresh = self.port is None
        for _ in range(3 if fresh else 1):
            if fresh:
                self.port = free_ports(3)
            done = self._script("start")
            if done.returncode == 0:
                self.url = done.stdout.strip().splitlines()[-1]
                self._add_users()
                return self.url
            last = done
        raise RuntimeError(f"broker did not start on {self.port}:\n{last.stdout}\n{last.stderr}")

    def _ctl(self, *args):
        return subprocess.run(["bash", BINARIES["broker_script"], "ctl", self.dir,
                               str(self.port), *args], capture_output=True, text=True,
                              timeout=60, check=False)

    def _add_users(self):
        # Users outlive a restart of the node (its state folder stays).
        for user, (configure, write, read) in BROKER_USERS.items():
            self._ctl("add_user", user, f"{user}-e2e-password")
            done = self._ctl("set_permissions", "-p", "/", user, configure, write, read)
            if done.returncode != 0:
                raise RuntimeError(f"set_permissions {user}: {done.stdout}{done.stderr}")

    def stop(self):
        if self.port is not None:
            self._script("stop")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        _unregister(self)


class BrokerCluster:
    """Three (or `size`) RabbitMQ nodes of a cluster (tests/rabbitmq/
    rabbitmq_node.sh: one Erlang cookie for all, the others joined to the
    first), with BROKER_USERS; `urls` lists them first node first (guest's).
    On loopback, node i listens on base + 3i and they share one epmd. With a
    Network, node i runs in its namespace `b<i+1>` on that address, port 5672
    (AMQP), 5673 (distribution) and 5674 (its namespace's epmd)."""

    def __init__(self, size=3, network=None):
        self.size = size
        self.network = network
        self.dir = tempfile.mkdtemp(prefix="filemesh-e2e-cluster-")
        os.chmod(self.dir, 0o755)  # the rabbitmq user reaches the nodes' folders
        self.base = None
        self.urls = []
        _register(self)

    def __repr__(self):
        return f"<BrokerCluster base={self.base}>"

    def role(self, node):
        """The network namespace role of node `node` (with a Network)."""
        return f"b{node + 1}"

    def _port(self, node):
        return self.base if self.network else self.base + 3 * node

    def _node_name(self, node):
        host = self.network.address(self.role(node)) if self.network else "localhost"
        return f"filemesh-test-{self._port(node)}@{host}"

    def _env(self, node):
        env = dict(os.environ)
        env["RABBITMQ_NODE_EPMD_PORT"] = str(self.base + 2)
        env["RABBITMQ_NODE_COOKIE"] = f"filemeshe2e{self.base}"
        if self.network:
            env["RABBITMQ_NODE_ADDRESS"] = self.network.address(self.role(node))
        return env

    def _script(self, action, node, *args, timeout=150):
        prefix = self.network.exec_prefix(self.role(node)) if self.network else ()
        return subprocess.run([*prefix, "bash", BINARIES["broker_script"], action,
                               os.path.join(self.dir, f"node{node}"), str(self._port(node)),
                               *args], capture_output=True, text=True, timeout=timeout,
                              check=False, env=self._env(node))

    def _must(self, done, what):
        if done.returncode != 0:
            raise RuntimeError(f"{what}: {done.stdout}{done.stderr}")
        return done

    def start(self):
        """Starts and joins the nodes; returns their URLs, comma-separated."""
        self.base = 5672 if self.network else free_ports(3 * self.size)
        for i in range(self.size):
            done = self._must(self._script("start", i), f"node {i} did not start")
            self.urls.append(done.stdout.strip().splitlines()[-1])
        for i in range(1, self.size):
            for args in (["stop_app"], ["join_cluster", self._node_name(0)], ["start_app"],
                         ["await_startup"]):
                self._must(self._script("ctl", i, *args), f"node {i}: rabbitmqctl {args[0]}")
        # Users live in the cluster's shared state: made once, on the first.
        for user, (configure, write, read) in BROKER_USERS.items():
            self._script("ctl", 0, "add_user", user, f"{user}-e2e-password")
            self._must(self._script("ctl", 0, "set_permissions", "-p", "/", user, configure,
                                    write, read), f"set_permissions {user}")
        return self.url_list()

    def url_list(self, first=0):
        """The nodes' URLs, from node `first` on, comma-separated."""
        order = self.urls[first:] + self.urls[:first]
        return ",".join(order)

    def kill(self, node):
        """kill -9 of node `node`."""
        self._must(self._script("kill", node), f"kill node {node}")

    def ctl(self, node, *args):
        """rabbitmqctl ARGS on node `node`; its output."""
        return self._must(self._script("ctl", node, *args), f"rabbitmqctl {args}").stdout

    def close(self):
        if self.base is not None:
            for i in reversed(range(self.size)):
                self._script("stop", i)
            epmds = ([self.network.exec_prefix(self.role(i)) for i in range(self.size)]
                     if self.network else [()])
            for prefix in epmds:
                subprocess.run([*prefix, "epmd", "-port", str(self.base + 2), "-kill"],
                               capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        _unregister(self)


class Postgres:
    """A PostgreSQL 15 server of its own (tests/postgres/postgres_server.sh,
    beside the broker script) in a temporary directory on a loopback port;
    `url()` is the superuser's, with a password, over TCP."""

    PASSWORD = "filemesh-e2e-password"

    def __init__(self, network=None, role="pg"):
        self.dir = tempfile.mkdtemp(prefix="filemesh-e2e-postgres-")
        self.port = None
        self.network = network
        self.role = role
        self.host = network.address(role) if network else "127.0.0.1"
        self.script = os.path.join(os.path.dirname(BINARIES["broker_script"]), "..", "postgres",
                                   "postgres_server.sh")
        _register(self)

    def __repr__(self):
        return f"<Postgres port={self.port}>"

    def _script(self, action, *args):
        env = dict(os.environ)
        prefix = ()
        if self.network:
            prefix = self.network.exec_prefix(self.role)
            env["POSTGRES_SERVER_ADDRESS"] = self.host
            env["POSTGRES_SERVER_CLIENTS"] = self.network.subnet
        return subprocess.run([*prefix, "bash", self.script, action, self.dir, str(self.port),
                               *args], capture_output=True, text=True, timeout=120, check=False,
                              env=env)

    def start(self):
        for _ in range(3):
            self.port = 5432 if self.network else free_port()
            done = self._script("start")
            if done.returncode == 0:
                self.psql(f"ALTER USER postgres PASSWORD '{self.PASSWORD}'")
                return self.url()
            last = done
        raise RuntimeError(f"PostgreSQL did not start:\n{last.stdout}\n{last.stderr}")

    def url(self, database="postgres"):
        return f"postgresql://postgres:{self.PASSWORD}@{self.host}:{self.port}/{database}"

    def psql(self, sql, database="postgres"):
        """Runs `sql` as the superuser in `database`; returns what it
        printed (unaligned, tuples only)."""
        done = self._script("psql", sql, database)
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql}: {done.stdout}{done.stderr}")
        return done.stdout

    def close(self):
        if self.port is not None:
            self._script("stop")
        shutil.rmtree(self.dir, ignore_errors=True)
        _unregister(self)


# ---------------------------------------------------------------------------
# Network namespaces (e2e_multi_host)

_CLONE_NEWNET = 0x40000000


def _ip(*args):
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Network:
    """Network namespaces of the test's own, one per role, each with an
    address of 10.231.77.0/24 on a veth whose other end is on one bridge (in
    a namespace of its own too): hosts on one switch. The test's threads
    join a role's namespace with enter(). close() kills whatever still runs
    in them and removes them."""

    subnet = "10.231.77.0/24"

    def __init__(self, roles):
        """`roles`: {role: last byte of its address}."""
        self.tag = f"fm{os.getpid()}"
        self.roles = dict(roles)
        self._original = None
        self._made = []
        _register(self)

    def __repr__(self):
        return f"<Network {self.tag} {sorted(self.roles)}>"

    def ns(self, role):
        return f"{self.tag}-{role}"

    def address(self, role):
        return f"10.231.77.{self.roles[role]}"

    def exec_prefix(self, role):
        """argv prefix running a command in `role`'s namespace."""
        return ("ip", "netns", "exec", self.ns(role))

    def start(self):
        hub = self.ns("hub")
        _ip("netns", "add", hub)
        self._made.append(hub)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        for role, last in self.roles.items():
            ns = self.ns(role)
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", hub, "link", "add", f"v{last}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("-n", hub, "link", "set", f"v{last}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(role)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    def enter(self, role):
        """Moves this thread (and the threads and processes it starts from
        now on) into `role`'s namespace."""
        if self._original is None:
            self._original = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.ns(role)}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns(role)}")
        finally:
            os.close(fd)

    def leave(self):
        if self._original is not None:
            _libc.setns(self._original, _CLONE_NEWNET)
            os.close(self._original)
            self._original = None

    def drop(self, role, peer):
        """Silently drops every packet between `role` and `peer` (nftables in
        `role`'s namespace: no RST, no ICMP), as a dead link does."""
        address = self.address(peer)
        rules = (f"table inet filemesh_drop {{\n"
                 f"  chain input {{ type filter hook input priority 0; ip saddr {address} drop; }}\n"
                 f"  chain output {{ type filter hook output priority 0; ip daddr {address} drop; }}\n"
                 f"}}\n")
        subprocess.run([*self.exec_prefix(role), "nft", "-f", "-"], input=rules, text=True,
                       check=True, timeout=30)

    def heal(self, role):
        """Undoes drop() in `role`'s namespace."""
        subprocess.run([*self.exec_prefix(role), "nft", "delete", "table", "inet",
                        "filemesh_drop"], check=True, timeout=30)

    def close(self):
        self.leave()
        for ns in reversed(self._made):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                                  check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._made = []
        _unregister(self)


# ---------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def content_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip()

    def __repr__(self):
        return f"<{self.status} {self.content_type} {self.body[:400]!r}>"


class HttpClient:
    """One request per connection, to the gateway on loopback."""

    def __init__(self, host, port, api_key=None, ssl_context=None):
        self.host = host
        self.port = port
        self.api_key = api_key
        self.ssl_context = ssl_context  # HTTPS when set

    def request(self, path, params=None, method="GET", headers=None, auth=True, timeout=15):
        target = path
        if params:
            target += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        all_headers = {}
        if auth and self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        all_headers.update(headers or {})
        if self.ssl_context is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        start = time.monotonic()
        try:
            conn.request(method, target, headers=all_headers)
            reply = conn.getresponse()
            body = reply.read()
            elapsed = time.monotonic() - start
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, body,
                            elapsed)
        finally:
            conn.close()

    def get(self, path, params=None, **kwargs):
        return self.request(path, params, **kwargs)


class Load:
    """A steady stream of GETs from `threads` threads until stop(), or until
    `max_seconds` or `max_requests` (per thread) run out. Records every
    outcome: (start, end, status, served_by or None, error text or None)."""

    def __init__(self, client, path, params, check=None, threads=2, pace=0.01, max_seconds=60,
                 max_requests=5000):
        self.client = client
        self.path = path
        self.params = params
        self.check = check  # check(response) -> error text or None
        self.pace = pace
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.outcomes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() >= deadline:
                return
            start = time.monotonic()
            served_by = error = None
            status = 0
            try:
                r = self.client.get(self.path, self.params, timeout=30)
                status = r.status
                if r.status == 200:
                    served_by = r.json().get("served_by")
                    error = self.check(r) if self.check else None
                else:
                    error = f"HTTP {r.status}: {r.body[:300]!r}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                error = f"{type(e).__name__}: {e}"
            with self._lock:
                self.outcomes.append((start, time.monotonic(), status, served_by, error))
            self._stop.wait(self.pace)

    def snapshot(self):
        with self._lock:
            return list(self.outcomes)

    def count(self):
        with self._lock:
            return len(self.outcomes)

    def last_served_by(self, n):
        """served_by of the last `n` outcomes (fewer if not yet made)."""
        with self._lock:
            return [o[3] for o in sorted(self.outcomes)[-n:]]

    def stopped(self):
        return self._stop.is_set()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        return self.snapshot()


# ---------------------------------------------------------------------------
# The sample tree


def display_form(name):
    """docs/names.md: valid UTF-8 kept, every other byte written as \\xHH."""
    return name.decode("utf-8", "backslashreplace")


def exact_name(entry):
    """The exact bytes of a JSON FileEntry's name (raw_name if set)."""
    raw = entry.get("raw_name")
    if raw:
        return base64.b64decode(raw)
    return entry["name"].encode("utf-8")


def exact_path(entry):
    raw = entry.get("raw_path")
    if raw:
        return base64.b64decode(raw)
    return entry["path"].encode("utf-8")


FILE_TYPES = {"file": "FILE_TYPE_FILE", "directory": "FILE_TYPE_DIRECTORY",
              "symlink": "FILE_TYPE_SYMLINK", "other": "FILE_TYPE_OTHER"}


def _kind(st):
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "other"


class SampleTree:
    """A directory with known content, in a fresh temporary folder:

        README.md  notes.txt  big.bin  .hidden  r\\xe9sum\\xe9.txt (Latin-1)
        docs/{a.md, b.md, guide.MD, sub/{deep.md, .secret.md}}  caf\\xff/menu.md
        link -> docs   outside -> /etc
        fifo (when fifo=True)   locked/ (mode 000, with locked=True)

    Expected answers are computed from what is on disk (os.lstat, listdir),
    as the service itself would see it."""

    def __init__(self, locked=False, fifo=False):
        self.base = tempfile.mkdtemp(prefix="filemesh-e2e-tree-")
        os.chmod(self.base, 0o755)  # readable by a service running as nobody
        self.root = os.path.join(self.base, "root")
        self.root_b = os.fsencode(self.root)
        os.mkdir(self.root, 0o755)
        files = {b"README.md": 120, b"notes.txt": 33, b"big.bin": 5000, b".hidden": 7,
                 b"r\xe9sum\xe9.txt": 64, b"docs/a.md": 10, b"docs/b.md": 2048,
                 b"docs/guide.MD": 300, b"docs/sub/deep.md": 1, b"docs/sub/.secret.md": 42,
                 b"caf\xff/menu.md": 12}
        for rel in (b"docs", b"docs/sub", b"caf\xff"):
            os.mkdir(os.path.join(self.root_b, rel), 0o755)
        for rel, size in files.items():
            with open(os.path.join(self.root_b, rel), "wb") as f:
                f.write(b"x" * size)
            os.chmod(os.path.join(self.root_b, rel), 0o644)
        os.symlink(b"docs", os.path.join(self.root_b, b"link"))
        os.symlink(b"/etc", os.path.join(self.root_b, b"outside"))  # leaves the root
        if fifo:
            os.mkfifo(os.path.join(self.root_b, b"fifo"), 0o644)
        self.locked = None
        if locked:
            self.locked = b"locked"
            path = os.path.join(self.root_b, b"locked")
            os.mkdir(path, 0o755)
            with open(os.path.join(path, b"inside.md"), "wb") as f:
                f.write(b"secret")
            os.chmod(path, 0)
        # Distinct modification times, so sorting by time has one answer.
        base_ns = 1_600_000_000 * 10**9
        for i, name in enumerate(sorted(os.listdir(self.root_b))):
            os.utime(os.path.join(self.root_b, name), ns=(base_ns + i * 10**9,
                                                           base_ns + i * 10**9),
                     follow_symlinks=False)
        _register(self)

    def close(self):
        if self.locked is not None:
            os.chmod(os.path.join(self.root_b, self.locked), 0o755)
        shutil.rmtree(self.base, ignore_errors=True)
        _unregister(self)

    def path(self, rel):
        return os.path.join(self.root_b, rel)

    def lstat(self, rel):
        return os.lstat(self.path(rel))

    def listing(self, rel=b"", hidden=False):
        """[(name bytes, kind, lstat)] of a directory, in byte order."""
        out = []
        for name in sorted(os.listdir(self.path(rel) if rel else self.root_b)):
            if name.startswith(b".") and not hidden:
                continue
            st = os.lstat(os.path.join(self.path(rel) if rel else self.root_b, name))
            out.append((name, _kind(st), st))
        return out

    def walk(self, rel=b"", hidden=False, unreadable=()):
        """[(path relative to `rel`, path relative to root, name, kind, lstat,
        depth)] of every entry below `rel`, sorted by root-relative path; the
        directories in `unreadable` are reported but not entered (as a
        service that cannot read them would)."""
        out = []

        def visit(dir_rel, depth):
            for name, kind, st in self.listing(dir_rel, hidden):
                path = dir_rel + b"/" + name if dir_rel else name
                below = path[len(rel) + 1:] if rel else path
                out.append((below, path, name, kind, st, depth))
                if kind == "directory" and path not in unreadable:
                    visit(path, depth + 1)

        visit(rel, 1)
        out.sort(key=lambda e: e[1])
        return out


# ---------------------------------------------------------------------------
# Test plumbing


class ProcessTestCase(unittest.TestCase):
    """Stops, in its cleanup, every process a test started with spawn()."""

    def spawn(self, proc):
        self.addCleanup(proc.close)
        return proc

    def mserv(self, *args, **kwargs):
        return self.spawn(start_mserv(*args, **kwargs))

    def gateway(self, **kwargs):
        return self.spawn(start_gateway(**kwargs))


def listing_check(tree, rel):
    """A Load check: the response lists exactly the entries of `rel`."""
    expected = [rel + b"/" + name for name, _, _ in tree.listing(rel)]

    def check(response):
        got = [exact_path(e) for e in response.json().get("entries", [])]
        return None if got == expected else f"listed {got}, expected {expected}"

    return check


def breaker_recovery_bound(downtime, cooldown):
    """Longest a recovered gRPC replica may wait before the gateway's breaker
    sends calls to it again, in seconds, derived from the configured breaker
    cooldown `c` and how long the replica was away (`downtime`, from its
    failure to its being back).

    The breaker probes at open + c, + 3c, + 7c, ... (each failed probe doubles
    the cooldown), so a probe comes at most one more probe interval after the
    channel has reconnected: within (downtime + reconnect) + c of the
    replica's return. The channel reconnects at gRPC's next attempt, whose
    backoff (0.1 s, x1.6, 20 % jitter, at most 5 s and never above the
    breaker cooldown) has grown to at most 1.2 x (downtime + 0.1 s). The bound doubles that reconnect time and the
    cooldown, and adds 2 s for a loaded 2-core machine."""
    reconnect = min(6.0, 1.2 * (downtime + 0.1))
    return downtime + 2 * reconnect + 2 * cooldown + 2.0


class BrokerTestCase(ProcessTestCase):
    """A private RabbitMQ node for the class, a sample tree and a queue
    prefix of its own for each test."""

    @classmethod
    def setUpClass(cls):
        if not running_as_root():
            raise unittest.SkipTest("a private RabbitMQ node needs root")
        cls.broker = Broker()
        cls.addClassCleanup(cls.broker.close)
        cls.amqp_url = cls.broker.start()

    def setUp(self):
        self.tree = SampleTree()
        self.addCleanup(self.tree.close)
        self.prefix = f"e2e.{self.id().rsplit('.', 1)[-1]}."


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mserv1", required=True)
    parser.add_argument("--mserv2", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--broker-script", required=True)
    args, rest = parser.parse_known_args()
    BINARIES.update(mserv1=os.path.abspath(args.mserv1), mserv2=os.path.abspath(args.mserv2),
                    gateway=os.path.abspath(args.gateway),
                    broker_script=os.path.abspath(args.broker_script))
    signal.signal(signal.SIGTERM, _exit_on_term)
    result = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2).result
    if result.wasSuccessful() and result.testsRun > 0 and len(result.skipped) == result.testsRun:
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0 if result.wasSuccessful() else 1)
