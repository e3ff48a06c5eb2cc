"""Issue 21, point 3: the services spread over hosts, as network namespaces
of the test's own on one bridge (harness.Network, 10.231.77.0/24): a
three-node RabbitMQ cluster (b1, b2, b3), PostgreSQL (pg), two mserv1
replicas (m1a, m1b, gRPC and AMQP), mserv2 (m2, AMQP only, so every search
rides the broker) and two gateways (gwa, gwb) sharing their operations in
PostgreSQL. The test's own threads run in a client namespace.

Under a steady load on both gateways:
  1. kill -9 of broker node b1, the one both gateways use;
  2. every packet between gwa and m1a silently dropped (nftables, no RST),
     then the link healed;
  3. with no mserv1 running, gwa queues listings (202), is killed (kill -9),
     and gwb answers them once the replicas are back.
Target: no request fails, no operation is lost; the figures are printed."""

import time
import unittest

import harness
from harness import exact_path

ROLES = {"client": 1, "b1": 11, "b2": 12, "b3": 13, "pg": 21, "m1a": 31, "m1b": 32, "m2": 33,
         "gwa": 41, "gwb": 42}
API_KEY = "multi-host-e2e-key"


class MultiHostTest(harness.ProcessTestCase):

    @classmethod
    def setUpClass(cls):
        if not harness.running_as_root():
            raise unittest.SkipTest("network namespaces need root")
        cls.net = harness.Network(ROLES)
        cls.addClassCleanup(cls.net.close)
        cls.net.start()
        cls.net.enter("client")
        cls.cluster = harness.BrokerCluster(network=cls.net)
        cls.addClassCleanup(cls.cluster.close)
        cls.cluster.start()
        cls.postgres = harness.Postgres(network=cls.net)
        cls.addClassCleanup(cls.postgres.close)
        cls.postgres.start()
        cls.postgres.psql("CREATE DATABASE filemesh")

    def setUp(self):
        self.tree = harness.SampleTree()
        self.addCleanup(self.tree.close)

    def addr(self, role):
        return self.net.address(role)

    def start_mserv1(self, role, first_node):
        return self.mserv("mserv1", self.tree.root, name=f"mserv1-{role}",
                          grpc_listen=f"{self.addr(role)}:50051",
                          amqp_url=self.cluster.url_list(first=first_node),
                          prefix=self.net.exec_prefix(role), log_calls=True,
                          # Plain text beyond loopback: TLS on every hop is
                          # e2e_tls's; here the network is the test's own.
                          extra=("--insecure",))

    def start_gateway(self, role):
        gw = self.gateway(
            name=f"gateway-{role}", listen=f"{self.addr(role)}:8080", api_key=API_KEY,
            lister_grpc=f"{self.addr('m1a')}:50051,{self.addr('m1b')}:50051",
            # mserv2 serves no gRPC: searches go over the broker.
            searcher_grpc=f"{self.addr('m2')}:50052",
            amqp_url=self.cluster.url_list(first=0), request_timeout="3s",
            extra=(f"--operations_db={self.postgres.url('filemesh')}",
                   "--orphan_reply_after=1s"),
            prefix=self.net.exec_prefix(role))
        harness.wait_until(
            lambda: gw.http.get("/api/v1/search", {"q": "*.md"}).status == 200, 60,
            f"a first search through {role}")
        return gw

    @staticmethod
    def window(outcomes, start, end):
        """The outcomes of requests started from `start` to `end`: (count,
        slowest in ms)."""
        around = [o for o in outcomes if start <= o[0] < end]
        return len(around), max((o[1] - o[0] for o in around), default=0) * 1000

    def start_loads(self, gwa, gwb):
        """Steady listings and searches on both gateways; {name: Load}."""
        list_check = harness.listing_check(self.tree, b"docs")
        expected_md = sorted(path for _b, path, name, *_ in self.tree.walk()
                             if name.endswith(b".md"))

        def search_check(response):
            got = sorted(exact_path(m) for m in response.json().get("matches", []))
            return None if got == expected_md else f"found {got}, expected {expected_md}"

        def load(gw, route, params, check, threads):
            return harness.Load(gw.http, route, params, check=check, threads=threads, pace=0.01,
                                max_seconds=300)

        self.loads = {
            "gwa list": load(gwa, "/api/v1/files", {"path": "docs"}, list_check, 2),
            "gwa search": load(gwa, "/api/v1/search", {"q": "*.md"}, search_check, 1),
            "gwb list": load(gwb, "/api/v1/files", {"path": "docs"}, list_check, 1),
            "gwb search": load(gwb, "/api/v1/search", {"q": "*.md"}, search_check, 1),
        }
        for running in self.loads.values():
            running.__enter__()
        self.addCleanup(lambda: [running.stop() for running in self.loads.values()])

    def more(self, n, what):
        """Waits for `n` more answers on every load still running."""
        counts = {name: load.count() for name, load in self.loads.items() if not load.stopped()}
        harness.wait_until(
            lambda: all(self.loads[name].count() >= c + n for name, c in counts.items()), 120,
            f"{n} more answers on every load {what}")

    def broker_node_dies(self, gateways):
        """1. The broker node both gateways use dies; they go to another."""
        marks = {gw: gw.mark() for gw in gateways}
        self.cluster.kill(0)
        self.more(100, "after broker node b1 died")
        for gw, mark in marks.items():
            self.assertTrue(gw.events("amqp_connection_lost", since=mark), gw.name)
            self.assertTrue(gw.events("amqp_connected", since=mark), gw.name)

    def link_goes_silent(self, m1a):
        """2. The link between gwa and m1a drops every packet, then heals.
        Returns when it was healed and when m1a took gRPC calls again."""
        dropped = time.monotonic()
        self.net.drop("gwa", "m1a")
        self.more(100, "while gwa cannot reach m1a")
        healed = time.monotonic()
        self.net.heal("gwa")
        healed_mark = m1a.mark()
        self.more(100, "after the link healed")
        # The drop was felt (calls meant for m1a went over the broker), and
        # m1a takes gwa's gRPC calls again once the link is back.
        during = [o for o in self.loads["gwa list"].snapshot() if dropped <= o[0] < healed]
        self.assertIn("amqp", {o[3] for o in during}, "no call failed over while the link was down")
        harness.wait_until(lambda: m1a.events("call", since=healed_mark, transport="grpc"),
                           90, "a gRPC call on m1a after the link healed")
        return healed, time.monotonic()

    def gateway_dies_with_queued_operations(self, gwa, gwb, m1):
        """3. gwa queues listings while no mserv1 runs, and is killed; gwb
        answers them once the replicas are back. gwa's own load stops first,
        as a load balancer drains a gateway, and so do the listings on gwb
        (their service is away on purpose); the searches on gwb go on.
        Returns (when gwa was killed, [(operation, path)], completed)."""
        for name in ("gwa list", "gwa search", "gwb list"):
            self.loads[name].stop()
        for proc in m1.values():
            proc.kill()
        operations = []
        for path in ["docs", "docs/sub", "README.md"] * 2:
            r = gwa.http.get("/api/v1/files", {"path": path}, timeout=30)
            self.assertEqual(r.status, 202, r)
            operations.append((r.headers.get("location"), path))
        for operation, _ in operations:
            r = gwb.http.get(operation)
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.json()["done"], False)
        killed = time.monotonic()
        gwa.kill()
        self.start_mserv1("m1a", 1)
        self.start_mserv1("m1b", 2)

        completed = 0
        for operation, path in operations:
            body = harness.wait_until(
                lambda op=operation: (lambda r: r.json() if r.status == 200 and r.json()["done"]
                                      else None)(gwb.http.get(op)),
                60, f"{operation} ({path!r}) done on gwb")
            if path == "README.md":
                self.assertEqual(body["error"]["status"], "FAILED_PRECONDITION", body)
            else:
                rel = path.encode()
                self.assertEqual([exact_path(e) for e in body["response"]["entries"]],
                                 [rel + b"/" + name for name, _, _ in self.tree.listing(rel)],
                                 path)
            completed += 1
        # Each operation is one row, written once, in the shared database.
        rows = self.postgres.psql(
            "SELECT COUNT(*) FILTER (WHERE done) FROM filemesh_operations WHERE id IN (" +
            ",".join("'\\x" + op.rsplit("/", 1)[-1].encode().hex() + "'::bytea"
                     for op, _ in operations) + ")", "filemesh")
        self.assertEqual(rows.strip(), str(len(operations)))
        return killed, operations, completed

    def test_faults_across_hosts_lose_nothing(self):
        m1 = {"m1a": self.start_mserv1("m1a", 1), "m1b": self.start_mserv1("m1b", 2)}
        self.mserv("mserv2", self.tree.root, name="mserv2-m2",
                   amqp_url=self.cluster.url_list(first=2), prefix=self.net.exec_prefix("m2"))
        gwa = self.start_gateway("gwa")
        gwb = self.start_gateway("gwb")
        self.start_loads(gwa, gwb)
        self.more(30, "before the faults")

        broker_fault = time.monotonic()
        self.broker_node_dies((gwa, gwb))
        link_fault = time.monotonic()
        link_healed, back_on_grpc = self.link_goes_silent(m1["m1a"])
        drained = time.monotonic()
        gateway_fault, operations, completed = self.gateway_dies_with_queued_operations(
            gwa, gwb, m1)
        self.more(50, "after the gateway was killed")
        ended = time.monotonic()
        outcomes = {name: load.stop() for name, load in self.loads.items()}

        every = [o for name in outcomes for o in outcomes[name]]
        failed = [(name, o) for name in outcomes for o in outcomes[name]
                  if o[2] != 200 or o[4] is not None]
        print(f"\nrequests sent {len(every)}, answered {len(every) - len(failed)}, "
              f"failed {len(failed)}")
        for what, start, end in (("broker node b1 killed", broker_fault, link_fault),
                                 ("gwa-m1a link dropped", link_fault, link_healed),
                                 ("gwa-m1a link healed", link_healed, drained),
                                 ("gwa killed (gwb's searches)", gateway_fault, ended)):
            count, slowest = self.window(every, start - 2, end)
            print(f"  {what}: {count} requests from 2 s before until the next step, "
                  f"slowest {slowest:.0f} ms")
        print(f"  m1a took gRPC calls again {back_on_grpc - link_healed:.1f} s after the link "
              f"healed")
        print(f"operations queued {len(operations)}, completed {completed}, "
              f"lost {len(operations) - completed}")
        self.assertEqual(failed[:3], [], f"{len(failed)} of {len(every)} requests failed")

if __name__ == "__main__":
    harness.main()
