"""The examples of docs/rest.md and docs/services.md, run as a reader would
run them. rest.md: every
```console block marked `<!-- runnable: STATUS ... -->` (one HTTP status per
`$ ` command, `-` for a pipeline that must succeed) is run with bash against
live services (mserv1, mserv2 over gRPC, and the gateway; blocks marked
"gateway with --api_key" against one with a key), on a tree that holds what
the examples name (docs/, reports/, ...). Each command must answer the status
written beside it, and where the docs show an answer, every field the live
answer has must be named there: an example that drifts from the API fails.
services.md: the block marked runnable (the services and the gateway started
by hand) runs as a script against a private RabbitMQ node, with its ports and
served root changed to free ones and a tree of the test's, and must print a
listing served over gRPC.

Needs curl."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import harness

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs")
BLOCK = re.compile(r"<!-- runnable( \(gateway with --api_key\))?: ([^>]*?) ?-->\n```console\n"
                   r"(.*?)```", re.S)
KEY = "docs-example-key"


def runnable_blocks(doc):
    """[(keyed, [(command, expected status or None, documented output)])]."""
    with open(os.path.join(DOCS, doc), encoding="utf-8") as f:
        text = f.read()
    blocks = []
    for keyed, statuses, body in BLOCK.findall(text):
        commands = []
        for line in body.splitlines():
            if line.startswith("$ "):
                commands.append([line[2:], ""])
            elif commands:
                commands[-1][1] += line + "\n"
        expected = statuses.split()
        if len(expected) != len(commands):
            raise AssertionError(f"{doc}: {len(expected)} statuses for {len(commands)} "
                                 f"commands in:\n{body}")
        blocks.append((bool(keyed), [(c, None if e == "-" else int(e), out)
                                     for (c, out), e in zip(commands, expected)]))
    return blocks


def field_names(value, out):
    if isinstance(value, dict):
        for key, item in value.items():
            out.add(key)
            field_names(item, out)
    elif isinstance(value, list):
        for item in value:
            field_names(item, out)
    return out


class DocsCurlTest(harness.ProcessTestCase):

    def setUp(self):
        if shutil.which("curl") is None:
            self.fail("curl is missing (apt-get install curl; .ci/deps does)")
        self.root = tempfile.mkdtemp(prefix="filemesh-docs-tree-")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o755)
        for path, size in (("docs/a.md", 10), ("docs/b.csv", 2000), ("docs/guide.txt", 300),
                           ("reports/q1.csv", 4), ("reports/r2.csv", 8),
                           ("reports/invoice-12.txt", 5), ("notes/Draft-plan.txt", 7)):
            full = os.path.join(self.root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(b"x" * size)
        lister = self.mserv("mserv1", self.root, grpc_listen="127.0.0.1:0")
        searcher = self.mserv("mserv2", self.root, grpc_listen="127.0.0.1:0")
        self.gateways = {
            False: self.gateway(lister_grpc=lister.grpc_address,
                                searcher_grpc=searcher.grpc_address, name="gateway-open"),
            True: self.gateway(lister_grpc=lister.grpc_address,
                               searcher_grpc=searcher.grpc_address, api_key=KEY,
                               name="gateway-key"),
        }

    def run_command(self, command, keyed):
        gw = self.gateways[keyed].http
        env = dict(os.environ, GW=f"http://{gw.host}:{gw.port}", KEY=KEY)
        pipeline = "|" in command.split("#", 1)[0]
        if not pipeline:
            # The status on a line of its own after the body.
            command = command.replace("curl ", "curl -w '\\n%{http_code}\\n' ", 1)
        done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, timeout=60,
                              check=False)
        return pipeline, done

    def test_every_runnable_example_of_rest_md_answers_as_written(self):
        blocks = runnable_blocks("rest.md")
        self.assertGreaterEqual(len(blocks), 6)
        ran = 0
        for keyed, commands in blocks:
            for command, status, documented in commands:
                with self.subTest(command=command):
                    pipeline, done = self.run_command(command, keyed)
                    ran += 1
                    if pipeline:
                        self.assertEqual(done.returncode, 0, done.stderr)
                        continue
                    self.assertEqual(done.returncode, 0, done.stderr)
                    body, _, code = done.stdout.decode("utf-8", "replace").rstrip("\n") \
                        .rpartition("\n")
                    self.assertEqual(int(code), status, body)
                    if documented.lstrip().startswith("{"):
                        live = field_names(json.loads(body), set())
                        shown = set(re.findall(r'"([a-z_]+)":', documented))
                        self.assertEqual(live - shown, set(),
                                         f"fields the answer has and the docs do not show:\n"
                                         f"{body}")
        self.assertGreaterEqual(ran, 11)


class ServicesByHandTest(harness.BrokerTestCase):

    def test_the_by_hand_block_of_services_md_serves_a_listing(self):
        with open(os.path.join(DOCS, "services.md"), encoding="utf-8") as f:
            found = re.findall(r"<!-- runnable[^>]*-->\n```sh\n(.*?)```", f.read(), re.S)
        self.assertEqual(len(found), 1, "services.md: one runnable sh block expected")
        script = found[0]
        broker_port = self.amqp_url.rsplit(":", 1)[1].split("/")[0]
        replace = {"5672": broker_port, "50051": str(harness.free_port()),
                   "50052": str(harness.free_port()), "8080": str(harness.free_port()),
                   "/srv/data": self.tree.root}
        for old, new in replace.items():
            self.assertIn(old, script)
            script = script.replace(old, new)
        for program in ("mserv1", "mserv2", "gateway"):
            script = re.sub(rf"^{program} ", harness.BINARIES[program] + " ", script, flags=re.M)
        # The script's background processes are a group of its own, stopped
        # at the end whatever happens; they keep its stdout open, so it goes
        # to a file and the script itself is waited for.
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(["bash", "-c", script], stdout=out,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.fail("the services.md block did not finish within 60 s")
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            out.seek(0)
            printed = out.read()
        self.assertEqual(proc.returncode, 0)
        body = json.loads(printed)
        self.assertEqual(body["served_by"], "grpc", body)
        self.assertEqual(len(body["entries"]), 5, body)


if __name__ == "__main__":
    harness.main()
