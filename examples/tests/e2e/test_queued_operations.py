"""Scenario 4: every replica down, the broker up. The gateway queues the call
on the broker and answers 202 with an operation; once a replica starts, the
operation completes with the answer the tree on disk gives."""

import fnmatch
import os
import shutil
import tempfile

import harness
from harness import exact_path


class QueuedOperationTest(harness.BrokerTestCase):

    def queue(self, gw, route, params):
        """Makes a request that must be queued; returns its operation path."""
        r = gw.http.get(route, params)
        self.assertEqual(r.status, 202, r)
        location = r.headers.get("location")
        self.assertTrue(location and location.startswith("/api/v1/operations/"), r.headers)
        body = r.json()
        self.assertEqual(body["operation"], location)
        self.assertEqual(body["name"], location[len("/api/v1/"):])
        self.assertIs(body["done"], False)
        self.assertEqual(body["metadata"]["kind"], "search" if "search" in route else "list")
        return location

    def wait_done(self, gw, operation, timeout=30):
        def done():
            r = gw.http.get(operation)
            if r.status == 200 and not r.json().get("done"):
                return None
            return r

        return harness.wait_until(done, timeout, f"{operation} to complete")

    def test_queued_search_and_listing_complete_when_replicas_start(self):
        dead = harness.loopback(harness.free_port())
        gw = self.gateway(lister_grpc=dead, searcher_grpc=dead, amqp_url=self.amqp_url,
                          queue_prefix=self.prefix, request_timeout="1s")
        search = self.queue(gw, "/api/v1/search", {"q": "*.md"})
        listing = self.queue(gw, "/api/v1/files", {"path": "docs"})
        failing = self.queue(gw, "/api/v1/files", {"path": "README.md"})
        self.assertEqual(len({search, listing, failing}), 3)

        pending = gw.http.get(search)
        self.assertEqual(pending.status, 200, pending)
        self.assertEqual(pending.content_type, "application/json")
        self.assertIs(pending.json()["done"], False)
        self.assertNotIn("response", pending.json())
        self.assertNotIn("error", pending.json())

        self.mserv("mserv2", self.tree.root, amqp_url=self.amqp_url, queue_prefix=self.prefix)
        self.mserv("mserv1", self.tree.root, amqp_url=self.amqp_url, queue_prefix=self.prefix)

        searched = self.wait_done(gw, search)
        self.assertEqual(searched.status, 200, searched)
        body = searched.json()
        self.assertIs(body["done"], True)
        expected = [path for _b, path, name, *_ in self.tree.walk()
                    if fnmatch.fnmatchcase(name, b"*.md")]
        self.assertEqual([exact_path(m) for m in body["response"]["matches"]], expected)

        listed = self.wait_done(gw, listing)
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual([exact_path(e) for e in listed.json()["response"]["entries"]],
                         [b"docs/" + name for name, _, _ in self.tree.listing(b"docs")])

        # A call that the service refused completes with its error (AIP-151).
        refused = self.wait_done(gw, failing)
        self.assertEqual(refused.status, 200, refused)
        self.assertEqual(refused.json()["error"]["status"], "FAILED_PRECONDITION")
        self.assertEqual(refused.json()["error"]["code"], 9)
        self.assertNotIn("response", refused.json())

    def test_operations_outlive_a_killed_gateway(self):
        """Two gateways on one operations database (an SQLite file): kill -9
        the one that queued the calls, and the other answers them once
        replicas start (the replies move from the dead gateway's reply queue
        to the orphan queue, and the survivor writes them)."""
        state = tempfile.mkdtemp(prefix="filemesh-operations-")
        self.addCleanup(shutil.rmtree, state, True)
        self.outlive_a_killed_gateway(os.path.join(state, "operations.db"))

    def test_operations_outlive_a_killed_gateway_on_postgresql(self):
        """The same with the gateways' operations in PostgreSQL, as gateway
        replicas on several hosts share them; the database's own rows show
        each operation written once."""
        postgres = harness.Postgres()
        self.addCleanup(postgres.close)
        postgres.start()
        postgres.psql("CREATE DATABASE filemesh")
        self.outlive_a_killed_gateway(postgres.url("filemesh"))
        rows = postgres.psql("SELECT COUNT(*), COUNT(*) FILTER (WHERE done) "
                             "FROM filemesh_operations", "filemesh")
        self.assertEqual(rows.strip(), "3|3")

    def outlive_a_killed_gateway(self, database):
        dead = harness.loopback(harness.free_port())

        def gateway(name):
            return self.gateway(lister_grpc=dead, searcher_grpc=dead, amqp_url=self.amqp_url,
                                queue_prefix=self.prefix, request_timeout="1s", name=name,
                                extra=(f"--operations_db={database}",
                                       "--orphan_reply_after=500ms"))

        doomed = gateway("gateway-A")
        survivor = gateway("gateway-B")
        queued = {self.queue(doomed, "/api/v1/files", {"path": "docs"}): "list",
                  self.queue(doomed, "/api/v1/search", {"q": "*.md"}): "search",
                  self.queue(doomed, "/api/v1/files", {"path": "README.md"}): "error"}
        for operation in queued:
            r = survivor.http.get(operation)
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.json()["done"], False)
        doomed.kill()

        self.mserv("mserv2", self.tree.root, amqp_url=self.amqp_url, queue_prefix=self.prefix)
        self.mserv("mserv1", self.tree.root, amqp_url=self.amqp_url, queue_prefix=self.prefix)
        for operation, kind in queued.items():
            body = self.wait_done(survivor, operation).json()
            self.assertIs(body["done"], True, body)
            if kind == "list":
                self.assertEqual([exact_path(e) for e in body["response"]["entries"]],
                                 [b"docs/" + name for name, _, _ in self.tree.listing(b"docs")])
            elif kind == "search":
                self.assertIn("matches", body["response"])
            else:
                self.assertEqual(body["error"]["status"], "FAILED_PRECONDITION")


if __name__ == "__main__":
    harness.main()
