"""Scenarios 2 and 3: mserv1 replica A serves gRPC, replica B only the AMQP
queue. A steady stream of listings goes through the gateway while A is
killed (-9) or stopped (SIGSTOP): every request succeeds, served_by turns to
amqp, and back to grpc once A is there again."""

import signal
import time

import harness

COOLDOWN = 1.0
ATTEMPT_TIMEOUT = 0.25


def first_grpc_after(outcomes, since):
    """Start time of the first request begun after `since` that gRPC served."""
    starts = [o[0] for o in outcomes if o[0] >= since and o[3] == "grpc"]
    return min(starts) if starts else None


class ListerFailoverTest(harness.BrokerTestCase):

    def start_gateway(self, lister_port):
        return self.gateway(lister_grpc=harness.loopback(lister_port), amqp_url=self.amqp_url,
                            queue_prefix=self.prefix, request_timeout="5s",
                            attempt_timeout=f"{int(ATTEMPT_TIMEOUT * 1000)}ms",
                            breaker_cooldown=f"{COOLDOWN:g}s")

    def replica(self, name, grpc_port=None, amqp=True):
        return self.mserv("mserv1", self.tree.root, name=name,
                          grpc_listen=harness.loopback(grpc_port) if grpc_port else "",
                          amqp_url=self.amqp_url if amqp else "", queue_prefix=self.prefix)

    def wait_served_by(self, load, transport, timeout, n=10):
        harness.wait_until(lambda: load.last_served_by(n) == [transport] * n, timeout,
                           f"the last {n} requests served by {transport}")

    def assert_all_succeeded(self, outcomes):
        failed = [o for o in outcomes if o[4] is not None]
        self.assertEqual(failed, [], f"{len(failed)} of {len(outcomes)} requests failed")
        self.assertGreater(len(outcomes), 0)

    def test_kill_grpc_replica_fails_over_to_amqp_and_back(self):
        port = harness.free_port()
        replica_a = self.replica("mserv1-A", grpc_port=port)
        self.replica("mserv1-B")
        gw = self.start_gateway(port)
        with harness.Load(gw.http, "/api/v1/files", {"path": "docs"},
                          check=harness.listing_check(self.tree, b"docs")) as load:
            self.wait_served_by(load, "grpc", 20)

            replica_a.kill()
            killed = time.monotonic()
            self.wait_served_by(load, "amqp", 20)

            replica_a = self.replica("mserv1-A", grpc_port=port)
            back = time.monotonic()
            bound = harness.breaker_recovery_bound(back - killed, COOLDOWN)
            self.wait_served_by(load, "grpc", bound + 10)
            outcomes = load.stop()

        recovered = first_grpc_after(outcomes, back)
        self.assertIsNotNone(recovered)
        print(f"\nserved by grpc again {recovered - back:.2f}s after replica A came back "
              f"(bound {bound:.1f}s, down {back - killed:.1f}s, cooldown {COOLDOWN}s)")
        self.assertLessEqual(recovered - back, bound)
        self.assert_all_succeeded(outcomes)
        self.assertIn("amqp", [o[3] for o in outcomes])

    def test_stopped_grpc_replica_is_bypassed_within_attempt_timeout(self):
        replica_a = self.replica("mserv1-A", grpc_port=harness.free_port(), amqp=False)
        self.replica("mserv1-B")
        gw = self.start_gateway(int(replica_a.grpc_address.rsplit(":", 1)[1]))
        with harness.Load(gw.http, "/api/v1/files", {"path": "docs"},
                          check=harness.listing_check(self.tree, b"docs")) as load:
            self.wait_served_by(load, "grpc", 20)

            replica_a.signal(signal.SIGSTOP)
            stopped = time.monotonic()
            self.wait_served_by(load, "amqp", 20)

            replica_a.signal(signal.SIGCONT)
            resumed = time.monotonic()
            bound = harness.breaker_recovery_bound(resumed - stopped, COOLDOWN)
            self.wait_served_by(load, "grpc", bound + 10)
            outcomes = load.stop()

        self.assert_all_succeeded(outcomes)
        # While A was stopped: the gRPC attempt gives up after the attempt
        # timeout and the AMQP round trip follows; 2 s covers the latter on a
        # busy machine.
        slowest = max(end - start for start, end, *_ in outcomes if end >= stopped)
        print(f"\nslowest request while replica A was stopped: {slowest * 1000:.0f} ms")
        self.assertLessEqual(slowest, ATTEMPT_TIMEOUT + 2.0)
        recovered = first_grpc_after(outcomes, resumed)
        self.assertIsNotNone(recovered)
        print(f"served by grpc again {recovered - resumed:.2f}s after SIGCONT "
              f"(bound {bound:.1f}s)")
        self.assertLessEqual(recovered - resumed, bound)


if __name__ == "__main__":
    harness.main()
