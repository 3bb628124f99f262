"""Launch one student kernel inside bubblewrap, unprivileged, with memory and CPU limits.

This file is the ``argv`` of the grading kernelspec that ``autograder.kernel.GradingSandbox``
gives nbgrader's execution (``sandbox.py SETTINGS CONNECTION_FILE``). It runs as a script
(not imported) in the grader's process tree, reads its settings for one student from the
JSON file ``SETTINGS`` (a :class:`SandboxSettings`, written by the grader into its private
folder, which the kernel cannot see), and execs, with an environment of nothing but
``PATH`` and ``LANG``::

    prlimit --as=MEM --cpu=CPU -- bwrap [mounts] --unshare-all --unshare-user --uid U --gid G \\
        --cap-drop ALL --as-pid-1 --disable-userns --seccomp FD --die-with-parent --new-session \\
        --clearenv [--setenv ...] --chdir WORKDIR -- python -m ipykernel_launcher -f CONNECTION_FILE

Why each part (the attacks in tests/test_grading.py try each one):

- **No capabilities, another uid.** bubblewrap started by root keeps every capability inside
  the sandbox unless told otherwise, and a kernel with ``CAP_SYS_ADMIN`` can ``umount`` the
  folders hidden below and see the host. ``--cap-drop ALL`` removes them; ``--unshare-user
  --uid/--gid`` (65534, *nobody*, by default) makes the kernel an ordinary user inside its
  own user namespace. On the host that user is the grader's own uid (bwrap maps it so): run
  by root, a kernel can therefore read root-owned files that the mounts leave visible and
  whose mode lets their *owner* read them (autograder/README.md, "Limits").
  ``--disable-userns`` (bubblewrap >= 0.8) stops the kernel from creating a user namespace
  of its own to regain capabilities there.
- **A seccomp filter** (``--seccomp``) refuses ``ptrace``, ``process_vm_*``, every mount and
  namespace call, keyrings, bpf, perf and module loading with ``EPERM``: without it the kernel
  could attach to bubblewrap's own init process (pid 1 of the sandbox).
- **/proc read-only where it reaches the host.** ``/proc/sys``, ``/proc/sysrq-trigger``,
  ``/proc/irq``, ``/proc/bus`` and ``/proc/fs`` are bound read-only over the sandbox's /proc:
  bubblewrap means to cover them but skips a folder whose own mode is read-only, and run by
  root the kernel is uid 0 on the host, so it could write ``/proc/sys/kernel/core_pattern``
  (a program the host runs as root when any process crashes).
- **No bubblewrap init in the sandbox** (``--as-pid-1``): the kernel is pid 1 itself.
  Otherwise bwrap's init, same uid and outside the seccomp filter, sits in the sandbox and
  ``/proc/1/mem`` lets the kernel rewrite it.
- **A minimal environment for bwrap itself.** bwrap's init keeps the environment it was started
  with (``--clearenv`` cleans only the child), and ``/proc/1/environ`` is readable in the
  sandbox: so bwrap is started with ``PATH`` alone, and the kernel gets only ``kernel_env``.

Mounts, in order (later ones win):

- ``--ro-bind / /``: the whole system read-only, with a fresh ``/dev`` and ``/proc``;
- ``--tmpfs`` over every folder in ``hide`` (the repository with ``source/``, the grading
  output folder with the gradebook and other students' work, home folders, /tmp): the kernel
  sees them empty, and (remounted read-only at the end) cannot write there;
- read-only binds back of the Python installation, the private copy of ``dlcourse`` and the
  data folder (``ro_binds``);
- read-write binds of the student's scratch folder (also the kernel's cwd and HOME) and the
  kernel's runtime folder (the IPC sockets and connection file the grader talks through).

``--unshare-all`` includes the network namespace: only a loopback device exists, so the
kernel speaks to the grader over IPC (unix socket files in the runtime folder), never TCP.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys

PROC_COVERED = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs")
NOBODY = 65534


@dataclasses.dataclass
class SandboxSettings:
    """Everything the launcher needs for one student's kernel (travels as a JSON file)."""

    workdir: str
    enabled: bool = True
    hide: list[str] = dataclasses.field(default_factory=list)
    ro_binds: list[str] = dataclasses.field(default_factory=list)
    rw_binds: list[str] = dataclasses.field(default_factory=list)
    memory_mb: int = 0
    cpu_seconds: int = 0
    kernel_env: dict[str, str] = dataclasses.field(default_factory=dict)
    uid: int = NOBODY
    gid: int = NOBODY

    def save(self, path) -> None:
        with open(path, "w") as fh:
            json.dump(dataclasses.asdict(self), fh, indent=1, sort_keys=True)

    @classmethod
    def load(cls, path) -> "SandboxSettings":
        with open(path) as fh:
            return cls(**json.load(fh))


# --------------------------------------------------------------------------- seccomp

# Syscalls the kernel never needs and an escape would: tracing other processes, mounts and
# namespaces, keyrings, bpf/perf, module and kexec loading, file handles by inode.
_DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "unshare", "setns",
           "pivot_root", "chroot", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
           "kexec_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
           "name_to_handle_at", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
           "mount_setattr")
