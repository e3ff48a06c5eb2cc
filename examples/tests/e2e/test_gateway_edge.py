"""The gateway's front door under hostile and unlucky clients: a thousand
stalled connections, an endless header line, hung backends, many idle
keep-alive connections, and SIGTERM with stalled clients. Real gateway and
mserv1 processes on loopback; no broker."""

import resource
import signal
import socket
import threading
import time

import harness

STALLED = 1000


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_connections(port, count, first_bytes=b""):
    conns = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            s.sendall(first_bytes)
        conns.append(s)
    return conns


def close_all(conns):
    for s in conns:
        s.close()


def read_to_close(sock, limit=1 << 20):
    out = b""
    while len(out) < limit:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return out


def gateway_metric(gw, name):
    """The sum of a metric's samples on /metrics."""
    total = 0.0
    for line in gw.http.get("/metrics").body.decode().splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


class GatewayEdgeTest(harness.ProcessTestCase):

    @classmethod
    def setUpClass(cls):
        if raise_fd_limit(4 * STALLED) < 2 * STALLED + 100:
            raise AssertionError("the test needs 2,100 file descriptors")

    def setUp(self):
        self.tree = harness.SampleTree()
        self.addCleanup(self.tree.close)

    def lister_and_gateway(self, **gateway_kwargs):
        mserv1 = self.mserv("mserv1", self.tree.root, grpc_listen="127.0.0.1:0")
        # Every connection here comes from 127.0.0.1: lift the per-client cap
        # (256) above the thousands these tests open.
        gateway_kwargs["extra"] = ("--max_connections_per_client=10000",
                                   *gateway_kwargs.get("extra", ()))
        gw = self.gateway(lister_grpc=mserv1.grpc_address, **gateway_kwargs)
        return mserv1, gw

    def test_stalled_connections_do_not_stop_the_gateway(self):
        _, gw = self.lister_and_gateway()
        stalled = open_connections(gw.http.port, STALLED, b"GET /api/v1/fi")
        self.addCleanup(close_all, stalled)
        slow = open_connections(gw.http.port, 50, b"GET /healthz HTTP/1.1\r\n")
        self.addCleanup(close_all, slow)
        # Every probe and listing is answered while they all hang on.
        for _ in range(20):
            health = gw.http.get("/healthz", timeout=5)
            self.assertEqual(health.status, 200, health)
            listing = gw.http.get("/api/v1/files", {"path": "docs"}, timeout=5)
            self.assertEqual(listing.status, 200, listing)
            self.assertEqual(listing.json()["served_by"], "grpc")

    def test_an_endless_header_line_is_cut_and_memory_stays_bounded(self):
        _, gw = self.lister_and_gateway()
        sock = socket.create_connection(("127.0.0.1", gw.http.port), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
        chunk = b"a" * (1 << 20)
        sent = 0
        try:
            while sent < 300 * (1 << 20):  # 300 MiB at most; the gateway stops it first
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_to_close(sock)
        self.assertLess(sent, 300 * (1 << 20), "the gateway took a 300 MiB header line")
        if answer:  # a reset may have eaten it
            self.assertTrue(answer.startswith(b"HTTP/1.1 431 "), answer[:200])
        peak = gw.peak_rss_kib()
        self.assertLess(peak, 64 * 1024, f"gateway peak RSS {peak} KiB")
        self.assertEqual(gw.http.get("/healthz").status, 200)

    def test_healthz_answers_while_every_backend_is_hung(self):
        mserv1, gw = self.lister_and_gateway(request_timeout="20s", attempt_timeout="20s")
        self.assertEqual(gw.http.get("/api/v1/files").status, 200)
        mserv1.signal(signal.SIGSTOP)
        self.addCleanup(mserv1.signal, signal.SIGCONT)
        outcomes = []
        lock = threading.Lock()

        def hung_listing():
            try:
                status = gw.http.get("/api/v1/files", timeout=60).status
            except OSError as e:
                status = repr(e)
            with lock:
                outcomes.append(status)

        hung = [threading.Thread(target=hung_listing) for _ in range(200)]
        for t in hung:
            t.start()
        # All 200 have reached the gateway and wait on mserv1.
        harness.wait_until(lambda: gateway_metric(gw, "filemesh_channel_calls_total") >= 201, 30,
                           "200 backend calls in flight")
        latencies = []
        for _ in range(20):
            health = gw.http.get("/healthz", timeout=5)
            self.assertEqual(health.status, 200)
            latencies.append(health.elapsed)
        with lock:
            self.assertEqual(outcomes, [], "a hung call ended before /healthz was probed")
        print(f"/healthz with 200 calls hung: max {max(latencies) * 1000:.1f} ms, "
              f"median {sorted(latencies)[10] * 1000:.1f} ms")
        mserv1.signal(signal.SIGCONT)
        for t in hung:
            t.join(60)
        # Answered once mserv1 runs again, or 503 if the gateway's keepalive
        # pings (1 s + 1 s) gave up on it first; never a hang.
        self.assertEqual(len(outcomes), 200)
        self.assertLessEqual(set(outcomes), {200, 503})

    def test_idle_keep_alive_connections_cost_little_memory(self):
        _, gw = self.lister_and_gateway()
        # Warm up every path a connection takes, then measure.
        warm = open_connections(gw.http.port, 100)
        close_all(warm)
        before = gw.rss_kib()
        conns = open_connections(gw.http.port, 2000)
        self.addCleanup(close_all, conns)
        # Each has made one request and keeps the connection.
        for s in conns:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in conns:
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200 "))
        after = gw.rss_kib()
        per_connection = (after - before) * 1024 / 2000
        print(f"RSS {before} -> {after} KiB with 2,000 idle keep-alive connections: "
              f"{per_connection:.0f} bytes each")
        self.assertLessEqual(per_connection, 8 * 1024)

    def test_sigterm_with_stalled_clients_answers_in_flight_and_exits_in_time(self):
        mserv1, gw = self.lister_and_gateway(request_timeout="3s", attempt_timeout="3s",
                                             extra=("--shutdown_grace=5s",))
        stalled = open_connections(gw.http.port, STALLED, b"GET /api/v1/fi")
        self.addCleanup(close_all, stalled)
        idle = open_connections(gw.http.port, 100)
        self.addCleanup(close_all, idle)
        mserv1.signal(signal.SIGSTOP)
        self.addCleanup(mserv1.signal, signal.SIGCONT)
        answer = {}

        def in_flight():
            answer["response"] = gw.http.get("/api/v1/files", timeout=30)

        caller = threading.Thread(target=in_flight)
        caller.start()
        harness.wait_until(lambda: gateway_metric(gw, "filemesh_channel_calls_total") >= 1, 10,
                           "the call in flight")
        start = time.monotonic()
        code = gw.stop(timeout=15)
        took = time.monotonic() - start
        caller.join(30)
        self.assertEqual(code, 0)
        self.assertLess(took, 5 + 3, "the gateway outlived its shutdown grace")
        # The request in flight was answered (its backend is hung: 504/503).
        self.assertIn(answer["response"].status, (503, 504), answer["response"])
        for s in stalled[:50] + idle[:50]:
            s.settimeout(5)
            self.assertEqual(read_to_close(s), b"")


if __name__ == "__main__":
    harness.main()
