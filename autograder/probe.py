"""The sandbox's start-up probe: a program run once in the sandbox, exactly as a kernel would
be, before any student is graded. It reports what it could do; :func:`problems` turns the
report into the reasons the grader refuses to grade. So a change that loses a protection
(capabilities kept, a mount that can be undone, the grader's environment visible, the network
reachable) stops the batch before a student's code runs, instead of going unnoticed.
"""

from __future__ import annotations

import json

# Runs inside the sandbox; prints one JSON line. Each attempt runs in a forked child, so a
# success changes nothing for the next one. Exit code of the child: 0 = the call succeeded.
PROBE = r'''
import ctypes, json, os, socket, sys
HIDDEN, SECRETS = json.loads(sys.argv[1]), json.loads(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
def attempt(fn):
    pid = os.fork()
    if pid == 0:
        try:
            ok = fn() == 0
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return line.split()[1]
def environ_keys(pid):
    try:
        raw = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        return []
    return sorted({item.split(b"=", 1)[0].decode(errors="replace") for item in raw.split(b"\0") if item})
report = {"uid": os.getuid(), "gid": os.getgid(), "cap_eff": status("CapEff"), "cap_bnd": status("CapBnd")}
report["unshare_mount"] = attempt(lambda: libc.unshare(0x00020000))
report["unshare_user"] = attempt(lambda: libc.unshare(0x10000000))
report["remount_rw"] = attempt(lambda: libc.mount(None, b"/", None, 32 | 4096, None))
report["umount"] = [p for p in HIDDEN if attempt(lambda p=p: libc.umount2(p.encode(), 2))]
report["ptrace_init"] = attempt(lambda: libc.ptrace(0x4206, 1, None, None))  # PTRACE_SEIZE: does not stop it
report["visible"] = [p for p in SECRETS if os.path.exists(p)]
def opens_for_writing(path):  # opened, never written: read-only mounts refuse the open itself
    try:
        open(path, "r+b").close()
        return True
    except OSError:
        return False
# As root, the kernel's uid is root's outside the sandbox: the system must be read-only for it.
report["writable_system"] = [p for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname",
                                         "/proc/sysrq-trigger", "/etc/hostname", sys.executable)
                              if opens_for_writing(p)]
# Every process the kernel can see must be its own (no bubblewrap init to rewrite via /proc/1/mem).
report["foreign_processes"] = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
                               and not os.path.realpath(f"/proc/{p}/exe") == os.path.realpath(sys.executable)]
report["environ_1"] = environ_keys(1) if os.getpid() != 1 else []  # pid 1 is bwrap's init, if any
report["environ_self"] = sorted(os.environ)
try:
    open("probe.txt", "w").write("ok")
    report["scratch_writable"] = True
except OSError:
    report["scratch_writable"] = False
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    report["network"] = True
except OSError:
    report["network"] = False
import dlcourse, numpy  # the kernel's imports work
data = os.environ.get("DLCOURSE_DATA")
report["data_readable"] = (not data) or bool(os.listdir(data))
print("PROBE " + json.dumps(report, sort_keys=True))
'''


def parse(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith("PROBE "):
            return json.loads(line[len("PROBE "):])
    return None


def problems(report: dict, *, kernel_env_keys: set[str], launch_env_keys: set[str]) -> list[str]:
    """What the sandbox failed to prevent (empty: it holds)."""
    found = []
    if report["uid"] == 0 or report["gid"] == 0:
        found.append(f"the kernel runs as uid {report['uid']} gid {report['gid']} (root) inside the sandbox")
    if int(report["cap_eff"], 16) != 0:
        found.append(f"the kernel keeps capabilities (CapEff {report['cap_eff']}): it could undo the mounts")
    for key, what in (("unshare_mount", "create a mount namespace (unshare -m)"),
                      ("unshare_user", "create a user namespace"),
                      ("remount_rw", "remount / read-write"),
                      ("ptrace_init", "ptrace the sandbox's init process")):
        if report[key]:
            found.append(f"the kernel can {what}")
    if report["umount"]:
        found.append(f"the kernel can unmount hidden folders: {', '.join(report['umount'])}")
    if report.get("foreign_processes"):
        found.append(f"the kernel sees processes that are not its own (pids {', '.join(report['foreign_processes'])}): "
                     "it could rewrite them through /proc/PID/mem")
    if report.get("writable_system"):
        found.append(f"the kernel can write system files: {', '.join(report['writable_system'])}")
    if report["visible"]:
        found.append(f"the kernel sees private files: {', '.join(report['visible'])}")
    extra = set(report["environ_1"]) - launch_env_keys
    if extra:
        found.append(f"the sandbox's init process carries the grader's environment ({', '.join(sorted(extra)[:8])})")
    extra = set(report["environ_self"]) - kernel_env_keys
    if extra:
        found.append(f"the kernel's environment holds more than it needs ({', '.join(sorted(extra)[:8])})")
    if report["network"]:
        found.append("the network is reachable from the kernel")
    if not report["scratch_writable"]:
        found.append("the kernel cannot write its scratch folder")
    if not report["data_readable"]:
        found.append("the kernel cannot read DLCOURSE_DATA (make it world-readable)")
    return found
