"""The README's SDK sample, built and run as a reader would: every block of
README.md marked `<!-- sample: FILE -->` is written to FILE in a fresh
directory (with /opt/filemesh, the README's prefix, replaced by the real
one); the CMake project is configured against the installed package (no
"Could NOT find" on the way), built, and run on a small tree, whose listing
and .csv files it must print; pkg-config.sh builds the same main.cc through
pkg-config, and that program must print the same. A sample that drifts from
the SDK fails here.

  readme_sample.py README.md PREFIX [CMAKE]"""

import os
import re
import subprocess
import sys
import tempfile

SAMPLE = re.compile(r"<!-- sample: (\S+)[^>]*-->\n```[a-z]*\n(.*?)```", re.S)


def run(args, cwd, env=None):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"readme_sample: {' '.join(args)} failed ({done.returncode}):\n"
                 f"{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def main():
    readme, prefix = sys.argv[1], sys.argv[2]
    cmake = sys.argv[3] if len(sys.argv) > 3 else "cmake"
    with open(readme, encoding="utf-8") as f:
        samples = dict(SAMPLE.findall(f.read()))
    for name in ("CMakeLists.txt", "main.cc", "pkg-config.sh"):
        if name not in samples:
            sys.exit(f"readme_sample: README.md has no block marked <!-- sample: {name} -->")
    with tempfile.TemporaryDirectory(prefix="filemesh-readme-") as work:
        for name, text in samples.items():
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                f.write(text.replace("/opt/filemesh", prefix))
        configured = run([cmake, "-S", ".", "-B", "build", f"-DCMAKE_PREFIX_PATH={prefix}"], work)
        if "Could NOT find" in configured:
            sys.exit(f"readme_sample: configuring asks for what it does not need:\n{configured}")
        run([cmake, "--build", "build"], work)

        tree = os.path.join(work, "tree")
        os.makedirs(os.path.join(tree, "reports", "2026"))
        for path, data in (("notes.txt", "n"), ("reports/q1.csv", "a,b\n"),
                           ("reports/2026/q2.csv", "a,b,c\n")):
            with open(os.path.join(tree, path), "w", encoding="utf-8") as f:
                f.write(data)
        want_found = ["found reports/2026/q2.csv (6 bytes)", "found reports/q1.csv (4 bytes)"]
        for program in (os.path.join(work, "build", "my_app"), os.path.join(work, "my_app")):
            if program.endswith(os.path.join(work, "my_app")):
                run(["bash", "pkg-config.sh"], work)
            out = run([program, tree], work).splitlines()
            listed = sorted(line for line in out if not line.startswith("found "))
            found = sorted(line for line in out if line.startswith("found "))
            if listed != ["notes.txt", "reports"] or found != want_found:
                sys.exit(f"readme_sample: {program} printed:\n" + "\n".join(out))
    print("readme_sample: the README's CMake and pkg-config samples build and run")


if __name__ == "__main__":
    main()
