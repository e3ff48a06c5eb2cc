"""Scenario 5: the gRPC path is down (nothing listens on the lister's
target) and the broker restarts. The gateway and the AMQP-only replica
reconnect by themselves and serve again."""

import harness

# Reconnect backoff ceiling (5 s, with jitter) for the gateway and the
# replica, the node's own start, and a busy machine.
RECONNECT_TIMEOUT = 60


class BrokerRestartTest(harness.BrokerTestCase):

    def list_docs(self, gw):
        r = gw.http.get("/api/v1/files", {"path": "docs"})
        if r.status != 200:
            return None
        body = r.json()
        if harness.listing_check(self.tree, b"docs")(r) is not None:
            self.fail(f"wrong listing: {body}")
        return body

    def test_gateway_and_replica_reconnect_after_broker_restart(self):
        replica = self.mserv("mserv1", self.tree.root, amqp_url=self.amqp_url,
                             queue_prefix=self.prefix)
        dead = harness.loopback(harness.free_port())
        gw = self.gateway(lister_grpc=dead, amqp_url=self.amqp_url, queue_prefix=self.prefix,
                          request_timeout="2s")
        self.assertEqual(self.list_docs(gw)["served_by"], "amqp")

        self.broker.stop()
        marks = {proc: proc.mark() for proc in (replica, gw)}
        down = gw.http.get("/api/v1/files", {"path": "docs"})
        self.assertIn(down.status, (503, 504), down)
        self.assertEqual(down.content_type, "application/problem+json")
        harness.wait_until(lambda: gw.http.get("/readyz").status == 503, 30, "/readyz 503")

        self.broker.start()
        body = harness.wait_until(lambda: self.list_docs(gw), RECONNECT_TIMEOUT,
                                  "a listing through the restarted broker")
        self.assertEqual(body["served_by"], "amqp")
        for _ in range(20):
            self.assertEqual(self.list_docs(gw)["served_by"], "amqp")
        for proc, mark in marks.items():
            self.assertTrue(proc.events("amqp_connected", since=mark), proc.name)
        harness.wait_until(lambda: gw.http.get("/readyz").status == 200, RECONNECT_TIMEOUT,
                           "/readyz to be 200 again")


if __name__ == "__main__":
    harness.main()
