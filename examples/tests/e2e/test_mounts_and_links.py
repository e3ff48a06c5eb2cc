"""Scenario: what the services let a caller see of the host around --root.

mserv2 runs in a mount namespace of its own (unshare, root only) where a
tmpfs is mounted on `mnt/` under its root: searches stay out of it by default
(`one_file_system`), a request can ask otherwise, and the installed command
says what was left out; the same holds with mserv2 --index (the index
follows one_file_system as the walk does). mserv1 and mserv2 withhold the target text of
symlinks that leave the root unless started with --noredact_outside_targets.

Tree (the part on the root's filesystem):
    plain/inside.txt   mnt/ (the tmpfs: inside.txt, deeper/inside.txt)
    up -> ..  abs -> /etc/passwd  deep/climb -> ../../x  deep/ok -> ../plain
    here -> plain/inside.txt

The command is the installed one: $FILEMESH_CLI (ctest sets it)."""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness

CLI = os.environ.get("FILEMESH_CLI")

# Mounts a tmpfs on $1 in the namespace unshare made, fills it, and runs the
# service (the rest of the arguments) there.
MOUNT_AND_RUN = ('mount -t tmpfs -o size=1m,mode=0755 filemesh-e2e "$1" && '
                 'mkdir "$1/deeper" && echo in > "$1/inside.txt" && '
                 'echo in > "$1/deeper/inside.txt" && shift && exec "$@"')


def can_mount():
    if not harness.running_as_root() or shutil.which("unshare") is None:
        return False
    probe = tempfile.mkdtemp(prefix="filemesh-e2e-mount-")
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t",
                               "tmpfs", "-o", "size=64k", "probe", probe],
                              capture_output=True, check=False, timeout=30)
        return done.returncode == 0
    finally:
        os.rmdir(probe)


class MountsAndLinksTest(harness.ProcessTestCase):
    SEARCHER_FLAGS = ()  # mserv2 walks each request

    @classmethod
    def setUpClass(cls):
        if not can_mount():
            raise unittest.SkipTest("needs root and unshare --mount to mount a tmpfs privately")

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="filemesh-e2e-mounts-")
        self.addCleanup(shutil.rmtree, self.root)
        for d in ("plain", "mnt", "deep"):
            os.mkdir(os.path.join(self.root, d))
        with open(os.path.join(self.root, "plain", "inside.txt"), "w") as f:
            f.write("on the root's filesystem\n")
        os.symlink("..", os.path.join(self.root, "up"))
        os.symlink("/etc/passwd", os.path.join(self.root, "abs"))
        os.symlink("../../x", os.path.join(self.root, "deep", "climb"))
        os.symlink("../plain", os.path.join(self.root, "deep", "ok"))
        os.symlink("plain/inside.txt", os.path.join(self.root, "here"))
        mount = ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_AND_RUN,
                 "sh", os.path.join(self.root, "mnt")]
        searcher = self.mserv("mserv2", self.root, grpc_listen="127.0.0.1:0", prefix=mount,
                              extra=self.SEARCHER_FLAGS)
        if "--index" in self.SEARCHER_FLAGS:
            searcher.wait_for_log("index_ready", 30)
        lister = self.mserv("mserv1", self.root, grpc_listen="127.0.0.1:0")
        open_lister = self.mserv("mserv1", self.root, grpc_listen="127.0.0.1:0",
                                 name="mserv1-open", extra=["--noredact_outside_targets"])
        self.gw = self.gateway(lister_grpc=lister.grpc_address,
                               searcher_grpc=searcher.grpc_address)
        self.open_gw = self.gateway(lister_grpc=open_lister.grpc_address, name="gateway-open")

    def search(self, **params):
        r = self.gw.http.get("/api/v1/search", {"q": "inside.txt", **params})
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        return sorted(harness.exact_path(m) for m in body["matches"]), body

    def test_searches_stay_on_one_filesystem_whatever_the_request_says(self):
        paths, body = self.search()
        self.assertEqual(paths, [b"plain/inside.txt"])
        self.assertEqual(body["other_filesystem_directories"], "1")
        self.assertEqual(self.search(one_file_system="true")[0], [b"plain/inside.txt"])
        # The operator's --one_file_system wins: a request cannot turn it off.
        paths, body = self.search(one_file_system="false")
        self.assertEqual(paths, [b"plain/inside.txt"])
        self.assertEqual(body["other_filesystem_directories"], "1")
        # The mount point itself is an entry, and matches.
        r = self.gw.http.get("/api/v1/search", {"q": "mnt", "type": "directory"})
        self.assertEqual([harness.exact_path(m) for m in r.json()["matches"]], [b"mnt"])
        # A search that starts inside the mount walks it: the start decides.
        paths, _ = self.search(path="mnt")
        self.assertEqual(paths, [b"mnt/deeper/inside.txt", b"mnt/inside.txt"])

    def test_the_command_says_what_it_left_out(self):
        if not CLI or not os.access(CLI, os.X_OK):
            self.fail("FILEMESH_CLI does not name the installed filemesh command")
        url = f"http://{self.gw.http.host}:{self.gw.http.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILEMESH_")}

        def find(*args):
            done = subprocess.run([CLI, "find", "--gateway", url, *args], capture_output=True,
                                  env=env, timeout=60, check=False)
            return done.returncode, done.stdout, done.stderr.decode()

        code, out, err = find("inside.txt")
        self.assertEqual((code, out), (0, b"plain/inside.txt\n"), err)
        self.assertIn("1 directories on other filesystems were not searched", err)
        code, out, err = find("-x", "inside.txt")
        self.assertEqual((code, out, err), (0, b"plain/inside.txt\n", ""))

    def entries(self, gateway, path=""):
        r = gateway.http.get("/api/v1/files", {"path": path})
        self.assertEqual(r.status, 200, r.body)
        return {harness.exact_name(e): e for e in r.json()["entries"]}

    def test_targets_outside_the_root_are_withheld(self):
        for where, name, target, leaves in (("", b"up", "..", True),
                                            ("", b"abs", "/etc/passwd", True),
                                            ("deep", b"climb", "../../x", True),
                                            ("deep", b"ok", "../plain", False),
                                            ("", b"here", "plain/inside.txt", False)):
            with self.subTest(link=name):
                entry = self.entries(self.gw, where)[name]
                self.assertEqual(entry["type"], "FILE_TYPE_SYMLINK")
                self.assertEqual(entry["symlink_target_redacted"], leaves)
                self.assertEqual(entry["symlink_target"], "" if leaves else target)
                self.assertEqual(entry["raw_symlink_target"], "")
                # Served without redaction, the same entry shows its target.
                entry = self.entries(self.open_gw, where)[name]
                self.assertEqual(entry["symlink_target"], target)
                self.assertFalse(entry["symlink_target_redacted"])
        # Search results are redacted the same way.
        r = self.gw.http.get("/api/v1/search", {"q": "*", "type": "symlink"})
        found = {harness.exact_path(m): m for m in r.json()["matches"]}
        self.assertEqual(sorted(found), [b"abs", b"deep/climb", b"deep/ok", b"here", b"up"])
        self.assertEqual({p for p, m in found.items() if m["symlink_target_redacted"]},
                         {b"abs", b"deep/climb", b"up"})
        self.assertEqual(found[b"deep/ok"]["symlink_target"], "../plain")


