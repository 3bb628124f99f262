"""The grading kernel, as nbgrader's own commands start it: sandboxed, seeded, in the ``ci`` profile.

:class:`GradingSandbox` (configured as ``c.GradingSandbox.*``) is what ``GradingExecute``
asks for a kernel. For one student's notebook it works out, in the nbgrader process itself
(nothing is prepared by another process, so ``nbgrader autograde`` run by hand gets exactly
what ``python -m autograder grade`` gets):

- the :class:`~autograder.sandbox.SandboxSettings`: the folders the kernel must not see (the
  course folder with the masters and the gradebook, the repository, this grader's private
  state folder, home folders, /tmp, and any :attr:`~GradingSandbox.private_paths`), what is
  bound back read-only (the Python installation, the ``dlcourse`` package, the data folder),
  the student's scratch folder, the memory and CPU limits;
- the data the kernels read (:meth:`GradingSandbox.data_source`): the full IDX files of the
  folder the instructor configured (``DLCOURSE_DATA``, or ``c.GradingSandbox.data_dir``), else
  those of the grader's own dlcourse cache, else the sample bundled with dlcourse, with
  downloads off (a kernel has no network: trying would only print failed URLs into every
  student's feedback);
- the kernel's environment: ``DLCOURSE_PROFILE`` (``ci``), quiet framework imports, and nothing
  of the grader's own environment (not the grading seed: hidden tests draw their inputs in the
  grader's process, :meth:`GradingSandbox.seed`);
- a kernelspec whose ``argv`` runs ``autograder/sandbox.py SETTINGS {connection_file}``, with
  ``interrupt_mode`` ``message`` (signals do not reach a kernel in bwrap's PID namespace).

:meth:`GradingSandbox.check` runs the start-up probe (``autograder/probe.py``) exactly as a
kernel would start, once per process and set of mounts, and raises :class:`SandboxUnavailable`
when the sandbox cannot start or does not protect the grader: nbgrader then fails the
submission and exits non-zero, instead of grading without protection.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from traitlets import Bool, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from . import PACKAGE_DIR, REPO_ROOT, execution, probe, sandbox
from .secret import grading_seed, load_secret

# Read by torch (OMP), TensorFlow (TF_NUM_*), NumPy's BLAS and numexpr at import.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
KERNEL_DISPLAY_NAME = "Python 3 (autograder sandbox)"
STATE_FOLDER = ".autograder"  # under the course root, unless GradingSandbox.state_dir says otherwise


DATASETS = ("mnist", "fashion-mnist")  # what the notebooks load; the four IDX files of each


def missing_data_files(folder: pathlib.Path) -> list[str]:
    """The IDX files (``mnist/train-images-idx3-ubyte.gz``, ...) that ``folder`` lacks."""
    from dlcourse.data import FILES
    return [f"{name}/{file}" for name in DATASETS for file in FILES if not (folder / name / file).is_file()]


class SandboxUnavailable(Exception):
    """The grading sandbox cannot start, or does not protect the grader; nothing may be graded."""

    # Every one raised in this process: nbgrader's converter logs exceptions and goes on, so an
    # in-process runner (autograder/workers.py) learns of them here, as a type, not from log text.
    raised: list["SandboxUnavailable"] = []

    def __init__(self, *args):
        super().__init__(*args)
        SandboxUnavailable.raised.append(self)


def outermost(paths) -> list[pathlib.Path]:
    """The given folders without those inside another one of them (and without ``/``)."""
    paths = sorted({pathlib.Path(p).resolve() for p in paths if str(pathlib.Path(p).resolve()) != "/"},
                   key=lambda p: len(p.parts))
    kept: list[pathlib.Path] = []
    for p in paths:
        if not any(p == k or k in p.parents for k in kept):
            kept.append(p)
    return kept


def dlcourse_folder() -> pathlib.Path | None:
    spec = importlib.util.find_spec("dlcourse")
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(list(spec.submodule_search_locations)[0]).resolve()


class FixedKernelSpecManager(KernelSpecManager):
    """Answers every kernel name with one spec: the notebook's own kernelspec name (``python3``)
    must not pick an unsandboxed kernel."""

    def __init__(self, spec: KernelSpec, **kwargs):
        super().__init__(**kwargs)
        self._spec = spec

    def get_kernel_spec(self, kernel_name, *args, **kwargs):
        return self._spec

    def find_kernel_specs(self):
        return {"python3": self._spec.resource_dir or ""}


class GradingSandbox(LoggingConfigurable):
    """How student kernels run during grading (``c.GradingSandbox.*`` in nbgrader_config.py)."""

    enabled = Bool(True, help="Run student kernels in bubblewrap. False: only for trusted "
                              "submissions (the kernel then runs with the grader's permissions).").tag(config=True)
    memory_mb = Integer(6144, help="Address-space limit of a student kernel, in MB.").tag(config=True)
    cpu_seconds = Integer(900, help="CPU seconds (all threads) of a student kernel before it is killed.").tag(config=True)
    profile = Unicode("ci", help="DLCOURSE_PROFILE of the student kernels.").tag(config=True)
    uid = Integer(sandbox.NOBODY, help="uid and gid of the kernel inside the sandbox.").tag(config=True)
    state_dir = Unicode("", help="Private folder of the grader (scratch folders, kernel settings, the course "
                                 "secret by default). Default: .autograder in the course root.").tag(config=True)
    secret_file = Unicode("", help="File holding the course secret that seeds hidden tests (created on first "
                                   "use, mode 600). Default: course-secret in the state folder.").tag(config=True)
    private_paths = List(Unicode(), help="More folders student kernels must not see (the batch command adds its "
                                         "output and submissions folders).").tag(config=True)
    data_dir = Unicode(os.environ.get("DLCOURSE_DATA", ""), help="DLCOURSE_DATA for the kernels (bound "
                                                                 "read-only).").tag(config=True)
    threads = Integer(0, help="Threads a kernel's torch, TensorFlow and OpenMP/BLAS may use (0: no cap). "
                              "python -m autograder grade sets cores // jobs, so that kernels graded side by "
                              "side do not oversubscribe the cores.").tag(config=True)

    _probed: dict[str, dict] = {}  # per process: mounts already proven safe -> probe report

    # ---- where things are
    def course_root(self) -> pathlib.Path:
        from nbgrader.coursedir import CourseDirectory
        return pathlib.Path(CourseDirectory(parent=self).root).resolve()

    def state_path(self) -> pathlib.Path:
        """The grader's private state folder (not created)."""
        return (pathlib.Path(self.state_dir) if self.state_dir else self.course_root() / STATE_FOLDER).resolve()

    def state_folder(self) -> pathlib.Path:
        path = self.state_path()
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
        return path.resolve()

    def secret_path(self) -> pathlib.Path:
        return pathlib.Path(self.secret_file).resolve() if self.secret_file else self.state_folder() / "course-secret"

    def seed(self, assignment: str, student: str) -> int:
        return grading_seed(load_secret(self.secret_path()), assignment, student)

    def hidden_paths(self) -> list[pathlib.Path]:
        root = self.course_root()
        paths = [root, REPO_ROOT, self.state_folder(), pathlib.Path.home(), pathlib.Path("/home"),
                 pathlib.Path("/tmp"), pathlib.Path("/var/tmp"), pathlib.Path(tempfile.gettempdir()),
                 *map(pathlib.Path, self.private_paths)]
        for p in (root, REPO_ROOT):  # the folder holding a course usually holds its siblings' work too
            if p.parent != pathlib.Path("/"):
                paths.append(p.parent)
        return outermost([p for p in paths if p.exists()])

    def ro_binds(self) -> list[pathlib.Path]:
        private = [self.course_root(), REPO_ROOT, self.state_folder(), *map(pathlib.Path, self.private_paths)]
        private = [p.resolve() for p in private if p.exists()]
        paths = {pathlib.Path(sys.base_prefix).resolve(), pathlib.Path(sys.prefix).resolve()}
        for entry in sys.path:
            p = pathlib.Path(entry or ".").resolve()
            # Not a folder that is, holds or lies in what the kernel must not see (a script's own
            # folder is on sys.path, and it may hold the submissions).
            if p.is_dir() and not any(p == q or q in p.parents or p in q.parents for q in private):
                paths.add(p)
        package = dlcourse_folder()
        if package is not None:
            paths.add(package)  # only the package: the repository around it stays hidden
        data, _ = self.data_source()
        if data is not None:
            paths.add(data)
        return sorted(paths, key=lambda p: len(p.parts))

    # ---- the data
    def data_source(self) -> tuple[pathlib.Path | None, str]:
        """(the folder of full IDX files the kernels read, or None for the bundled sample; the same
        in words, for the log). ``data_dir`` (default ``$DLCOURSE_DATA``) when set: it must hold
        every file (:class:`ValueError` naming the missing ones otherwise, before any student is
        graded); else the grader's own dlcourse cache when it holds every file (what a notebook
        run by the instructor uses); else the bundled sample."""
        if self.data_dir:
            folder = pathlib.Path(self.data_dir).expanduser().resolve()
            missing = missing_data_files(folder)
            if missing:
                raise ValueError(f"the data folder {folder} (DLCOURSE_DATA) lacks {', '.join(missing[:3])}"
                                 f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''}. Fix: point "
                                 "DLCOURSE_DATA at a folder holding mnist/ and fashion-mnist/ with the four IDX .gz "
                                 "files each, or unset it to grade on the sample bundled with dlcourse")
            return folder, f"the full IDX files in {folder} (DLCOURSE_DATA)"
        from dlcourse._download import cache_root
        cache = cache_root().expanduser().resolve()
        if not missing_data_files(cache):
            return cache, f"the full IDX files in {cache} (the dlcourse download cache)"
        return None, ("the sample bundled with dlcourse (10,000 training and 2,000 test images per data set; "
                      "downloads off). To grade on the full data, set DLCOURSE_DATA to a folder holding mnist/ and "
                      "fashion-mnist/ with the IDX files")

    # ---- one kernel
    def settings_for(self, assignment: str, student: str, runtime: pathlib.Path) -> sandbox.SandboxSettings:
        """Settings of one student's kernel; creates its (empty) scratch folder."""
        scratch = self.state_folder() / "scratch" / student
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
        (scratch / "tmp").mkdir(parents=True, exist_ok=True)
        package = dlcourse_folder()
        kernel_env = {
            "PATH": os.pathsep.join([str(pathlib.Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(scratch), "LANG": "C.UTF-8",
            "DLCOURSE_PROFILE": self.profile,
            "DLCOURSE_CACHE": str(scratch / ".cache" / "dlcourse"),
            **execution.FIXED,
            "JUPYTER_RUNTIME_DIR": str(runtime), "IPYTHONDIR": str(scratch / ".ipython"),
            "MPLCONFIGDIR": str(scratch / ".config" / "matplotlib"), "XDG_CACHE_HOME": str(scratch / ".cache"),
            "XDG_CONFIG_HOME": str(scratch / ".config"), "KERAS_HOME": str(scratch / ".keras"),
            "TMPDIR": str(scratch / "tmp"), "NBGRADER_EXECUTION": "autograde",
        }
        if package is not None:
            kernel_env["PYTHONPATH"] = str(package.parent)
        data, _ = self.data_source()
        if data is not None:
            kernel_env["DLCOURSE_DATA"] = str(data)
        else:  # the bundled sample: no network in the sandbox, so no download attempts
            kernel_env["DLCOURSE_MIRRORS"] = "none"
        if self.threads > 0:
            kernel_env.update({name: str(self.threads) for name in THREAD_VARIABLES})
        return sandbox.SandboxSettings(
            workdir=str(scratch), enabled=self.enabled, hide=list(map(str, self.hidden_paths())),
            ro_binds=list(map(str, self.ro_binds())), rw_binds=[str(runtime)], memory_mb=self.memory_mb,
            cpu_seconds=self.cpu_seconds, kernel_env=kernel_env, uid=self.uid, gid=self.uid)

    def kernel_spec(self, settings: sandbox.SandboxSettings, name: str) -> KernelSpec:
        """A kernelspec for these settings (written to the private state folder, which kernels cannot see)."""
        folder = self.state_folder() / "settings"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{name}.json"
        settings.save(path)
        return KernelSpec(argv=[sys.executable, str(PACKAGE_DIR / "sandbox.py"), str(path), "{connection_file}"],
                          display_name=KERNEL_DISPLAY_NAME, language="python", interrupt_mode="message",
                          resource_dir=str(folder))

    def runtime_folder(self) -> pathlib.Path:
        """A short, private folder for the kernel's IPC sockets (unix socket paths allow 107 bytes)."""
        path = pathlib.Path(tempfile.mkdtemp(prefix="ag-", dir="/tmp" if os.path.isdir("/tmp") else None))
        path.chmod(0o700)
        return path

    # ---- the probe
    def check(self) -> dict | None:
        """Prove the sandbox works and protects the grader (once per process and set of mounts);
        raise :class:`SandboxUnavailable` otherwise. Returns the probe's report (None when disabled)."""
        if not self.enabled:
            self.log.warning("GradingSandbox.enabled is False: student code runs with the grader's permissions")
            return None
        runtime = self.runtime_folder()
        # Its own scratch folder per process: workers grading side by side probe at the same time.
        settings = self.settings_for("_probe", f"_probe-{os.getpid()}", runtime)
        try:
            # Keyed by the whole command a kernel would run (mounts, flags, limits, which bwrap):
            # any change to it is probed again.
            command = sandbox.limits_prefix(settings) + sandbox.sandbox_command(settings, ["KERNEL"], None)
            key = json.dumps(command)
            if key not in self._probed:
                GradingSandbox._probed[key] = self._run_probe(settings)
            return self._probed[key]
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
            shutil.rmtree(settings.workdir, ignore_errors=True)

    def _run_probe(self, settings: sandbox.SandboxSettings) -> dict:
        if not shutil.which("bwrap"):
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install "
                                     "bubblewrap) or, for trusted submissions only, set c.GradingSandbox.enabled = "
                                     "False (python -m autograder grade: --no-sandbox)")
        root, workdir = self.course_root(), pathlib.Path(settings.workdir)
        # Folders on the way to the scratch folder exist (empty) inside the sandbox: not those.
        private = [str(p) for p in (root / "source", root / "gradebook.db", root / "submitted", self.secret_path(),
                                    self.state_folder() / "settings", REPO_ROOT / "source",
                                    *map(pathlib.Path, self.private_paths))
                   if p.exists() and p.resolve() not in workdir.parents]
        inner = [sys.executable, "-c", probe.PROBE, json.dumps(settings.hide), json.dumps(private)]
        cmd, fds = sandbox.command(settings, inner)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(sandbox.LAUNCH_ENV),
                                  pass_fds=fds)
        except (OSError, subprocess.TimeoutExpired) as exc:
            proc, detail = None, repr(exc)
        else:
            detail = (proc.stdout + proc.stderr).strip()[-1500:]
        finally:
            for fd in fds:
                os.close(fd)
        report = probe.parse(proc.stdout) if proc is not None else None
        if proc is None or proc.returncode != 0 or report is None:
            raise SandboxUnavailable(
                "the grading sandbox does not work on this machine (bubblewrap could not start a kernel as "
                f"configured):\n{detail}\nFix bubblewrap (user namespaces, setuid bwrap) or, for trusted "
                "submissions only, set c.GradingSandbox.enabled = False (python -m autograder grade: --no-sandbox)")
        found = probe.problems(report, kernel_env_keys=set(settings.kernel_env) | {"LC_CTYPE", "PWD"},
                               launch_env_keys=set(sandbox.LAUNCH_ENV))
        if found:
            raise SandboxUnavailable("the grading sandbox does not protect the grader on this machine; refusing to "
                                     "grade:\n- " + "\n- ".join(found))
        self.log.info("sandbox probe: ok (uid %d, no capabilities, no unshare/umount/remount/ptrace, grader's "
                      "environment and private files hidden, no network, %d MB address space, %d s CPU)",
                      report["uid"], self.memory_mb, self.cpu_seconds)
        return report
