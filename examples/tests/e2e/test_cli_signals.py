"""Scenario: the installed `filemesh` command under the signals a shell sends.

- `filemesh find ... | head -1`: once the reader has gone, the command ends
  quietly with status 0 (it ignores SIGPIPE and stops at EPIPE).
- Ctrl-C (SIGINT) during a search that is still printing: it stops with 130
  and writes nothing on stderr.

The search prints ~500 KB (20,000 matches) into a pipe (64 KB) this test reads
only when it wants to: the command cannot finish on its own before the signal.
$FILEMESH_CLI names the command (ctest sets it)."""

import os
import shutil
import signal
import subprocess
import tempfile

import harness

CLI = os.environ.get("FILEMESH_CLI")


class CliSignalsTest(harness.ProcessTestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="filemesh-e2e-signals-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        for d in range(20):
            top = os.path.join(cls.root, "d%02d" % d)
            os.mkdir(top)
            fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
            for f in range(1000):
                os.close(os.open("file_%04d.txt" % f, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
            os.close(fd)

    def setUp(self):
        if not CLI or not os.access(CLI, os.X_OK):
            self.fail("FILEMESH_CLI does not name the installed filemesh command")

    def start(self):
        proc = subprocess.Popen([CLI, "find", "--root", self.root, "*.txt"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        line = proc.stdout.readline()
        self.assertTrue(line.endswith(b".txt\n"), line)
        return proc

    def test_a_reader_that_goes_away_ends_it_quietly_with_zero(self):
        proc = self.start()
        proc.stdout.close()  # as `head -1` exiting
        _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(err, b"")

    def test_ctrl_c_stops_the_search_with_130(self):
        proc = self.start()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 130, err)
        self.assertEqual(err, b"")
        # It stopped: fewer than the 20,000 matches came.
        self.assertLess(len(out.splitlines()), 20000)


if __name__ == "__main__":
    harness.main()
