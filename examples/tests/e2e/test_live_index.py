"""Scenario: mserv2 --index answers from a live index of its root.

Two search services on one tree: one with --index (and --metrics_listen),
one walking per request, each behind a gateway of its own. The index's
answers equal the walk's, carry `index_as_of`, and see a change made on disk
within a second; its metrics say it is ready, how it hears of changes, and
which searches it answered."""

import datetime
import os
import shutil
import tempfile
import time
import urllib.request

import harness

QUERIES = [
    {"q": "*.h"},
    {"q": "*", "hidden": "true"},
    {"q": "src/**/*.cc"},
    {"q": "ock", "syntax": "substring"},
    {"q": "^(main|util)\\.", "syntax": "regex"},
    {"q": "*", "type": "directory"},
    {"q": "*", "path": "src", "max_depth": "1"},
    {"q": "*", "min_size": "10"},
]


def parse_time(text):
    # RFC 3339 with up to nanoseconds and a Z, as protobuf's JSON mapping writes.
    head, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + (float("0." + fraction) if fraction else 0.0)


class LiveIndexTest(harness.ProcessTestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="filemesh-e2e-index-")
        self.addCleanup(shutil.rmtree, self.root)
        for d in ("src", "src/net", "include", ".cache"):
            os.mkdir(os.path.join(self.root, d))
        for f, size in (("src/main.cc", 12), ("src/util.h", 3), ("src/net/socket.h", 40),
                        ("src/net/socket.cc", 0), ("include/api.h", 7), (".cache/tmp.h", 1),
                        ("README.md", 20)):
            with open(os.path.join(self.root, f), "wb") as out:
                out.write(b"x" * size)
        metrics_port = harness.free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        indexed = self.mserv("mserv2", self.root, grpc_listen="127.0.0.1:0", name="mserv2-index",
                             extra=["--index", f"--metrics_listen=127.0.0.1:{metrics_port}"])
        indexed.wait_for_log("index_ready", 30)
        walking = self.mserv("mserv2", self.root, grpc_listen="127.0.0.1:0", name="mserv2-walk")
        self.indexed = self.gateway(searcher_grpc=indexed.grpc_address, name="gateway-index")
        self.walking = self.gateway(searcher_grpc=walking.grpc_address, name="gateway-walk")

    def search(self, gateway, params):
        r = gateway.http.get("/api/v1/search", params)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def metrics(self):
        with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def test_answers_as_the_walk_does_and_says_how_fresh(self):
        for params in QUERIES:
            with self.subTest(**params):
                indexed = self.search(self.indexed, params)
                walked = self.search(self.walking, params)
                self.assertIn("index_as_of", indexed)
                self.assertNotIn("index_as_of", walked)
                for body in (indexed, walked):
                    body.pop("served_by", None)
                    body.pop("index_as_of", None)
                self.assertEqual(indexed, walked)
                self.assertGreater(len(indexed.get("matches", [])), 0)

    def test_a_change_is_found_within_a_second(self):
        made = time.time()
        with open(os.path.join(self.root, "include", "fresh_one.h"), "w"):
            pass
        found = None
        while time.time() - made < 5:
            body = self.search(self.indexed, {"q": "fresh_*.h"})
            if body.get("matches"):
                found = time.time()
                break
            time.sleep(0.01)
        self.assertIsNotNone(found, "the new file was not found within 5 s")
        self.assertLess(found - made, 1.0)
        # The answer that saw it is current as of a moment after the change.
        self.assertGreaterEqual(parse_time(body["index_as_of"]), made - 0.001)

    def test_metrics_say_ready_mode_and_who_answered(self):
        self.search(self.indexed, {"q": "*.h"})
        values = self.metrics()
        self.assertEqual(values["filemesh_index_ready"], 1)
        modes = [k for k in values if k.startswith("filemesh_index_watch_mode{")]
        self.assertEqual(len(modes), 1)
        expected = "fanotify" if harness.running_as_root() else "inotify"
        self.assertIn(f'mode="{expected}"', modes[0])
        self.assertEqual(values["filemesh_index_entries"], 12)  # the root and 11 entries
        self.assertGreaterEqual(values['filemesh_index_searches_total{answered_by="index"}'], 1)
        self.assertEqual(values["filemesh_index_overflows_total"], 0)


if __name__ == "__main__":
    harness.main()
