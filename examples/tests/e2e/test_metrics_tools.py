"""Scenario: the gateway's /metrics as Prometheus' own tools read it.

`promtool check metrics` (Debian's prometheus package) lints a live scrape
taken after requests on every route, both backends and several statuses;
docs/alerts.yml passes `promtool check rules`, its unit tests
(tests/alerts_test.yml) pass `promtool test rules`, and every filemesh_*
series an alert reads is one the gateway exports.

Without promtool the scenario is skipped, or fails when CI is set."""

import os
import re
import shutil
import subprocess
import unittest

import harness

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                     ".."))
PROMTOOL = shutil.which("promtool")


def promtool(*args, stdin=None):
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False, cwd=REPO)


class MetricsToolsTest(harness.ProcessTestCase):

    def setUp(self):
        if PROMTOOL is None:
            message = "promtool is missing (Debian package prometheus)"
            if os.environ.get("CI"):
                self.fail(message)
            raise unittest.SkipTest(message)

    def scrape(self):
        tree = harness.SampleTree()
        self.addCleanup(tree.close)
        lister = self.mserv("mserv1", tree.root, grpc_listen="127.0.0.1:0")
        searcher = self.mserv("mserv2", tree.root, grpc_listen="127.0.0.1:0")
        gw = self.gateway(lister_grpc=lister.grpc_address, searcher_grpc=searcher.grpc_address)
        for path, params, status in [
                ("/api/v1/files", {"path": "docs"}, 200),
                ("/api/v1/files", {"path": "nowhere"}, 404),
                ("/api/v1/files", {"page_size": "0"}, 400),
                ("/api/v1/search", {"q": "*.md"}, 200),
                ("/api/v1/operations/" + "0" * 32, None, 404),
                ("/healthz", None, 200), ("/readyz", None, 200), ("/", None, 200),
                ("/ui/app.js", None, 200), ("/api/v1/openapi.yaml", None, 200),
                ("/nope", None, 404)]:
            self.assertEqual(gw.http.get(path, params).status, status, path)
        response = gw.http.get("/metrics")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers.get("content-type"), "text/plain; version=0.0.4")
        return response.body.decode("utf-8")

    def test_a_live_scrape_passes_promtool_check_metrics(self):
        text = self.scrape()
        self.assertIn('filemesh_http_requests_total{code="404",route="/api/v1/files"', text)
        checked = promtool("check", "metrics", stdin=text)
        self.assertEqual((checked.returncode, checked.stdout + checked.stderr), (0, ""))
        # A name against the conventions is caught (the check can fail).
        bad = text + "# HELP filemesh_bad_count x\n# TYPE filemesh_bad_count counter\n" \
                     "filemesh_bad_count 1\n"
        self.assertNotEqual(promtool("check", "metrics", stdin=bad).returncode, 0)

    def test_the_alert_rules_pass_check_and_their_unit_tests(self):
        checked = promtool("check", "rules", "docs/alerts.yml")
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn("SUCCESS: 5 rules found", checked.stdout)
        tested = promtool("test", "rules", "tests/alerts_test.yml")
        self.assertEqual(tested.returncode, 0, tested.stdout + tested.stderr)

    def test_every_series_an_alert_reads_is_exported(self):
        with open(os.path.join(REPO, "docs", "alerts.yml"), encoding="utf-8") as f:
            used = set(re.findall(r"\b(filemesh_[a-z_]+)", f.read()))
        exported = set(re.findall(r"^# TYPE (\S+) ", self.scrape(), re.M))
        self.assertTrue(used)
        self.assertEqual(used - exported, set())


if __name__ == "__main__":
    harness.main()
