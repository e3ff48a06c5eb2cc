"""Issue 21, point 1 through the real processes: mserv1 and the gateway on a
three-node RabbitMQ cluster (--amqp_url lists the nodes, quorum queues by
default), the gRPC path down so every request goes over AMQP. The node both
use is killed (kill -9) under a steady load: every request is answered 200,
through the next node."""

import unittest

import harness


class BrokerClusterTest(harness.ProcessTestCase):

    @classmethod
    def setUpClass(cls):
        if not harness.running_as_root():
            raise unittest.SkipTest("private RabbitMQ nodes need root")
        cls.cluster = harness.BrokerCluster()
        cls.addClassCleanup(cls.cluster.close)
        cls.cluster.start()

    def setUp(self):
        self.tree = harness.SampleTree()
        self.addCleanup(self.tree.close)

    def test_requests_ride_through_the_loss_of_their_node(self):
        urls = self.cluster.url_list(first=0)
        replica = self.mserv("mserv1", self.tree.root, amqp_url=urls)
        dead = harness.loopback(harness.free_port())
        gw = self.gateway(lister_grpc=dead, amqp_url=urls, request_timeout="10s")
        check = harness.listing_check(self.tree, b"docs")
        harness.wait_until(lambda: gw.http.get("/api/v1/files", {"path": "docs"}).status == 200,
                           60, "a first listing over AMQP")
        for proc in (replica, gw):
            self.assertTrue(proc.events("amqp_connected"), proc.name)

        with harness.Load(gw.http, "/api/v1/files", {"path": "docs"}, check=check, threads=4,
                          pace=0.005, max_seconds=120) as load:
            harness.wait_until(lambda: load.count() >= 100, 60, "100 answers before the kill")
            marks = {proc: proc.mark() for proc in (replica, gw)}
            killed_at = len(load.snapshot())
            self.cluster.kill(0)
            harness.wait_until(lambda: load.count() >= killed_at + 300, 90,
                               "300 answers after the kill")
            outcomes = load.stop()

        failed = [o for o in outcomes if o[2] != 200 or o[4] is not None]
        self.assertEqual(failed[:3], [], f"{len(failed)} of {len(outcomes)} requests failed")
        self.assertEqual({o[3] for o in outcomes}, {"amqp"})
        # Both went to another node.
        for proc, mark in marks.items():
            lost = proc.events("amqp_connection_lost", since=mark)
            self.assertTrue(lost, proc.name)
            self.assertTrue(proc.events("amqp_connected", since=mark), proc.name)
        slowest = max(o[1] - o[0] for o in outcomes)
        print(f"requests {len(outcomes)}, failed {len(failed)}, slowest {slowest * 1000:.0f} ms")


if __name__ == "__main__":
    harness.main()
