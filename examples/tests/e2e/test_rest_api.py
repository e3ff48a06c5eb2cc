"""Scenario 1: every endpoint and parameter of the REST contract (docs/rest.md)
and each error status, through the real gateway in front of real mserv1 and
mserv2 processes over gRPC. No broker: the AMQP paths have their own
scenarios.

The services run as `nobody` when the tests run as root, so a directory with
mode 000 is unreadable to them (403) as it would be in production.
Every expected answer is computed from the sample tree on disk."""

import datetime
import fnmatch
import os
import re
import resource
import signal

import harness
from harness import FILE_TYPES, display_form, exact_name, exact_path

API_KEY = "e2e-secret-key"
UNREADABLE = (b"locked",)


def by_name(entries):
    return [exact_name(e) for e in entries]


def metric_value(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
            found = True
    return total if found else None


class RestApiTest(harness.ProcessTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tree = harness.SampleTree(locked=True, fifo=True)
        cls.addClassCleanup(cls.tree.close)
        as_nobody = harness.unprivileged_prefix()
        cls.lister = harness.start_mserv("mserv1", cls.tree.root, grpc_listen="127.0.0.1:0",
                                         prefix=as_nobody)
        cls.addClassCleanup(cls.lister.close)
        cls.searcher = harness.start_mserv("mserv2", cls.tree.root, grpc_listen="127.0.0.1:0",
                                           prefix=as_nobody)
        cls.addClassCleanup(cls.searcher.close)
        cls.gw = harness.start_gateway(lister_grpc=cls.lister.grpc_address,
                                       searcher_grpc=cls.searcher.grpc_address, api_key=API_KEY)
        cls.addClassCleanup(cls.gw.close)
        cls.http = cls.gw.http

    # -- helpers ------------------------------------------------------------

    def ok(self, path, params=None, **kwargs):
        r = self.http.get(path, params, **kwargs)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json", r)
        return r.json()

    def problem(self, status, path, params=None, code=None, **kwargs):
        """Asserts an RFC 9457 problem document with `status`; returns it."""
        r = self.http.request(path, params, **kwargs)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.content_type, "application/problem+json", r)
        doc = r.json()
        self.assertEqual(doc["status"], status, doc)
        for field in ("type", "title", "detail"):
            self.assertIsInstance(doc.get(field), str, doc)
        self.assertTrue(doc["title"], doc)
        if code is not None:
            self.assertEqual(doc.get("code"), code, doc)
        return doc

    def list_all(self, params):
        """Every entry of a listing, following next_page_token."""
        entries = []
        token = ""
        for _ in range(100):
            page_params = dict(params)
            if token:
                page_params["page_token"] = token
            page = self.ok("/api/v1/files", page_params)
            entries.extend(page.get("entries", []))
            token = page.get("next_page_token", "")
            if not token:
                return entries
        self.fail("more than 100 pages")

    def expected_search(self, matches_name, rel=b"", hidden=False, kind=None, max_depth=None,
                        min_size=None, max_size=None):
        out = []
        for _below, path, name, k, st, depth in self.tree.walk(rel, hidden, UNREADABLE):
            if not matches_name(name):
                continue
            if kind is not None and k != kind:
                continue
            if max_depth is not None and depth > max_depth:
                continue
            if min_size is not None or max_size is not None:
                if k != "file":
                    continue
                if min_size is not None and st.st_size < min_size:
                    continue
                if max_size is not None and st.st_size > max_size:
                    continue
            out.append(path)
        return out

    def search_paths(self, params):
        body = self.ok("/api/v1/search", params)
        self.assertEqual(body.get("served_by"), "grpc", body)
        return [exact_path(m) for m in body.get("matches", [])], body

    # -- GET /api/v1/files --------------------------------------------------

    def test_list_root_matches_disk(self):
        body = self.ok("/api/v1/files")
        self.assertEqual(body.get("served_by"), "grpc")
        self.assertFalse(body.get("next_page_token"))
        entries = body["entries"]
        expected = self.tree.listing(b"")
        self.assertEqual(by_name(entries), [name for name, _, _ in expected])
        for entry, (name, kind, st) in zip(entries, expected):
            self.assertEqual(entry["name"], display_form(name))
            self.assertEqual(exact_path(entry), name)
            self.assertEqual(entry["type"], FILE_TYPES[kind], entry)
            self.assertEqual(int(entry.get("mode", 0)), st.st_mode, entry)
            if kind == "file":
                self.assertEqual(int(entry.get("size", 0)), st.st_size, entry)
            modified = datetime.datetime.fromisoformat(entry["modified"].replace("Z", "+00:00"))
            self.assertEqual(int(modified.timestamp()), int(st.st_mtime), entry)

    def test_list_reports_symlinks_without_following(self):
        entries = {exact_name(e): e for e in self.ok("/api/v1/files")["entries"]}
        self.assertEqual(entries[b"link"]["type"], "FILE_TYPE_SYMLINK")
        self.assertEqual(entries[b"link"]["symlink_target"], "docs")
        # A target that leaves the root is withheld (the services' default).
        self.assertFalse(entries[b"link"]["symlink_target_redacted"])
        self.assertEqual(entries[b"outside"]["symlink_target"], "")
        self.assertTrue(entries[b"outside"]["symlink_target_redacted"])
        self.assertEqual(entries[b"fifo"]["type"], "FILE_TYPE_OTHER")

    def test_name_that_is_not_utf8_travels_exactly(self):
        entries = self.ok("/api/v1/files")["entries"]
        latin1 = [e for e in entries if exact_name(e) == b"r\xe9sum\xe9.txt"]
        self.assertEqual(len(latin1), 1, entries)
        self.assertEqual(latin1[0]["name"], "r\\xe9sum\\xe9.txt")
        self.assertTrue(latin1[0].get("raw_name"))

    def test_list_directory_whose_name_is_not_utf8(self):
        # The path parameter carries the exact bytes, percent-encoded.
        entries = self.ok("/api/v1/files", {"path": b"caf\xff"})["entries"]
        self.assertEqual([exact_path(e) for e in entries], [b"caf\xff/menu.md"])
        self.assertEqual(entries[0]["path"], "caf\\xff/menu.md")
        found = self.ok("/api/v1/search", {"q": "*", "path": b"caf\xff"})["matches"]
        self.assertEqual([exact_path(m) for m in found], [b"caf\xff/menu.md"])

    def test_list_subdirectory(self):
        entries = self.ok("/api/v1/files", {"path": "docs"})["entries"]
        self.assertEqual([exact_path(e) for e in entries],
                         [b"docs/" + name for name, _, _ in self.tree.listing(b"docs")])

    def test_list_hidden(self):
        shown = by_name(self.ok("/api/v1/files", {"hidden": "true"})["entries"])
        self.assertEqual(shown, [name for name, _, _ in self.tree.listing(b"", hidden=True)])
        self.assertIn(b".hidden", shown)
        hidden_off = by_name(self.ok("/api/v1/files", {"hidden": "false"})["entries"])
        self.assertNotIn(b".hidden", hidden_off)

    def test_list_pages_with_tokens(self):
        expected = [name for name, _, _ in self.tree.listing(b"", hidden=True)]
        first = self.ok("/api/v1/files", {"page_size": 3, "hidden": "true"})
        self.assertEqual(len(first["entries"]), 3)
        self.assertTrue(first.get("next_page_token"))
        self.assertEqual(by_name(self.list_all({"page_size": 3, "hidden": "true"})), expected)

    def test_list_sorts(self):
        listing = self.tree.listing(b"")
        names = [name for name, _, _ in listing]
        desc = by_name(self.ok("/api/v1/files", {"sort": "name", "order": "desc"})["entries"])
        self.assertEqual(desc, list(reversed(names)))
        by_time = sorted(listing, key=lambda e: e[2].st_mtime_ns)
        newest_last = by_name(self.ok("/api/v1/files", {"sort": "modified",
                                                        "order": "asc"})["entries"])
        self.assertEqual(newest_last, [name for name, _, _ in by_time])
        newest_first = by_name(self.ok("/api/v1/files", {"sort": "modified",
                                                         "order": "desc"})["entries"])
        self.assertEqual(newest_first, [name for name, _, _ in reversed(by_time)])
        sized = self.ok("/api/v1/files", {"sort": "size", "page_size": 2})
        sizes = [int(e.get("size", 0)) for e in self.list_all({"sort": "size", "page_size": 2})]
        self.assertEqual(sizes, sorted(sizes))
        self.assertEqual(len(sizes), len(names))
        self.assertEqual(len(sized["entries"]), 2)

    # -- GET /api/v1/search -------------------------------------------------

    def test_search_glob(self):
        paths, body = self.search_paths({"q": "*.md"})
        self.assertEqual(paths, self.expected_search(lambda n: fnmatch.fnmatchcase(n, b"*.md")))
        self.assertFalse(body.get("truncated", False))
        self.assertEqual(int(body.get("skipped_directories", 0)), 1, body)
        self.assertGreater(int(body.get("scanned_entries", 0)), 0, body)

    def test_search_glob_with_slash_matches_paths(self):
        paths, _ = self.search_paths({"q": "docs/**/*.md", "syntax": "glob"})
        self.assertEqual(paths, [p for p in self.expected_search(lambda n: n.endswith(b".md"))
                                 if p.startswith(b"docs/")])

    def test_search_substring_case_insensitive(self):
        paths, _ = self.search_paths({"q": "MD", "syntax": "substring",
                                      "case_insensitive": "true"})
        self.assertEqual(paths, self.expected_search(lambda n: b"md" in n.lower()))
        exact_case, _ = self.search_paths({"q": "MD", "syntax": "substring"})
        self.assertEqual(exact_case, self.expected_search(lambda n: b"MD" in n))

    def test_search_regex(self):
        paths, _ = self.search_paths({"q": r"^[ab]\.md$", "syntax": "regex"})
        self.assertEqual(paths, self.expected_search(lambda n: re.search(rb"^[ab]\.md$", n)))
        self.assertEqual(paths, [b"docs/a.md", b"docs/b.md"])

    def test_search_type_filters(self):
        for kind in ("file", "directory", "symlink", "other"):
            paths, _ = self.search_paths({"q": "*", "type": kind})
            self.assertEqual(paths, self.expected_search(lambda _n: True, kind=kind), kind)

    def test_search_under_path_with_depth(self):
        paths, _ = self.search_paths({"q": "*", "path": "docs", "max_depth": 1})
        self.assertEqual(paths, self.expected_search(lambda _n: True, rel=b"docs", max_depth=1))
        self.assertIn(b"docs/sub", paths)
        self.assertNotIn(b"docs/sub/deep.md", paths)

    def test_search_hidden(self):
        paths, _ = self.search_paths({"q": "*.md", "hidden": "true"})
        self.assertEqual(paths, self.expected_search(lambda n: fnmatch.fnmatchcase(n, b"*.md"),
                                                     hidden=True))
        self.assertIn(b"docs/sub/.secret.md", paths)

    def test_search_size_bounds(self):
        paths, _ = self.search_paths({"q": "*", "min_size": 30, "max_size": 2048})
        self.assertEqual(paths, self.expected_search(lambda _n: True, min_size=30, max_size=2048))
        self.assertIn(b"docs/b.md", paths)

    def test_search_max_results_truncates(self):
        body = self.ok("/api/v1/search", {"q": "*", "max_results": 2})
        self.assertEqual(len(body["matches"]), 2)
        self.assertIs(body.get("truncated"), True, body)
        self.assertEqual(body.get("truncation_reason"), "TRUNCATION_REASON_MAX_RESULTS", body)
        everything = self.expected_search(lambda _n: True)
        for m in body["matches"]:
            self.assertIn(exact_path(m), everything)

    def test_search_finds_name_that_is_not_utf8(self):
        body = self.ok("/api/v1/search", {"q": "sum", "syntax": "substring"})
        self.assertEqual([exact_path(m) for m in body["matches"]], [b"r\xe9sum\xe9.txt"])
        self.assertEqual(body["matches"][0]["path"], "r\\xe9sum\\xe9.txt")

    # -- errors -------------------------------------------------------------

    def test_unknown_and_repeated_parameters_are_400(self):
        self.problem(400, "/api/v1/files", {"colour": "red"}, code="INVALID_ARGUMENT")
        self.problem(400, "/api/v1/search", {"q": "*", "pattern": "*"})
        self.problem(400, "/api/v1/files?path=docs&path=docs")
        self.problem(400, "/healthz", {"verbose": "1"})
        self.problem(400, "/api/v1/operations/x", {"wait": "1"})

    def test_malformed_values_are_400(self):
        for params in ({"page_size": "ten"}, {"page_size": "-1"}, {"page_size": "20000"},
                       {"page_size": "0"}, {"page_size": " 5"}, {"hidden": "yes"},
                       {"sort": "colour"}, {"order": "sideways"}, {"hidden": "maybe"},
                       {"page_token": "not-a-token"}):
            self.problem(400, "/api/v1/files", params)
        for params in ({"q": "*", "syntax": "fuzzy"}, {"q": "*", "type": "pipe"},
                       {"q": "*", "max_depth": "0"}, {"q": "*", "max_depth": "deep"},
                       {"q": "*", "case_insensitive": "2"}, {"q": "*", "min_size": "-5"},
                       {"q": "*", "min_size": "10", "max_size": "5"},
                       {"q": "*", "max_results": "1000000"}, {"q": "(", "syntax": "regex"},
                       {}):
            self.problem(400, "/api/v1/search", params)

    def test_path_escaping_the_root_is_400(self):
        self.problem(400, "/api/v1/files", {"path": "../.."}, code="INVALID_ARGUMENT")
        self.problem(400, "/api/v1/files", {"path": "/etc"}, code="INVALID_ARGUMENT")
        self.problem(400, "/api/v1/search", {"q": "*", "path": "docs/../../x"})

    def test_symlink_leaving_the_root_is_403(self):
        self.problem(403, "/api/v1/files", {"path": "outside"}, code="PERMISSION_DENIED")

    def test_unreadable_directory_is_403(self):
        self.problem(403, "/api/v1/files", {"path": "locked"}, code="PERMISSION_DENIED")

    def test_missing_path_is_404(self):
        doc = self.problem(404, "/api/v1/files", {"path": "no/such/dir"}, code="NOT_FOUND")
        self.assertIn("no/such/dir", doc["detail"])
        self.problem(404, "/api/v1/search", {"q": "*", "path": "nowhere"}, code="NOT_FOUND")

    def test_listing_a_file_is_400_failed_precondition(self):
        self.problem(400, "/api/v1/files", {"path": "README.md"}, code="FAILED_PRECONDITION")

    def test_api_key_is_required_on_api_routes(self):
        r = self.http.get("/api/v1/files", auth=False)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["code"], "UNAUTHENTICATED")
        self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers)
        self.problem(401, "/api/v1/search", {"q": "*"}, auth=False)
        self.problem(401, "/api/v1/nothing", auth=False)
        self.problem(401, "/api/v1/files", auth=False, headers={"Authorization": "Bearer wrong"})
        self.problem(401, "/api/v1/files", auth=False,
                     headers={"Authorization": f"Bearer {API_KEY}x"})
        self.problem(401, "/api/v1/files", auth=False, headers={"Authorization": API_KEY})
        self.problem(401, "/api/v1/operations/abc", auth=False)
        # The key is never needed outside /api/.
        self.assertEqual(self.http.get("/healthz", auth=False).status, 200)

    def test_wrong_method_is_405(self):
        for method in ("POST", "DELETE", "PUT"):
            r = self.http.request("/api/v1/files", method=method)
            self.assertEqual(r.status, 405, r)
            self.assertEqual(r.content_type, "application/problem+json")
            self.assertEqual(r.headers.get("allow"), "GET, HEAD")
        self.assertEqual(self.http.request("/healthz", method="POST").status, 405)
        self.assertEqual(self.http.request("/api/v1/search", {"q": "*"}, method="POST").status,
                         405)

    def test_unknown_route_is_404(self):
        self.problem(404, "/api/v1/nothing")
        self.problem(404, "/api/v2/files")
        self.problem(404, "/api/v1/files/")
        self.problem(404, "/API/v1/files")

    def test_head_answers_like_get_without_body(self):
        r = self.http.request("/api/v1/files", method="HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json")
        self.assertEqual(r.body, b"")

    def test_unknown_operation_is_404(self):
        self.problem(404, "/api/v1/operations/no-such-operation")

    # -- request ids, health, readiness, metrics ----------------------------

    def test_request_id_is_echoed_and_logged(self):
        r = self.http.get("/api/v1/files", headers={"X-Request-Id": "e2e-request-42"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("x-request-id"), "e2e-request-42")
        harness.wait_until(lambda: any("e2e-request-42" in line for line in self.gw.lines()), 10,
                           "the request id in the gateway's log")

    def test_malformed_request_id_is_400(self):
        self.problem(400, "/api/v1/files", headers={"X-Request-Id": "has space"})
        self.problem(400, "/api/v1/files", headers={"X-Request-Id": "x" * 129})

    def test_request_id_is_generated_when_absent(self):
        first = self.http.get("/api/v1/files").headers.get("x-request-id")
        second = self.http.get("/api/v1/files", {"path": "nowhere"}).headers.get("x-request-id")
        self.assertTrue(first)
        self.assertTrue(second)
        self.assertNotEqual(first, second)

    def test_healthz(self):
        r = self.http.get("/healthz")
        self.assertEqual(r.status, 200, r)

    def test_readyz_reports_each_backend(self):
        r = self.http.get("/readyz")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["status"], "ready", body)
        self.assertEqual(body["missing"], [], body)
        for backend in ("lister", "searcher"):
            state = body["backends"][backend]
            self.assertIs(state["ready"], True, body)
            self.assertIs(state["grpc"]["available"], True, body)
            self.assertIs(state["broker"]["configured"], False, body)
            self.assertEqual(state["breaker"], "closed", body)

    def test_metrics_count_requests(self):
        def count(**labels):
            r = self.http.get("/metrics")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.content_type.startswith("text/plain"), r)
            self.assertIn("# TYPE filemesh_http_requests_total counter", r.body.decode())
            return metric_value(r.body.decode(), "filemesh_http_requests_total",
                                route="/api/v1/files", **labels) or 0.0

        listed = count(code="200", served_by="grpc")
        not_found = count(code="404")
        for _ in range(3):
            self.ok("/api/v1/files", {"path": "docs"})
        self.problem(404, "/api/v1/files", {"path": "nowhere"})
        self.assertEqual(count(code="200", served_by="grpc") - listed, 3)
        self.assertEqual(count(code="404") - not_found, 1)