class MountsAndLinksOnTheIndexTest(MountsAndLinksTest):
    """The same with mserv2 --index: the index follows one_file_system as the
    walk does (the mount point is an entry, its tmpfs is not indexed), and a
    search that starts inside the mount is walked."""
    SEARCHER_FLAGS = ("--index",)

    def test_the_index_answers_and_a_start_inside_the_mount_is_walked(self):
        paths, body = self.search()
        self.assertEqual(paths, [b"plain/inside.txt"])
        self.assertIn("index_as_of", body)
        self.assertEqual(body["other_filesystem_directories"], "1")
        paths, body = self.search(path="mnt")
        self.assertEqual(paths, [b"mnt/deeper/inside.txt", b"mnt/inside.txt"])
        self.assertNotIn("index_as_of", body)

    def test_with_one_file_system_off_the_index_enters_the_mount_and_follows_it(self):
        mnt = os.path.join(self.root, "mnt")
        mount = ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_AND_RUN,
                 "sh", mnt]
        searcher = self.mserv("mserv2", self.root, grpc_listen="127.0.0.1:0", prefix=mount,
                              name="mserv2-all", extra=["--index", "--noone_file_system"])
        searcher.wait_for_log("index_ready", 30)
        gw = self.gateway(searcher_grpc=searcher.grpc_address, name="gateway-all")

        def found(name):
            r = gw.http.get("/api/v1/search", {"q": name})
            self.assertEqual(r.status, 200, r.body)
            body = r.json()
            self.assertIn("index_as_of", body)
            return sorted(harness.exact_path(m) for m in body["matches"])

        self.assertEqual(found("inside.txt"),
                         [b"mnt/deeper/inside.txt", b"mnt/inside.txt", b"plain/inside.txt"])
        # A file made on the tmpfs (seen through the service's own mount
        # namespace) is found: the index follows the mounted filesystem too.
        inside = f"/proc/{searcher.popen.pid}/root{mnt}/deeper/new.txt"
        with open(inside, "w") as f:
            f.write("new\n")
        harness.wait_until(lambda: found("new.txt") == [b"mnt/deeper/new.txt"], 10,
                           "the new file on the tmpfs found through the index")


if __name__ == "__main__":
    harness.main()
