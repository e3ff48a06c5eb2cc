"""Scenario 6: two gRPC replicas of mserv2 behind `--searcher_grpc A,B`.
Calls are spread over both (each replica logs one line per call), and
killing one under load fails no request: calls in flight on it fail over to
the broker, where the other replica also consumes, and new calls go to the
survivor."""

import fnmatch
import time

import harness
from harness import exact_path


class ScaleOutTest(harness.BrokerTestCase):

    def grpc_calls(self, replica):
        return len(replica.events("call", transport="grpc"))

    def test_calls_spread_over_replicas_and_survive_a_kill(self):
        replicas = [self.mserv("mserv2", self.tree.root, name=f"mserv2-{n}",
                               grpc_listen="127.0.0.1:0", amqp_url=self.amqp_url,
                               queue_prefix=self.prefix, log_calls=True) for n in "AB"]
        gw = self.gateway(searcher_grpc=",".join(r.grpc_address for r in replicas),
                          amqp_url=self.amqp_url, queue_prefix=self.prefix, request_timeout="5s")
        expected = [path for _b, path, name, *_ in self.tree.walk()
                    if fnmatch.fnmatchcase(name, b"*.md")]

        def check(response):
            got = [exact_path(m) for m in response.json().get("matches", [])]
            return None if got == expected else f"found {got}, expected {expected}"

        with harness.Load(gw.http, "/api/v1/search", {"q": "*.md"}, check=check, threads=4,
                          pace=0.002) as load:
            harness.wait_until(lambda: all(self.grpc_calls(r) > 0 for r in replicas), 20,
                               "a gRPC call on each replica")
            base = [self.grpc_calls(r) for r in replicas]
            harness.wait_until(lambda: sum(self.grpc_calls(r) for r in replicas) - sum(base) >= 100,
                               30, "100 more gRPC calls")
            spread = [self.grpc_calls(r) - b for r, b in zip(replicas, base)]
            print(f"\ngRPC calls per replica: {spread}")
            # round_robin alternates; a quarter each leaves room for timing.
            for calls in spread:
                self.assertGreaterEqual(calls, sum(spread) / 4, spread)

            replicas[0].kill()
            killed = time.monotonic()
            survivor = self.grpc_calls(replicas[1])
            harness.wait_until(lambda: self.grpc_calls(replicas[1]) >= survivor + 50, 30,
                               "50 more gRPC calls on the surviving replica")
            outcomes = load.stop()

        failed = [o for o in outcomes if o[4] is not None]
        after_kill = [o for o in outcomes if o[0] >= killed]
        print(f"{len(outcomes)} requests, {len(after_kill)} after the kill, "
              f"served by amqp: {sum(1 for o in outcomes if o[3] == 'amqp')}")
        self.assertEqual(failed, [], f"{len(failed)} of {len(outcomes)} requests failed")
        self.assertGreater(len(after_kill), 0)


if __name__ == "__main__":
    harness.main()
