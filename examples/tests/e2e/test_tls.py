"""Scenario: the stack with every hop encrypted. mserv1 and mserv2 serve gRPC
over mutual TLS (a client certificate of the test CA required, and only the
gateway's name allowed); the gateway calls them with its client certificate
and serves HTTPS with a key. Certificates are made by tests/tls/make_certs.sh
($FILEMESH_CERTS_SCRIPT) with the openssl command.

Checked: the API answers over HTTPS with HSTS; plain HTTP on the HTTPS port is
told to use https://; a client that does not trust the CA refuses the gateway;
a gateway without a client certificate gets no listing from the services;
the installed command ($FILEMESH_CLI, when set) verifies the gateway with --ca
or FILEMESH_CA and says what to do when it cannot."""

import hashlib
import http.client
import os
import shutil
import ssl
import subprocess
import tempfile

import harness

SCRIPT = os.environ.get("FILEMESH_CERTS_SCRIPT")
CLI = os.environ.get("FILEMESH_CLI")
KEY = "tls-e2e-key"
SUB_KEY = b"tls-e2e-sub-key"


class SecureStackTest(harness.ProcessTestCase):

    @classmethod
    def setUpClass(cls):
        if not SCRIPT or not os.path.exists(SCRIPT):
            raise AssertionError("FILEMESH_CERTS_SCRIPT does not name tests/tls/make_certs.sh")
        cls.certs = tempfile.mkdtemp(prefix="filemesh-e2e-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        subprocess.run(["bash", SCRIPT, cls.certs], check=True, stdout=subprocess.DEVNULL)

    def pem(self, name):
        return os.path.join(self.certs, name + ".pem")

    def key(self, name):
        return os.path.join(self.certs, name + ".key")

    def setUp(self):
        self.tree = harness.SampleTree()
        self.addCleanup(self.tree.close)
        service_tls = [f"--tls_cert={self.pem('server')}", f"--tls_key={self.key('server')}",
                       f"--tls_ca={self.pem('ca')}", "--allowed_peers=gateway"]
        self.lister = self.mserv("mserv1", self.tree.root, grpc_listen="127.0.0.1:0",
                                 extra=service_tls)
        self.searcher = self.mserv("mserv2", self.tree.root, grpc_listen="127.0.0.1:0",
                                   extra=service_tls)
        self.gw = self.start_gateway(client_cert="client")
        self.ctx = ssl.create_default_context(cafile=self.pem("ca"))
        self.https = harness.HttpClient(self.gw.http.host, self.gw.http.port, api_key=KEY,
                                        ssl_context=self.ctx)
        self.url = f"https://127.0.0.1:{self.gw.http.port}"

    def start_gateway(self, client_cert, name="gateway"):
        backend = [f"--backend_ca={self.pem('ca')}"]
        if client_cert:
            backend += [f"--backend_tls_cert={self.pem(client_cert)}",
                        f"--backend_tls_key={self.key(client_cert)}"]
        keys = os.path.join(self.certs, "api-keys")
        with open(keys, "w", encoding="ascii") as out:
            out.write(f"# name sha256 scope\nsub-reader {hashlib.sha256(SUB_KEY).hexdigest()} "
                      "docs/sub\n")
        self.audit = os.path.join(self.certs, f"audit-{name}.log")
        return self.gateway(lister_grpc=self.lister.grpc_address,
                            searcher_grpc=self.searcher.grpc_address, api_key=KEY, name=name,
                            extra=backend + [f"--tls_cert={self.pem('server')}",
                                             f"--tls_key={self.key('server')}",
                                             f"--api_keys_file={keys}",
                                             f"--audit_log={self.audit}"])

    def test_the_api_answers_over_https_with_hsts(self):
        listed = self.https.get("/api/v1/files", {"path": "docs"})
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual([harness.exact_path(e) for e in listed.json()["entries"]],
                         [b"docs/" + name for name, _, _ in self.tree.listing(b"docs")])
        self.assertEqual(listed.headers.get("strict-transport-security"), "max-age=31536000")
        found = self.https.get("/api/v1/search", {"q": "*.md"})
        self.assertEqual(found.status, 200, found)
        self.assertTrue(found.json().get("matches"))
        self.gw.wait_for_log("http_listening", tls="on")

    def test_a_scoped_key_reads_only_its_scope_and_every_request_is_audited(self):
        sub = harness.HttpClient("127.0.0.1", self.gw.http.port, api_key=SUB_KEY.decode(),
                                 ssl_context=self.ctx)
        inside = sub.get("/api/v1/files")
        self.assertEqual(inside.status, 200, inside)
        self.assertEqual([harness.exact_path(e) for e in inside.json()["entries"]],
                         [b"docs/sub/" + name for name, _, _ in self.tree.listing(b"docs/sub")])
        self.assertEqual(sub.get("/api/v1/files", {"path": "docs"}).status, 403)
        self.assertEqual(sub.get("/api/v1/search", {"q": "*", "path": ""}).status, 200)
        self.assertEqual(sub.get("/api/v1/search", {"q": "*", "path": "docs"}).status, 403)
        self.assertEqual(self.https.get("/api/v1/files", {"path": "docs"}).status, 200)
        with open(self.audit, encoding="utf-8") as lines:
            audited = [harness.parse_log_line(line) for line in lines]
        self.assertEqual([(a["key"], a["path"], a["status"]) for a in audited],
                         [("sub-reader", "docs/sub", "200"), ("sub-reader", "docs", "403"),
                          ("sub-reader", "docs/sub", "200"), ("sub-reader", "docs", "403"),
                          ("api_key", "docs", "200")])
        for a in audited:
            self.assertEqual(a["event"], "api_request")
            self.assertTrue(a["client"].startswith("127.0.0.1:"), a)
            self.assertNotIn(SUB_KEY.decode(), str(a))

    def test_plain_http_on_the_https_port_is_told_to_use_https(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.http.port, timeout=15)
        try:
            conn.request("GET", "/api/v1/files")
            reply = conn.getresponse()
            self.assertEqual(reply.status, 400)
            self.assertIn(b"https://", reply.read())
        finally:
            conn.close()

    def test_a_client_that_does_not_trust_the_ca_refuses_the_gateway(self):
        untrusting = harness.HttpClient("127.0.0.1", self.gw.http.port, api_key=KEY,
                                        ssl_context=ssl.create_default_context())
        with self.assertRaises(ssl.SSLCertVerificationError):
            untrusting.get("/healthz")

    def test_a_gateway_without_a_client_certificate_gets_no_listing(self):
        anonymous = self.start_gateway(client_cert="", name="gateway-anonymous")
        client = harness.HttpClient("127.0.0.1", anonymous.http.port, api_key=KEY,
                                    ssl_context=self.ctx)
        refused = client.get("/api/v1/files")
        self.assertEqual(refused.status, 503, refused)
        # The problem says what failed, not gRPC's transport text.
        detail = refused.json()["detail"]
        self.assertNotIn("127.0.0.1", detail)
        self.assertIn(refused.headers["x-request-id"], detail)
        # An intruder's certificate (the CA's, another name) is refused by name.
        intruder = self.start_gateway(client_cert="intruder", name="gateway-intruder")
        client = harness.HttpClient("127.0.0.1", intruder.http.port, api_key=KEY,
                                    ssl_context=self.ctx)
        self.assertEqual(client.get("/api/v1/files").status, 403)
        self.lister.wait_for_log("tls_peer_refused")

    def run_cli(self, *args, env=None):
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("FILEMESH_GATEWAY", "FILEMESH_API_KEY", "FILEMESH_CA")}
        full_env.update(env or {})
        done = subprocess.run([CLI, *args], capture_output=True, env=full_env, timeout=60,
                              check=False)
        return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace")

    def test_the_command_verifies_the_gateway_with_its_ca(self):
        if not CLI or not os.access(CLI, os.X_OK):
            self.skipTest("FILEMESH_CLI is not set (the command is not installed)")
        local = self.run_cli("ls", "--root", self.tree.root, "docs")
        self.assertEqual(local[0], 0, local[2])
        remote = self.run_cli("ls", "--gateway", self.url, "--api-key", KEY, "--ca",
                              self.pem("ca"), "docs")
        self.assertEqual(remote, local)
        from_env = self.run_cli("ls", "--gateway", self.url, "docs",
                                env={"FILEMESH_CA": self.pem("ca"), "FILEMESH_API_KEY": KEY})
        self.assertEqual(from_env, local)
        code, out, err = self.run_cli("ls", "--gateway", self.url, "--api-key", KEY, "docs")
        self.assertNotEqual(code, 0)
        self.assertEqual(out, b"")
        self.assertIn("--ca", err)
        code, _, err = self.run_cli("ls", "--gateway", self.url.replace("https", "http"),
                                    "--ca", self.pem("ca"), "docs")
        self.assertEqual(code, 2, err)
        self.assertIn("https://", err)


if __name__ == "__main__":
    harness.main()
