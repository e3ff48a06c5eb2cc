"""The generated search tree of compare.sh and index_bench.sh.

    python3 bench/make_tree.py ROOT --tops N --files N [--hidden] [--links]

ROOT (made here) gets N top directories pkg_00, pkg_01, ...; each holds 16
"seed" files (one per extension) and 25 directories (include_00, src_01,
include_02, ...) of --files files each, named like source trees
(widget_12.h, parser_7.cc, ...; one in 16 is *.h), each an inode of its own
sized 0 to 4,999 bytes (sparse: no data is written). --links makes them hard
links to their top directory's seeds instead: link() costs a directory entry
only (2 million: 35 s against 3 minutes here), but FileIndex reads a
hard-linked file's attributes from the disk at each answer. --hidden adds, in each top
directory, a hidden directory .cache of 10 files of their own. Entries:
tops x (16 + 25 x (files + 1)) + tops (+ 11 per top with --hidden).
"""

import argparse
import os

EXTS = [".h", ".c", ".cc", ".cpp", ".hpp", ".py", ".txt", ".md",
        ".json", ".o", ".rs", ".js", ".go", ".html", ".css", ".sh"]
STEMS = ["widget", "parser", "test_util", "main", "config", "index", "io", "lexer"]
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def opendir(path):
    os.mkdir(path)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--tops", type=int, required=True)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--hidden", action="store_true")
    parser.add_argument("--links", action="store_true")
    args = parser.parse_args()
    os.mkdir(args.root)
    for t in range(args.tops):
        top = os.path.join(args.root, "pkg_%02d" % t)
        top_fd = opendir(top)
        for ext in EXTS:
            os.close(os.open("seed" + ext, FLAGS, 0o644, dir_fd=top_fd))
        if args.hidden:
            fd = opendir(os.path.join(top, ".cache"))
            for i in range(10):
                os.close(os.open("obj_%d%s" % (i, EXTS[i % 5]), FLAGS, 0o644, dir_fd=fd))
            os.close(fd)
        for s in range(25):
            fd = opendir(os.path.join(top, ("src_%02d" if s % 2 else "include_%02d") % s))
            for f in range(args.files):
                ext = EXTS[(f + t) % 16]
                name = "%s_%d%s" % (STEMS[(f + s) % 8], f, ext)
                if not args.links:
                    file_fd = os.open(name, FLAGS, 0o644, dir_fd=fd)
                    os.ftruncate(file_fd, (f * 7919 + s * 104729 + t) % 5000)
                    os.close(file_fd)
                else:
                    os.link("seed" + ext, name, src_dir_fd=top_fd, dst_dir_fd=fd,
                            follow_symlinks=False)
            os.close(fd)
        os.close(top_fd)


if __name__ == "__main__":
    main()