_SYSCALLS = {
    # AUDIT_ARCH value, {name: number}
    "x86_64": (0xC000003E, dict(ptrace=101, process_vm_readv=310, process_vm_writev=311, mount=165, umount2=166,
                                unshare=272, setns=308, pivot_root=155, chroot=161, keyctl=250, add_key=248,
                                request_key=249, bpf=321, perf_event_open=298, userfaultfd=323, kexec_load=246,
                                init_module=175, finit_module=313, delete_module=176, open_by_handle_at=304,
                                name_to_handle_at=303, open_tree=428, move_mount=429, fsopen=430, fsconfig=431,
                                fsmount=432, fspick=433, mount_setattr=442)),
    "aarch64": (0xC00000B7, dict(ptrace=117, process_vm_readv=270, process_vm_writev=271, mount=40, umount2=39,
                                 unshare=97, setns=268, pivot_root=41, chroot=51, keyctl=219, add_key=217,
                                 request_key=218, bpf=280, perf_event_open=241, userfaultfd=282, kexec_load=104,
                                 init_module=105, finit_module=273, delete_module=106, open_by_handle_at=265,
                                 name_to_handle_at=264, open_tree=428, move_mount=429, fsopen=430, fsconfig=431,
                                 fsmount=432, fspick=433, mount_setattr=442)),
}


def seccomp_program(machine: str | None = None) -> bytes | None:
    """A classic-BPF seccomp filter (the format ``bwrap --seccomp`` reads) that answers the
    ``_DENIED`` syscalls, syscalls of any other ABI (32-bit compat, x32) with ``EPERM`` and
    allows the rest. ``None`` on a machine whose syscall table is not listed here."""
    machine = machine or platform.machine()
    if machine not in _SYSCALLS:
        return None
    arch, numbers = _SYSCALLS[machine]
    LD_ABS, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
    ALLOW, DENY = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    prog: list[tuple[int, int, int, int]] = [(LD_ABS, 0, 0, 4)]  # seccomp_data.arch
    checks = [(JGE, 0x40000000)] if machine == "x86_64" else []  # the x32 ABI
    checks += [(JEQ, numbers[name]) for name in _DENIED]
    n_after_arch = 1 + len(checks) + 1  # ld nr, checks, ret allow
    prog.append((JEQ, 0, n_after_arch, arch))  # other ABI: jump to deny
    prog.append((LD_ABS, 0, 0, 0))  # seccomp_data.nr
    for i, (op, k) in enumerate(checks):
        prog.append((op, len(checks) - i, 0, k))  # to deny: past the remaining checks and the allow
    prog.append((RET, 0, 0, ALLOW))
    prog.append((RET, 0, 0, DENY))
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def bwrap_version(bwrap: str) -> tuple[int, ...]:
    try:
        text = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (0,)
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g or 0) for g in m.groups()) if m else (0,)


# --------------------------------------------------------------------------- the command

def sandbox_command(settings: SandboxSettings, inner: list[str], seccomp_fd: int | None = None) -> list[str]:
    """The bwrap command line around ``inner``."""
    bwrap = shutil.which("bwrap") or "bwrap"
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # bwrap skips covering these when their folder's mode is read-only, but their files are
    # writable by uid 0 outside the sandbox, which the kernel is when root grades
    # (/proc/sys/kernel/core_pattern: a command the host runs as root on the next crash).
    for path in PROC_COVERED:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    for path in settings.hide:
        if os.path.isdir(path):
            cmd += ["--tmpfs", path]
    for path in settings.ro_binds:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    for path in [settings.workdir] + settings.rw_binds:
        cmd += ["--bind", path, path]
    for path in settings.hide:  # last: the binds above needed their mount points created
        if os.path.isdir(path):
            cmd += ["--remount-ro", path]
    # --as-pid-1: no bwrap init inside the sandbox, whose memory (/proc/1/mem) the kernel could
    # write, and which is not under the seccomp filter.
    cmd += ["--unshare-all", "--unshare-user", "--uid", str(settings.uid), "--gid", str(settings.gid),
            "--cap-drop", "ALL", "--as-pid-1"]
    if bwrap_version(bwrap) >= (0, 8):
        cmd += ["--disable-userns"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    cmd += ["--die-with-parent", "--new-session", "--clearenv"]
    for key, value in settings.kernel_env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", settings.workdir, "--"] + inner
    return cmd


def limits_prefix(settings: SandboxSettings) -> list[str]:
    """``prlimit`` with the address-space and CPU-time limits (empty when none are set)."""
    args = []
    if settings.memory_mb > 0:
        args.append(f"--as={settings.memory_mb * 1024 * 1024}")
    if settings.cpu_seconds > 0:
        args.append(f"--cpu={settings.cpu_seconds}")
    return [shutil.which("prlimit") or "prlimit", *args, "--"] if args else []


def seccomp_fd() -> int | None:
    """An inheritable file descriptor holding :func:`seccomp_program` (None where unsupported)."""
    program = seccomp_program()
    if program is None:
        return None
    fd = os.memfd_create("autograder-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def command(settings: SandboxSettings, inner: list[str]) -> tuple[list[str], list[int]]:
    """The full command (limits + bwrap) and the descriptors it reads (keep them open, pass them on)."""
    seccomp = seccomp_fd()
    return limits_prefix(settings) + sandbox_command(settings, inner, seccomp), [] if seccomp is None else [seccomp]


LAUNCH_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.exit("usage: sandbox.py SETTINGS_FILE CONNECTION_FILE [KERNEL_ARGS...]")
    settings = SandboxSettings.load(argv[1])
    extra = argv[3:]
    if not any(a.startswith("--HistoryManager.hist_file") for a in extra):  # nbgrader usually passes it
        extra = ["--HistoryManager.hist_file=:memory:", *extra]
    inner = [sys.executable, "-m", "ipykernel_launcher", "-f", argv[2], *extra]
    if settings.enabled:
        cmd, _fds = command(settings, inner)
        os.execve(cmd[0], cmd, LAUNCH_ENV)
    # --no-sandbox: limits still apply, and the kernel still starts in the scratch folder
    cmd = limits_prefix(settings) + inner
    os.chdir(settings.workdir)
    os.execve(cmd[0], cmd, dict(settings.kernel_env))


if __name__ == "__main__":
    main(sys.argv)
