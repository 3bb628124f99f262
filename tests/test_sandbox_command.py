"""The sandbox as a typed spec (autograder/sandbox.py, autograder/kernel.py), checked without
running bubblewrap: the command built from SandboxSettings, the seccomp program, and the
settings GradingSandbox derives for one student from nbgrader's configuration."""

from __future__ import annotations

import pathlib
import struct

from traitlets.config import Config

from autograder import REPO_ROOT, sandbox
from autograder.kernel import GradingSandbox
from autograder.secret import grading_seed, load_secret


def settings(tmp_path, **kw):
    work = tmp_path / "scratch"
    work.mkdir(exist_ok=True)
    hidden = tmp_path / "private"
    hidden.mkdir(exist_ok=True)
    base = dict(workdir=str(work), hide=[str(hidden)], ro_binds=["/usr"], rw_binds=[str(tmp_path / "rt")],
                memory_mb=2048, cpu_seconds=60, kernel_env={"HOME": str(work)})
    base.update(kw)
    return sandbox.SandboxSettings(**base)


def test_command_drops_every_privilege_and_hides_private_folders(tmp_path):
    s = settings(tmp_path)
    cmd = sandbox.sandbox_command(s, ["python", "-c", "pass"], seccomp_fd=7)
    joined = " ".join(cmd)
    for flags in (["--unshare-all"], ["--unshare-user"], ["--cap-drop", "ALL"], ["--uid", "65534"],
                  ["--gid", "65534"], ["--as-pid-1"], ["--seccomp", "7"], ["--die-with-parent"], ["--clearenv"],
                  ["--tmpfs", s.hide[0]], ["--remount-ro", s.hide[0]], ["--ro-bind", "/usr", "/usr"],
                  ["--bind", s.workdir, s.workdir], ["--chdir", s.workdir]):
        assert " ".join(flags) in joined, flags
    for path in sandbox.PROC_COVERED:
        if pathlib.Path(path).exists():
            assert f"--ro-bind {path} {path}" in joined
    # Hidden folders are covered before anything is bound back into them, and made read-only last.
    assert cmd.index("--tmpfs") < cmd.index("--bind") < cmd.index("--remount-ro")
    assert cmd[-3:] == ["python", "-c", "pass"] and cmd[-4] == "--"
    assert ["--setenv", "HOME", s.workdir] == cmd[cmd.index("--setenv"):cmd.index("--setenv") + 3]


def test_limits_prefix(tmp_path):
    prefix = sandbox.limits_prefix(settings(tmp_path))
    assert prefix[1:] == [f"--as={2048 * 2**20}", "--cpu=60", "--"]
    assert sandbox.limits_prefix(settings(tmp_path, memory_mb=0, cpu_seconds=0)) == []


def test_seccomp_program_denies_the_listed_syscalls_and_foreign_abis():
    program = sandbox.seccomp_program("x86_64")
    instructions = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    arch, numbers = sandbox._SYSCALLS["x86_64"]
    assert instructions[1][3] == arch  # the first check: our ABI, else deny
    checked = {k for code, _, _, k in instructions if code == 0x15}
    assert {numbers[name] for name in sandbox._DENIED} <= checked
    assert instructions[-1][3] == 0x00050000 | 1 and instructions[-2][3] == 0x7FFF0000  # errno EPERM / allow
    assert sandbox.seccomp_program("sparc") is None


def test_grading_sandbox_derives_one_students_kernel(tmp_path):
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    config = Config()
    config.CourseDirectory.root = str(course)
    config.GradingSandbox.private_paths = [str(tmp_path / "hand-ins")]
    config.GradingSandbox.memory_mb = 3000
    (tmp_path / "hand-ins").mkdir()
    grading = GradingSandbox(config=config)
    runtime = tmp_path / "rt"
    runtime.mkdir()
    s = grading.settings_for("00_getting_started", "alice", runtime)
    hidden = [pathlib.Path(p) for p in s.hide]
    for private in (course, REPO_ROOT, tmp_path / "hand-ins", pathlib.Path("/tmp")):
        assert any(private == h or h in private.parents for h in hidden), private
    secret = load_secret(course / ".autograder" / "course-secret")
    assert (course / ".autograder" / "course-secret").stat().st_mode & 0o077 == 0
    assert grading.seed("00_getting_started", "alice") == grading_seed(secret, "00_getting_started", "alice")
    assert "DLCOURSE_GRADING_SEED" not in s.kernel_env, "the kernel never learns the grading seed"
    assert s.kernel_env["DLCOURSE_PROFILE"] == "ci" and s.memory_mb == 3000 and s.uid == sandbox.NOBODY
    assert pathlib.Path(s.workdir) == course / ".autograder" / "scratch" / "alice"
    assert str(runtime) in s.rw_binds
    assert not [b for b in s.ro_binds if pathlib.Path(b) == REPO_ROOT or pathlib.Path(b) in REPO_ROOT.parents]
    spec = grading.kernel_spec(s, "alice-00")
    assert spec.interrupt_mode == "message" and spec.argv[-1] == "{connection_file}"
    assert sandbox.SandboxSettings.load(spec.argv[2]) == s