class DegradedBackendsTest(harness.ProcessTestCase):
    """The status a client gets when the backends cannot answer."""

    def setUp(self):
        self.tree = harness.SampleTree()
        self.addCleanup(self.tree.close)

    def test_no_backend_reachable_is_503(self):
        # Nothing listens on the lister's port and there is no broker.
        dead = harness.loopback(harness.free_port())
        gw = self.gateway(lister_grpc=dead, searcher_grpc=dead, request_timeout="2s")
        doc = gw.http.get("/api/v1/files")
        self.assertEqual(doc.status, 503, doc)
        self.assertEqual(doc.content_type, "application/problem+json")
        self.assertEqual(doc.json()["code"], "UNAVAILABLE")
        harness.wait_until(lambda: gw.http.get("/readyz").status == 503, 10, "/readyz 503")
        self.assertEqual(gw.http.get("/healthz").status, 200)

    def test_backend_that_stops_answering_is_503(self):
        # A searcher that stops answering on its open connection (stopped),
        # and no broker to fall back to: the gateway's keepalive pings go
        # unanswered, so it knows the server is gone (503) instead of
        # waiting out the request's deadline (which would be 504).
        searcher = self.mserv("mserv2", self.tree.root, grpc_listen="127.0.0.1:0")
        gw = self.gateway(searcher_grpc=searcher.grpc_address, request_timeout="10s",
                          attempt_timeout="300ms")
        self.assertEqual(gw.http.get("/api/v1/search", {"q": "*"}).status, 200)
        searcher.signal(signal.SIGSTOP)
        self.addCleanup(searcher.signal, signal.SIGCONT)
        r = gw.http.get("/api/v1/search", {"q": "*"})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.content_type, "application/problem+json")
        self.assertEqual(r.json()["code"], "UNAVAILABLE")
        # The client is told what failed and the request id; gRPC's own text
        # (the peer address, the keepalive) is in the gateway's log only.
        detail = r.json()["detail"]
        request_id = r.headers["x-request-id"]
        self.assertIn("the search service cannot be reached now", detail)
        self.assertIn(request_id, detail)
        self.assertNotIn(searcher.grpc_address, r.body.decode())
        failed = gw.wait_for_log("backend_failed", request_id=request_id)
        self.assertIn("keepalive", failed["error"])

    def test_service_out_of_file_descriptors_is_503_with_retry_after(self):
        # ResourceExhausted from the lister (EMFILE opening the directory):
        # the service process may not open one more descriptor.
        lister = self.mserv("mserv1", self.tree.root, grpc_listen="127.0.0.1:0", threads=1)
        gw = self.gateway(lister_grpc=lister.grpc_address, searcher_grpc=lister.grpc_address)
        self.assertEqual(gw.http.get("/api/v1/files").status, 200)  # connected
        open_fds = len(os.listdir(f"/proc/{lister.pid}/fd"))
        _, hard = resource.prlimit(lister.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(lister.pid, resource.RLIMIT_NOFILE, (open_fds, hard))
        r = gw.http.get("/api/v1/files", {"path": "docs"})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["code"], "RESOURCE_EXHAUSTED")
        self.assertEqual(r.headers.get("retry-after"), "1", r)
        resource.prlimit(lister.pid, resource.RLIMIT_NOFILE, (hard, hard))
        self.assertEqual(gw.http.get("/api/v1/files", {"path": "docs"}).status, 200)


if __name__ == "__main__":
    harness.main()
