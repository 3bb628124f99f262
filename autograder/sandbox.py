"""Launch one student kernel inside bubblewrap, with memory and CPU limits.

This file is the ``argv`` of the grading kernelspec (``kernel.json``) that
``python -m autograder grade`` installs into a private ``JUPYTER_PATH``; it runs as a
script (not imported) in the grader's environment, reads its settings from
``AUTOGRADER_*`` environment variables set by the grader for one student, and execs::

    prlimit --as=MEM --cpu=CPU -- bwrap [mounts] --unshare-all --die-with-parent \\
        --clearenv [--setenv ...] --chdir WORKDIR -- python -m ipykernel_launcher -f CONNECTION_FILE

Mounts, in order (later ones win):

- ``--ro-bind / /``: the whole system read-only;
- ``--tmpfs`` over every folder in ``AUTOGRADER_HIDE`` (the repository with ``source/``, the
  grading output folder with the gradebook and other students' work, home folders, /tmp):
  the kernel sees them empty, and (remounted read-only at the end) cannot write there;
- read-only binds back of the Python installation, the private copy of ``dlcourse``
  and the data folder (``AUTOGRADER_RO_BINDS``);
- read-write binds of the student's scratch folder (also the kernel's cwd and HOME) and the
  kernel's runtime folder (the IPC sockets and connection file the grader talks through).

``--unshare-all`` includes the network namespace: only a loopback device exists, so the
kernel speaks to the grader over IPC (unix socket files in the runtime folder), never TCP.
"""

from __future__ import annotations

import json
import os
import shutil
import sys


def _paths(name: str) -> list[str]:
    return [p for p in os.environ.get(name, "").split(os.pathsep) if p]


def sandbox_command(inner: list[str]) -> list[str]:
    """The bwrap command line around ``inner`` (settings from the environment)."""
    workdir = os.environ["AUTOGRADER_WORKDIR"]
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in _paths("AUTOGRADER_HIDE"):
        if os.path.isdir(path):
            cmd += ["--tmpfs", path]
    for path in _paths("AUTOGRADER_RO_BINDS"):
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    for path in [workdir] + _paths("AUTOGRADER_RW_BINDS"):
        cmd += ["--bind", path, path]
    for path in _paths("AUTOGRADER_HIDE"):  # last: the binds above needed their mount points created
        if os.path.isdir(path):
            cmd += ["--remount-ro", path]
    cmd += ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in json.loads(os.environ.get("AUTOGRADER_KERNEL_ENV", "{}")).items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", workdir, "--"] + inner
    return cmd


def limits_prefix() -> list[str]:
    """``prlimit`` with the address-space and CPU-time limits (empty when none are set)."""
    args = []
    mem_mb = int(os.environ.get("AUTOGRADER_MEMORY_MB", "0"))
    cpu_s = int(os.environ.get("AUTOGRADER_CPU_SECONDS", "0"))
    if mem_mb > 0:
        args.append(f"--as={mem_mb * 1024 * 1024}")
    if cpu_s > 0:
        args.append(f"--cpu={cpu_s}")
    return ["prlimit", *args, "--"] if args else []


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: sandbox.py CONNECTION_FILE [KERNEL_ARGS...]")
    inner = [sys.executable, "-m", "ipykernel_launcher", "-f", argv[1],
             "--HistoryManager.hist_file=:memory:", *argv[2:]]
    if os.environ.get("AUTOGRADER_SANDBOX", "1") == "1":
        cmd = limits_prefix() + sandbox_command(inner)
    else:  # --no-sandbox: limits still apply, and the kernel still starts in the scratch folder
        cmd = limits_prefix() + inner
        os.chdir(os.environ["AUTOGRADER_WORKDIR"])
        env = json.loads(os.environ.get("AUTOGRADER_KERNEL_ENV", "{}"))
        os.environ.clear()
        os.environ.update(env)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv)
