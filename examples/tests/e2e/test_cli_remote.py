"""Scenario: the `filemesh` command's remote mode (--gateway) against real
processes: mserv1 and mserv2 over gRPC behind the gateway (with an API key),
on the sample tree. For every flag, `ls` and `find` through the gateway print
exactly what local mode prints on the same tree (and exit the same way);
problems print as `filemesh: <title>: <detail>` with docs/cli.md's exit codes;
a call the broker queued (202) is followed through its operation.

The command is the installed one: $FILEMESH_CLI (ctest sets it)."""

import http.server
import os
import subprocess
import threading

import harness

CLI = os.environ.get("FILEMESH_CLI")
KEY = "cli-remote-key"


def run(args, env=None, timeout=60):
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("FILEMESH_GATEWAY", "FILEMESH_API_KEY")}
    full_env.update(env or {})
    done = subprocess.run([CLI, *args], capture_output=True, env=full_env, timeout=timeout,
                          check=False)
    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace")


class RemoteModeTest(harness.ProcessTestCase):

    def setUp(self):
        if not CLI or not os.access(CLI, os.X_OK):
            self.fail("FILEMESH_CLI does not name the installed filemesh command")
        self.tree = harness.SampleTree()
        self.addCleanup(self.tree.close)
        lister = self.mserv("mserv1", self.tree.root, grpc_listen="127.0.0.1:0")
        searcher = self.mserv("mserv2", self.tree.root, grpc_listen="127.0.0.1:0")
        self.gw = self.gateway(lister_grpc=lister.grpc_address,
                               searcher_grpc=searcher.grpc_address, api_key=KEY)
        self.url = f"http://{self.gw.http.host}:{self.gw.http.port}"

    def remote(self, *args, **kwargs):
        return run([args[0], "--gateway", self.url, "--api-key", KEY, *args[1:]], **kwargs)

    def local(self, *args):
        return run([args[0], "--root", self.tree.root, *args[1:]])

    def test_ls_prints_what_local_mode_prints_for_every_flag(self):
        for flags in ([], ["docs"], ["docs/sub"], ["--hidden"], ["--sort", "size", "--desc"],
                      ["--sort", "modified"], ["--json", "docs"], ["-0", "docs"],
                      ["--print0", "--hidden", "docs/sub"], ["--page-size", "2"],
                      [os.fsdecode(b"caf\xff")]):
            with self.subTest(flags=flags):
                remote = self.remote("ls", *flags)
                local = self.local("ls", *flags)
                if "size" in flags:
                    # The services withhold the target of `outside` (it leaves
                    # the root), and with it its size (the target's length):
                    # 0 bytes, the smallest here, so last in --desc.
                    lines = local[1].splitlines(keepends=True)
                    lines.remove(b"outside\n")
                    local = (local[0], b"".join(lines) + b"outside\n", local[2])
                self.assertEqual(remote, local)
                self.assertEqual(remote[0], 0, remote[2])
        # The token printed by a remote page continues remotely.
        code, first, err = self.remote("ls", "--page-size", "2")
        token = err.split("--page-token ", 1)[1].strip()
        second = self.remote("ls", "--page-size", "2", "--page-token", token)
        self.assertEqual(second, self.local("ls", "--page-size", "2", "--page-token", token))
        self.assertNotEqual(second[1], first)

    def test_find_prints_what_local_sorted_mode_prints_for_every_flag(self):
        for flags in (["*.md"], ["--path", "docs", "*.md"], ["--glob", "docs/**"],
                      ["--substring", "-i", "GUIDE"], ["--regex", "^[a-d]", "--type", "f"],
                      ["--type", "d", "*"], ["--type", "l", "*"], ["--max-depth", "1", "*"],
                      ["--min-size", "100", "--max-size", "3000", "*"], ["--hidden", "*.md"],
                      ["--json", "*.md"], ["-0", "*"], ["--timeout", "30", "*"]):
            with self.subTest(flags=flags):
                remote = self.remote("find", *flags)
                local = self.local("find", "--sort", *flags)
                self.assertEqual(remote, local)
                self.assertEqual(remote[0], 0, remote[2])
        # A cap: as many matches, the same note on stderr.
        code, out, err = self.remote("find", "--max-results", "2", "*")
        self.assertEqual(code, 0)
        self.assertEqual(len(out.splitlines()), 2)
        self.assertEqual(err, self.local("find", "--sort", "--max-results", "2", "*")[2])
        self.assertIn("--max-results reached", err)

    def test_the_environment_names_the_gateway_and_the_key(self):
        env = {"FILEMESH_GATEWAY": self.url, "FILEMESH_API_KEY": KEY}
        self.assertEqual(run(["ls", "docs"], env=env), self.local("ls", "docs"))
        self.assertEqual(run(["find", "*.md"], env=env), self.local("find", "--sort", "*.md"))

    def test_problems_print_one_line_with_their_exit_code(self):
        code, out, err = self.remote("ls", "nowhere")
        self.assertEqual((code, out), (1, b""))
        self.assertRegex(err, r'^filemesh: Not Found: open "nowhere": .*\n$')
        self.assertEqual(code, self.local("ls", "nowhere")[0])  # as local mode
        code, _, err = self.remote("ls", "../etc")
        self.assertEqual(code, 1)
        self.assertTrue(err.startswith("filemesh: Bad Request: "), err)
        code, _, err = self.remote("ls", "outside")
        self.assertEqual(code, 1)
        self.assertTrue(err.startswith("filemesh: Forbidden: "), err)
        code, _, err = self.remote("find", "--regex", "(")
        self.assertEqual(code, 1)
        self.assertTrue(err.startswith("filemesh: Bad Request: "), err)

        code, _, err = run(["ls", "--gateway", self.url, "--api-key", "wrong"])
        self.assertEqual(code, 3)
        self.assertEqual(err, "filemesh: Unauthorized: the bearer key is not valid\n")
        code, _, err = run(["find", "--gateway", self.url, "*"])
        self.assertEqual(code, 3)
        self.assertTrue(err.startswith("filemesh: Unauthorized: "), err)

    def test_an_unreachable_or_foreign_server_is_exit_4(self):
        closed = harness.loopback(harness.free_port())
        code, _, err = run(["ls", "--gateway", f"http://{closed}"])
        self.assertEqual(code, 4)
        # The reason in full, not httplib's one word ("Connection").
        self.assertEqual(err, f"filemesh: cannot reach the gateway at http://{closed}: "
                              f"connection refused (nothing listens on {closed})\n")
        # An HTTP server that is not a filemesh gateway.
        server = http.server.ThreadingHTTPServer(("127.0.0.1", harness.free_port()),
                                                 http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        foreign = f"http://127.0.0.1:{server.server_address[1]}"
        code, _, err = run(["find", "--gateway", foreign, "*"])
        self.assertEqual(code, 4)
        self.assertIn("not a filemesh gateway", err)

    def test_usage_errors_are_exit_2(self):
        for args in (["ls", "--gateway", "ftp://host"], ["ls", "--gateway", "http://"],
                     ["ls", "--gateway", "http://h:1/path"],
                     ["ls", "--gateway", self.url, "--root", "/"],
                     ["find", "--gateway", self.url, "--threads", "2", "*"],
                     ["find", "--gateway", self.url, "--max-results", "100001", "*"]):
            with self.subTest(args=args):
                code, out, err = run(args)
                self.assertEqual((code, out), (2, b""), err)
                self.assertIn("see filemesh", err)


class QueuedRemoteCallTest(harness.BrokerTestCase):

    def test_a_queued_call_is_followed_until_it_completes(self):
        if not CLI:
            self.fail("FILEMESH_CLI is not set")
        dead = harness.loopback(harness.free_port())
        gw = self.gateway(lister_grpc=dead, searcher_grpc=dead, amqp_url=self.amqp_url,
                          queue_prefix=self.prefix, request_timeout="1s")
        url = f"http://{gw.http.host}:{gw.http.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILEMESH_")}
        listing = subprocess.Popen([CLI, "ls", "--gateway", url, "docs"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env)
        search = subprocess.Popen([CLI, "find", "--gateway", url, "*.md"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        # Both calls were answered 202 before any replica runs.
        harness.wait_until(lambda: len(gw.events("http_request", status="202")) >= 2, 30,
                           "two 202 answers")
        self.assertIsNone(listing.poll())
        self.mserv("mserv1", self.tree.root, amqp_url=self.amqp_url, queue_prefix=self.prefix)
        self.mserv("mserv2", self.tree.root, amqp_url=self.amqp_url, queue_prefix=self.prefix)
        out, err = listing.communicate(timeout=60)
        self.assertEqual(listing.returncode, 0, err)
        self.assertEqual(err, b"")  # no progress line: stderr is not a terminal
        local = run(["ls", "--root", self.tree.root, "docs"])
        self.assertEqual(out, local[1])
        out, err = search.communicate(timeout=60)
        self.assertEqual(search.returncode, 0, err)
        self.assertEqual(out, run(["find", "--root", self.tree.root, "--sort", "*.md"])[1])


if __name__ == "__main__":
    harness.main()
