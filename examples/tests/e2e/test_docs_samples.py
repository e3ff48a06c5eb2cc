"""The client samples of the docs, run as a reader would run them: every
block of docs/rpc.md and docs/protocol.md marked `<!-- sample: FILE -->` is
written to FILE, the messages are generated from the installed .proto files
with protoc (as the docs say), and each client lists `docs` of the sample tree
through a live mserv1: grpc_client.py over gRPC (grpcio), amqp_client.py over
RabbitMQ (pika, as the tests' guest user, believing only mserv1's replies).
Both must print exactly the listing on disk. A sample that drifts from the
services fails here.

Needs Debian's python3-grpcio, python3-pika, python3-protobuf and protoc;
$FILEMESH_PROTO_DIR is the installed proto directory (ctest sets it)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs")
SAMPLE = re.compile(r"<!-- sample: (\S+)[^>]*-->\n```[a-z]*\n(.*?)```", re.S)


def samples(doc):
    with open(os.path.join(DOCS, doc), encoding="utf-8") as f:
        return dict(SAMPLE.findall(f.read()))


class DocsSamplesTest(harness.BrokerTestCase):

    def setUp(self):
        super().setUp()
        proto_dir = os.environ.get("FILEMESH_PROTO_DIR", "")
        if not os.path.isfile(os.path.join(proto_dir, "filemesh", "v1", "filemesh.proto")):
            self.fail(f"FILEMESH_PROTO_DIR ({proto_dir!r}) holds no filemesh/v1/filemesh.proto")
        for module in ("grpc", "pika", "google.protobuf"):
            try:
                __import__(module)
            except ImportError:
                self.fail(f"{sys.executable} has no {module}: apt-get install python3-grpcio "
                          "python3-pika python3-protobuf (.ci/deps does)")
        self.work = tempfile.mkdtemp(prefix="filemesh-docs-samples-")
        self.addCleanup(shutil.rmtree, self.work, True)
        for doc in ("rpc.md", "protocol.md"):
            for name, text in samples(doc).items():
                with open(os.path.join(self.work, name), "w", encoding="utf-8") as f:
                    f.write(text)
        # The command the docs give, with the real prefix.
        subprocess.run(["protoc", "-I", proto_dir, "--python_out=.", "filemesh/v1/filemesh.proto"],
                       cwd=self.work, check=True, timeout=60)
        self.expected = [(b"docs/" + name).decode("utf-8", "replace")
                         for name, _, _ in self.tree.listing(b"docs")]
        self.replica = self.mserv("mserv1", self.tree.root, grpc_listen="127.0.0.1:0",
                                  amqp_url=self.amqp_url, queue_prefix=self.prefix)

    def client(self, script, *args):
        done = subprocess.run([sys.executable, script, *args], cwd=self.work, capture_output=True,
                              text=True, timeout=60, check=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.splitlines()

    def test_the_grpc_client_of_rpc_md_lists_through_mserv1(self):
        self.assertEqual(self.client("grpc_client.py", self.replica.grpc_address, "docs"),
                         self.expected)

    def test_the_pika_client_of_protocol_md_lists_through_mserv1(self):
        self.assertEqual(self.client("amqp_client.py", self.amqp_url, self.prefix, "docs",
                                     "mserv1"), self.expected)
        # The service's replies only: believing guest's would be wrong.
        done = subprocess.run([sys.executable, "amqp_client.py", self.amqp_url, self.prefix,
                               "docs", "guest"], cwd=self.work, capture_output=True, text=True,
                              timeout=60, check=False)
        self.assertNotEqual(done.returncode, 0, done.stdout)
        self.assertIn("no reply yet", done.stderr)


if __name__ == "__main__":
    harness.main()
