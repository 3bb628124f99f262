"""``python -m autograder grade ASSIGNMENT SUBMISSIONS --out OUT``: grade a batch safely.

Each student is graded by its own ``nbgrader autograde --student ID`` process, in a
private nbgrader course folder under ``OUT/_nbgrader`` (gradebook included) that student
kernels cannot see, with every kernel in a bubblewrap sandbox (``autograder/sandbox.py``).
Whatever one submission does, the batch finishes and the other students' grades are
untouched. Outputs: ``OUT/grades.csv`` (nbgrader export), ``OUT/breakdown.csv`` (points,
status and reason per graded cell per student), ``OUT/feedback/ID/*.html`` (hidden tests
removed) and ``OUT/grading.log``.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import html
import json
import logging
import os
import pathlib
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass

import nbformat

from . import PACKAGE_DIR, REPO_ROOT, probe, sandbox
from . import sandbox as _sandbox  # GradeOptions has a field named sandbox
from . import feedback as feedback_html
from .nbgrader_config import KERNEL_NAME
from .preprocessors import hidden_lines_of
from .status import Status

STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
BREAKDOWN_FIELDS = ["student_id", "notebook", "cell", "points", "max_points", "status", "reason"]
TAG_RE = re.compile(r"<[^>]+>")
MB = 1024 * 1024
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets run as a formula (OWASP)
RATIO_MIN_BYTES = MB  # the compression-ratio limit applies to zip members larger than this


class GradeError(Exception):
    """The batch cannot be graded as asked; the message says how to fix it."""


@dataclass
class GradeOptions:
    sandbox: bool = True
    timeout: int = 120          # seconds per cell before the kernel is interrupted
    memory_mb: int = 6144       # address-space limit of a kernel (torch + TF need ~4 GB of AS)
    cpu_seconds: int = 900      # CPU time of one kernel (all threads), then it is killed
    student_timeout: int = 1800  # wall-clock limit of one student's whole autograde process
    sandbox_uid: int = _sandbox.NOBODY  # uid and gid of the kernels when the grader runs as root
    profile: str = "ci"
    max_notebook_mb: int = 50   # largest notebook read (a file of a folder, or a zip member uncompressed)
    max_total_mb: int = 2048    # all notebooks of a zip together, uncompressed
    max_zip_ratio: int = 200    # uncompressed/compressed size of a zip member over 1 MB


# --------------------------------------------------------------------------- helpers

def grading_seed(secret: bytes, assignment: str, student_id: str) -> int:
    """Per-student seed of the hidden tests: stable across re-grades, unguessable without the secret."""
    digest = hmac.new(secret, f"{assignment}\0{student_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def load_secret(path: pathlib.Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    value = path.read_text().strip()
    if len(value) < 16:
        raise GradeError(f"{path}: the course secret must be at least 16 characters")
    return value.encode()


def _outermost(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    paths = sorted({p.resolve() for p in paths if str(p.resolve()) != "/"}, key=lambda p: len(p.parts))
    kept: list[pathlib.Path] = []
    for p in paths:
        if not any(p == k or k in p.parents for k in kept):
            kept.append(p)
    return kept


def human_size(n: float) -> str:
    """1536 -> '1.5 KB' (powers of 1024, like --memory and --max-notebook-mb)."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        n /= 1024
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"


def _limit_mb(n_bytes: int) -> str:
    return f"{n_bytes / MB:g} MB"


def csv_safe(value):
    """``value``, or ``'value`` when a spreadsheet would run it as a formula (it starts with
    = + - @ tab or CR; OWASP's advice). Numbers are returned unchanged unless negative."""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_START) else value


def neutralise_csv(path: pathlib.Path) -> None:
    """Rewrite a CSV file in place (same rows and columns) with every field made ``csv_safe``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([csv_safe(f) for f in row] for row in rows)
    os.replace(tmp, path)


def remove_tree(path: pathlib.Path) -> tuple[int, int]:
    """Remove ``path`` and everything under it without following links, also folders made
    unreadable (chmod 000: given u+rwx back first); return (bytes, files) removed. Bytes are
    apparent sizes of regular files, each inode counted once."""
    path = str(path)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return (st.st_size if stat.S_ISREG(st.st_mode) else 0), 1
    size = files = 0
    seen: set[tuple[int, int]] = set()
    stack = [(path, False)]
    while stack:  # iterative: a student's folder may nest deeper than Python's recursion limit
        folder, emptied = stack.pop()
        if emptied:
            os.rmdir(folder)
            continue
        mode = stat.S_IMODE(os.lstat(folder).st_mode)
        if mode & 0o700 != 0o700:
            os.chmod(folder, mode | 0o700)
        stack.append((folder, True))
        with os.scandir(folder) as entries:
            for entry in entries:
                est = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(est.st_mode):
                    stack.append((entry.path, False))
                    continue
                if stat.S_ISREG(est.st_mode) and (est.st_dev, est.st_ino) not in seen:
                    seen.add((est.st_dev, est.st_ino))
                    size += est.st_size
                files += 1
                os.unlink(entry.path)
    return size, files


def _is_link_member(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def _safe_extract(archive: pathlib.Path, dest: pathlib.Path, *, max_member_bytes: int, max_total_bytes: int,
                  max_ratio: float) -> dict:
    """Extract the notebooks (``*.ipynb``) of ``archive`` into ``dest``, folders implied; skip
    every other member (links included). Sizes are checked against the zip directory before
    anything is written, and again while streaming (a directory can lie). Any refusal raises
    GradeError and removes ``dest``. Returns {"extracted": n, "skipped": n, "skipped_names": [...]}."""
    root = dest.resolve()
    per_member = f"the limit of {_limit_mb(max_member_bytes)} per notebook"
    try:
        with zipfile.ZipFile(archive) as zf:
            take, skipped, declared = [], [], 0
            for info in zf.infolist():
                target = (root / info.filename).resolve()
                if root not in target.parents and target != root:
                    raise GradeError(f"{archive}: entry {info.filename!r} points outside the archive; refusing it")
                if info.is_dir():
                    continue
                if _is_link_member(info) or not info.filename.lower().endswith(".ipynb"):
                    skipped.append(info.filename)
                    continue
                if info.file_size > max_member_bytes:
                    raise GradeError(
                        f"{archive}: {info.filename} is {human_size(info.file_size)} uncompressed, over {per_member}; "
                        "refusing the archive (if that notebook is genuine, raise the limit with --max-notebook-mb)")
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > RATIO_MIN_BYTES and ratio > max_ratio:
                    raise GradeError(
                        f"{archive}: {info.filename} has a compression ratio of {ratio:.0f}:1 "
                        f"({human_size(info.file_size)} from {human_size(info.compress_size)}), over the limit of "
                        f"{max_ratio:g}:1 for members over 1 MB (a zip bomb?); refusing the archive (if it is "
                        "genuine, raise GradeOptions.max_zip_ratio)")
                declared += info.file_size
                if declared > max_total_bytes:
                    raise GradeError(
                        f"{archive}: its notebooks add up to more than {_limit_mb(max_total_bytes)} uncompressed "
                        f"(reached at {info.filename}); refusing the archive (raise the limit with --max-total-mb)")
                take.append((info, target))
            written_total = 0
            for info, target in take:
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                try:
                    with zf.open(info) as src, open(target, "wb") as dst:
                        while chunk := src.read(MB):
                            written += len(chunk)
                            written_total += len(chunk)
                            if written > min(info.file_size, max_member_bytes) or written_total > max_total_bytes:
                                raise GradeError(
                                    f"{archive}: {info.filename} holds more data than its zip directory declares "
                                    f"({info.file_size} bytes) or than {per_member} / "
                                    f"{_limit_mb(max_total_bytes)} in all; refusing the archive")
                            dst.write(chunk)
                except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
                    raise GradeError(f"{archive}: {info.filename} could not be read ({exc}); refusing the archive") \
                        from exc
    except zipfile.BadZipFile as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise GradeError(f"{archive}: not a readable zip file ({exc})") from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing partial is left behind
        raise
    return {"extracted": len(take), "skipped": len(skipped), "skipped_names": skipped}


def first_symlink(folder: pathlib.Path) -> str | None:
    """'path -> target' of the first symbolic link at or under ``folder`` (links are never
    followed), or None."""
    if folder.is_symlink():
        return f"{folder.name} -> {os.readlink(folder)}"
    for base, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            if os.path.islink(path):
                return f"{os.path.relpath(path, folder.parent)} -> {os.readlink(path)}"
    return None


def _read_notebook_bytes(path: pathlib.Path, limit: int) -> bytes | int:
    """The file's bytes, or its size when it is larger than ``limit`` (then it is not read).
    Opened without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            return size
        data = fh.read(limit + 1)
    return len(data) if len(data) > limit else data


def discover(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """STUDENT_ID -> folder, for every folder of ``root`` that holds notebooks.
    A single wrapping folder (a zip of a folder) is looked through. Links are not followed:
    a link to a folder is listed as that student (``stage`` refuses it), other links are skipped."""
    def student_dirs(base):
        found = []
        for d in sorted(base.iterdir()):
            if d.name.startswith((".", "__MACOSX")):
                continue
            if d.is_symlink():
                if d.is_dir():  # poses as a student folder: listed, so that it is refused with a reason
                    found.append(d)
            elif d.is_dir():
                found.append(d)
        return found
    dirs = student_dirs(root)
    if len(dirs) == 1 and not dirs[0].is_symlink() and not any(dirs[0].glob("*.ipynb")) and student_dirs(dirs[0]):
        dirs = student_dirs(dirs[0])
    return {d.name: d for d in dirs}


# --------------------------------------------------------------------------- the batch

class Batch:
    def __init__(self, assignment, submissions, out, *, source_dir, secret_file, options):
        self.assignment = assignment
        self.opts = options
        self.out = out.resolve()
        self.work = self.out / "_nbgrader"
        self.source_dir = (source_dir or REPO_ROOT / "source").resolve()
        self.master_dir = self.source_dir / assignment
        self.submissions = submissions.resolve()
        self.secret_path = (secret_file or self.out / "course-secret").resolve()
        self.secret = load_secret(self.secret_path)
        self.log = logging.getLogger(f"autograder.{id(self)}")
        self.rows: list[dict] = []
        self._handlers: list[logging.Handler] = []
        self.timings: dict[str, float] = {}  # seconds per student, for benchmarks/grading.py
        # Kernel sockets live in a short path (unix sockets allow 107 bytes), one folder per student.
        self.runtime_root = pathlib.Path(tempfile.mkdtemp(prefix="ag-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.runtime_root.chmod(0o700)
        self.runtime_of: dict[str, pathlib.Path] = {}
        self.settings_of: dict[str, sandbox.SandboxSettings] = {}

    # ---- setup
    def check_inputs(self):
        if not self.master_dir.is_dir():
            have = sorted(p.name for p in self.source_dir.iterdir() if p.is_dir()) if self.source_dir.is_dir() else []
            raise GradeError(f"no assignment {self.assignment!r} in {self.source_dir}; available: {have or 'none'}")
        self.masters = {p.stem: p for p in sorted(self.master_dir.glob("*.ipynb"))}
        if not self.masters:
            raise GradeError(f"{self.master_dir} holds no master notebook")
        if not self.submissions.exists():
            raise GradeError(f"{self.submissions} does not exist; give a folder of STUDENT_ID/NOTEBOOK.ipynb or a .zip of one")
        if self.submissions.is_file() and self.submissions.suffix.lower() != ".zip":
            raise GradeError(f"{self.submissions}: expected a folder or a .zip file")
        if self.work in self.submissions.parents or self.submissions == self.out:
            raise GradeError("the submissions must not live inside OUT; choose another --out")

    def setup_logging(self):
        self.out.mkdir(parents=True, exist_ok=True)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        fh = logging.FileHandler(self.out / "grading.log", mode="w", encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(logging.Formatter("%(message)s"))
        self.log.addHandler(fh)
        self.log.addHandler(sh)
        self._handlers = [fh, sh]

    def close_logging(self):
        for h in self._handlers:
            h.close()
            self.log.removeHandler(h)

    def prepare_course(self):
        if self.work.exists():
            shutil.rmtree(self.work)
        feedback = self.out / "feedback"
        if feedback.exists():
            shutil.rmtree(feedback)
        for sub in ("source", "submitted", "scratch", "reports", "logs", "jupyter/kernels", "pylib"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.master_dir, self.work / "source" / self.assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        shutil.copytree(REPO_ROOT / "dlcourse", self.work / "pylib" / "dlcourse",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        hidden = {name: hidden_lines_of(nbformat.read(path, as_version=4)) for name, path in self.masters.items()}
        self.hidden = hidden
        (self.work / "hidden_lines.json").write_text(json.dumps(hidden, indent=1, sort_keys=True))
        (self.work / "nbgrader_config.py").write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
            "from autograder.nbgrader_config import configure\n"
            f"configure(get_config(), course_root={str(self.work)!r}, timeout={self.opts.timeout},\n"
            f"          hidden_lines_file={str(self.work / 'hidden_lines.json')!r})\n")
        spec_dir = self.work / "jupyter" / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, str(PACKAGE_DIR / "sandbox.py"), "{connection_file}"],
            "display_name": "Python 3 (autograder sandbox)", "language": "python",
            "interrupt_mode": "message",  # signals do not reach a kernel inside bwrap's PID namespace
        }, indent=1))
        self.nbgrader(["generate_assignment", self.assignment, "--force"], "generate_assignment")

    def nbgrader(self, args, label, env=None, timeout=600):
        log_path = self.work / "logs" / f"{label}.log"
        full_env = dict(os.environ if env is None else env)
        full_env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [full_env.get("PYTHONPATH")] if p])
        # This python's bin folder first: nbgrader runs `alembic` (and jupyter tools) from PATH,
        # which an un-activated virtual environment does not provide.
        full_env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable)]
                                           + [p for p in [full_env.get("PATH")] if p])
        full_env["JUPYTER_PATH"] = str(self.work / "jupyter")
        full_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        with open(log_path, "w") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=self.work, env=full_env,
                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
        text = log_path.read_text(errors="replace")
        if label in ("generate_assignment",) and rc != 0:
            raise GradeError(f"nbgrader generate_assignment failed on the master; its log:\n{text[-3000:]}")
        return rc, text

    # ---- sandbox
    def hidden_paths(self):
        paths = [REPO_ROOT, self.source_dir, self.out, self.work, self.submissions.parent if self.submissions.is_file()
                 else self.submissions, pathlib.Path.home(), pathlib.Path("/home"), pathlib.Path("/tmp"),
                 pathlib.Path("/var/tmp"), pathlib.Path(tempfile.gettempdir())]
        if REPO_ROOT.parent != pathlib.Path("/"):
            paths.append(REPO_ROOT.parent)
        return [p for p in _outermost([p for p in paths if p.exists()])]

    def ro_binds(self):
        paths = {pathlib.Path(sys.base_prefix).resolve(), pathlib.Path(sys.prefix).resolve(), self.work / "pylib"}
        private = [REPO_ROOT, self.out, self.source_dir,
                   self.submissions.parent if self.submissions.is_file() else self.submissions]
        for entry in sys.path:
            p = pathlib.Path(entry or ".").resolve()
            # Not a folder that is, holds or lies in what the kernel must not see (a script's own
            # folder is on sys.path, and it may hold the submissions).
            if p.is_dir() and not any(p == q or q in p.parents or p in q.parents for q in map(pathlib.Path.resolve, private)):
                paths.add(p)
        data = os.environ.get("DLCOURSE_DATA")
        if data and pathlib.Path(data).is_dir():
            paths.add(pathlib.Path(data).resolve())
        return sorted(paths, key=lambda p: len(p.parts))

    def sandbox_env(self, student_id: str) -> dict:
        scratch = self.work / "scratch" / student_id
        runtime = self.runtime_of.setdefault(student_id, self.runtime_root / str(len(self.runtime_of)))
        for d in (scratch, runtime, scratch / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        kernel_env = {
            "PATH": os.pathsep.join([str(pathlib.Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(scratch), "LANG": "C.UTF-8",
            "DLCOURSE_PROFILE": self.opts.profile,
            "DLCOURSE_GRADING_SEED": str(grading_seed(self.secret, self.assignment, student_id)),
            "DLCOURSE_CACHE": str(scratch / ".cache" / "dlcourse"),
            "MPLBACKEND": "Agg", "PYTHONPATH": str(self.work / "pylib"), "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_RUNTIME_DIR": str(runtime), "IPYTHONDIR": str(scratch / ".ipython"),
            "MPLCONFIGDIR": str(scratch / ".config" / "matplotlib"), "XDG_CACHE_HOME": str(scratch / ".cache"),
            "XDG_CONFIG_HOME": str(scratch / ".config"), "KERAS_HOME": str(scratch / ".keras"),
            "TMPDIR": str(scratch / "tmp"), "NBGRADER_EXECUTION": "autograde",
        }
        if os.environ.get("DLCOURSE_DATA"):
            kernel_env["DLCOURSE_DATA"] = os.environ["DLCOURSE_DATA"]
        settings = sandbox.SandboxSettings(
            workdir=str(scratch), enabled=self.opts.sandbox, hide=list(map(str, self.hidden_paths())),
            ro_binds=list(map(str, self.ro_binds())), rw_binds=[str(runtime)], memory_mb=self.opts.memory_mb,
            cpu_seconds=self.opts.cpu_seconds, kernel_env=kernel_env, uid=self.opts.sandbox_uid,
            gid=self.opts.sandbox_uid)
        settings_dir = self.work / "settings"
        settings_dir.mkdir(mode=0o700, exist_ok=True)
        settings_file = settings_dir / f"{student_id}.json"
        settings.save(settings_file)
        self.settings_of[student_id] = settings
        # What the nbgrader process needs; the launcher starts bwrap with PATH alone.
        env = dict(os.environ)
        env.update({
            sandbox.SETTINGS_VAR: str(settings_file),
            "AUTOGRADER_REPORT_DIR": str(self.work / "reports" / student_id),
            "JUPYTER_RUNTIME_DIR": str(runtime),
        })
        return env

    def probe_sandbox(self):
        """Run a tiny program in the sandbox once; refuse to grade when it does not work."""
        self.sandbox_env("_probe")
        settings = self.settings_of["_probe"]
        if not shutil.which("bwrap"):
            raise GradeError("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install "
                             "bubblewrap) or, for trusted submissions only, pass --no-sandbox")
        private = [str(self.master_dir), str(self.secret_path), str(self.work / "gradebook.db"),
                   str(self.work / "settings"), str(self.submissions)]
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
            raise GradeError("the grading sandbox does not work on this machine (bubblewrap could not start a "
                             f"kernel as configured):\n{detail}\nFix bubblewrap (user namespaces, setuid bwrap) or, "
                             "for trusted submissions only, pass --no-sandbox")
        found = probe.problems(report, kernel_env_keys=set(settings.kernel_env) | {"LC_CTYPE", "PWD"},
                               launch_env_keys=set(sandbox.LAUNCH_ENV))
        if found:
            raise GradeError("the grading sandbox does not protect the grader on this machine; refusing to grade:\n- "
                             + "\n- ".join(found))
        self.log.info("sandbox probe: ok (uid %d, no capabilities, no unshare/umount/remount/ptrace, grader's "
                      "environment and private files hidden, no network, %d MB address space, %d s CPU)",
                      report["uid"], self.opts.memory_mb, self.opts.cpu_seconds)

    # ---- students
    def collect(self) -> dict[str, pathlib.Path]:
        root = self.submissions
        if root.is_file():
            root = self.work / "incoming"
            root.mkdir()
            got = _safe_extract(self.submissions, root, max_member_bytes=self.opts.max_notebook_mb * MB,
                                max_total_bytes=self.opts.max_total_mb * MB, max_ratio=self.opts.max_zip_ratio)
            names = got["skipped_names"]
            self.log.info("%s: extracted %d notebooks; skipped %d members that are not notebooks (links and other "
                          "files)%s", self.submissions.name, got["extracted"], got["skipped"],
                          f", e.g. {', '.join(names[:5])}" if names else "")
        found = discover(root)
        if not found:
            raise GradeError(f"{self.submissions}: no STUDENT_ID folders found; expected STUDENT_ID/NOTEBOOK.ipynb")
        return found

    def stage(self, student_id: str, folder: pathlib.Path) -> dict[str, tuple[Status, str]]:
        """Copy the student's readable notebooks into submitted/; return {notebook: (status, reason)}
        for the rest. A submission holding a symbolic link anywhere is refused as a whole."""
        link = first_symlink(folder)
        if link:
            why = f"the submission contains a symbolic link ({link}); hand in plain files"
            return {name: (Status.REFUSED, why) for name in self.masters}
        limit = self.opts.max_notebook_mb * MB
        dest = self.work / "submitted" / student_id / self.assignment
        dest.mkdir(parents=True, exist_ok=True)
        given = {p.stem: p for p in sorted(folder.glob("*.ipynb")) if p.is_file() and not p.is_symlink()}
        if len(self.masters) == 1 and len(given) == 1 and not set(given) & set(self.masters):
            # One notebook, renamed by the student ("00_getting_started (1).ipynb"): accept it.
            given = {next(iter(self.masters)): next(iter(given.values()))}
        problems = {}
        for name in self.masters:
            path = given.get(name)
            if path is None:
                problems[name] = (Status.MISSING,
                                  f"no {name}.ipynb in the submission (found {sorted(given) or 'no notebooks'})")
                continue
            try:
                data = _read_notebook_bytes(path, limit)
                if isinstance(data, int):
                    problems[name] = (Status.REFUSED, f"{path.name} is {human_size(data)}, over the limit of "
                                      f"{_limit_mb(limit)} per notebook; not read (the instructor can raise it "
                                      "with --max-notebook-mb)")
                    continue
                nb = nbformat.reads(data.decode("utf-8"), as_version=4)
                if not isinstance(nb.get("cells"), list):
                    raise ValueError("no cell list")
            except Exception as exc:
                problems[name] = (Status.CORRUPT, f"{name}.ipynb is not a readable notebook "
                                  f"({type(exc).__name__}: {str(exc)[:200]})")
                continue
            (dest / f"{name}.ipynb").write_bytes(data)
        return problems

    def grade_student(self, student_id: str, folder: pathlib.Path):
        # The seed lets an instructor re-run a hidden test with this student's inputs
        # (DLCOURSE_GRADING_SEED=<seed>); the log stays with the instructor.
        self.log.info("== %s (grading seed %d)", student_id, grading_seed(self.secret, self.assignment, student_id))
        started = time.monotonic()
        try:
            self._grade_student(student_id, folder)
        finally:
            self.timings[student_id] = time.monotonic() - started
            self.log.info("%s graded in %.1f s", student_id, self.timings[student_id])
            self.remove_scratch(student_id)

    def remove_scratch(self, student_id: str):
        """Remove the student's scratch folder (the kernel's cwd, HOME and TMPDIR) and log its size."""
        path = self.work / "scratch" / student_id
        if not path.exists() and not path.is_symlink():
            return
        try:
            size, files = remove_tree(path)
        except OSError as exc:
            self.log.error("%s: could not remove scratch %s: %r", student_id, path, exc)
            return
        self.log.info("%s: removed scratch (%s, %d files)", student_id, human_size(size), files)

    def _grade_student(self, student_id: str, folder: pathlib.Path):
        from nbgrader.api import Gradebook
        with Gradebook(f"sqlite:///{self.work / 'gradebook.db'}") as gb:
            gb.update_or_create_student(student_id)
        problems = self.stage(student_id, folder)
        for name, (status, why) in problems.items():
            self.log.warning("%s/%s: %s: %s", student_id, name, status.value, why)
        reports, failure = {}, None
        if len(problems) < len(self.masters):
            env = self.sandbox_env(student_id)
            timeout = self.opts.student_timeout * (len(self.masters) - len(problems))
            try:
                rc, text = self.nbgrader(["autograde", self.assignment, "--student", student_id, "--force"],
                                         f"autograde-{student_id}", env=env, timeout=timeout)
            except Exception as exc:  # never let one student stop the batch
                rc, text = -1, repr(exc)
            if rc is None:
                failure = f"grading this student took longer than {timeout} s and was stopped"
            elif rc != 0:
                tail = [l for l in text.splitlines() if "[AutogradeApp | ERROR]" in l or "Error" in l][-3:]
                failure = f"nbgrader autograde failed (exit {rc}): {' | '.join(tail)[-400:]}"
            if failure:
                self.log.error("%s: %s", student_id, failure)
            for path in sorted((self.work / "reports" / student_id).glob("*.json")):
                reports[path.stem] = json.loads(path.read_text())
        self.record(student_id, problems, reports, failure)

    def record(self, student_id, problems, reports, failure):
        from nbgrader.api import Gradebook, MissingEntry
        with Gradebook(f"sqlite:///{self.work / 'gradebook.db'}") as gb:
            for name in self.masters:
                nb_master = gb.find_notebook(name, self.assignment)
                report = reports.get(name, {})
                for err in report.get("student_errors", []):
                    self.log.info("%s/%s: error in a student cell: %s", student_id, name, err)
                if report.get("notebook_error"):
                    self.log.error("%s/%s: %s", student_id, name, report["notebook_error"])
                for cell in sorted(nb_master.grade_cells, key=lambda c: c.name):
                    row = {"student_id": student_id, "notebook": name, "cell": cell.name,
                           "max_points": _num(cell.max_score), "points": 0, "status": "", "reason": ""}
                    if name in problems:
                        status, reason = problems[name]
                        row["status"], row["reason"] = Status(status).value, reason
                    else:
                        try:
                            grade = gb.find_grade(cell.name, name, self.assignment, student_id)
                        except MissingEntry:
                            grade = None
                        info = report.get("cells", {}).get(cell.name)
                        if grade is None:
                            row["status"] = Status.ERROR.value
                            row["reason"] = failure or "no grade was recorded; see grading.log"
                        elif cell.cell_type == "markdown":
                            row["points"] = "" if grade.score is None or grade.needs_manual_grade else _num(grade.score)
                            row["status"] = Status.MANUAL.value
                            row["reason"] = "written answer: grade it by hand (nbgrader formgrader)" \
                                if grade.needs_manual_grade else "unchanged answer: 0"
                        else:
                            row["points"] = _num(grade.score)
                            if info:
                                try:
                                    row["status"], row["reason"] = Status(info["status"]).value, info["reason"]
                                except ValueError:
                                    row["status"] = Status.ERROR.value
                                    row["reason"] = f"unknown status {info['status']!r}: {info['reason']}"
                            else:
                                row["status"] = Status.ERROR.value
                                row["reason"] = failure or "no execution record; see grading.log"
                    self.rows.append(row)
                    if row["status"] not in (Status.PASSED, Status.MANUAL):
                        self.log.info("%s/%s/%s: %s/%s %s: %s", student_id, name, cell.name, row["points"],
                                      row["max_points"], row["status"], row["reason"])

    # ---- outputs
    def export(self):
        rc, text = self.nbgrader(["export", "--to", str(self.out / "grades.csv")], "export")
        if rc != 0:
            raise GradeError(f"nbgrader export failed:\n{text[-2000:]}")
        neutralise_csv(self.out / "grades.csv")  # no field may start like a spreadsheet formula
        with open(self.out / "breakdown.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=BREAKDOWN_FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in self.rows)

    def feedback(self, students: list[str]):
        rc, _ = self.nbgrader(["generate_feedback", self.assignment, "--force"], "feedback")
        if rc != 0:  # one bad notebook must not cost everyone their feedback
            for sid in students:
                self.nbgrader(["generate_feedback", self.assignment, "--student", sid, "--force"], f"feedback-{sid}")
        all_hidden = {h for lines in self.hidden.values() for h in lines}
        try:
            allowed_scripts = feedback_html.template_scripts()
        except Exception as exc:  # then every feedback with a script is replaced: safe, and logged
            self.log.error("could not render the feedback template's own scripts (%r); feedback files with any "
                           "<script> will be replaced by a summary", exc)
            allowed_scripts = set()
        for sid in students:
            dest = self.out / "feedback" / sid
            dest.mkdir(parents=True, exist_ok=True)
            for name in self.masters:
                src = self.work / "feedback" / sid / self.assignment / f"{name}.html"
                rows = [r for r in self.rows if r["student_id"] == sid and r["notebook"] == name]
                if src.is_file():
                    text = src.read_text(encoding="utf-8")
                    # Last checks (ScrubFeedback and FeedbackExporter should have left nothing):
                    # whole lines that are hidden-test lines, and anything that could run script.
                    leaked = shown_hidden_lines(text, all_hidden)
                    unsafe = feedback_html.unsafe_html(text, allowed_scripts)
                    if leaked or unsafe:
                        why = [f"{len(leaked)} hidden-test lines"] if leaked else []
                        why += [f"student HTML/JS ({', '.join(unsafe[:3])})"] if unsafe else []
                        self.log.error("%s/%s: feedback would show %s; replaced by a summary",
                                       sid, name, " and ".join(why))
                        text = summary_html(sid, name, rows)
                        src.write_text(text, encoding="utf-8")  # nbgrader's copy too
                else:
                    text = summary_html(sid, name, rows)
                (dest / f"{name}.html").write_text(text, encoding="utf-8")

    def run(self) -> int:
        try:
            self.check_inputs()
            self.setup_logging()
            self.log.info("grading %s from %s into %s (profile %s, sandbox %s, %d s per cell)", self.assignment,
                          self.submissions, self.out, self.opts.profile, "on" if self.opts.sandbox else "OFF",
                          self.opts.timeout)
            self.prepare_course()
            if self.opts.sandbox:
                try:
                    self.probe_sandbox()
                finally:
                    self.remove_scratch("_probe")
            else:
                self.log.warning("--no-sandbox: student code runs as %s with your permissions", os.environ.get("USER", "you"))
            students = self.collect()
            graded = []
            for sid, folder in students.items():
                if not STUDENT_ID_RE.match(sid):
                    self.log.error("skipped folder %r: not a valid student id (letters, digits, . _ @ -)", sid)
                    continue
                try:
                    self.grade_student(sid, folder)
                except Exception as exc:  # the batch always finishes
                    self.log.exception("%s: grading failed: %r", sid, exc)
                    self.rows = [r for r in self.rows if r["student_id"] != sid]
                    self.record(sid, {n: (Status.ERROR, f"the grader failed on this submission ({exc!r})")
                                      for n in self.masters}, {}, None)
                graded.append(sid)
            self.export()
            self.feedback(graded)
            total = {}
            for r in self.rows:
                if r["points"] != "":
                    total[r["student_id"]] = total.get(r["student_id"], 0) + float(r["points"])
            self.log.info("done: %d students; grades.csv, breakdown.csv and feedback/ in %s", len(graded), self.out)
            for sid in graded:
                self.log.info("  %-24s %g", sid, total.get(sid, 0))
            return 0
        finally:
            shutil.rmtree(self.runtime_root, ignore_errors=True)
            incoming = self.work / "incoming"  # the extracted zip: every notebook is in submitted/ now
            if self.submissions.is_file() and (incoming.exists() or incoming.is_symlink()):
                try:
                    size, files = remove_tree(incoming)
                    self.log.info("removed the extracted zip %s (%s, %d files)", incoming, human_size(size), files)
                except OSError as exc:
                    self.log.error("could not remove the extracted zip %s: %r", incoming, exc)
            self.close_logging()


def _num(x):
    if x is None:
        return ""
    return int(x) if float(x).is_integer() else round(float(x), 4)


def shown_hidden_lines(page: str, hidden) -> list[str]:
    """The lines of the HTML ``page``'s text (tags removed, entities decoded) that are
    hidden-test lines: equal to one, or a traceback context line quoting one
    (``feedback.quotes_hidden``). Whole lines: a longer line containing one is not counted."""
    hidden = set(hidden)
    return [line.strip() for line in html.unescape(TAG_RE.sub("", page)).split("\n")
            if feedback_html.quotes_hidden(line, hidden)]


def summary_html(student_id: str, notebook: str, rows: list[dict]) -> str:
    body = "".join(f"<tr><td>{html.escape(r['cell'])}</td><td>{r['points']}</td><td>{r['max_points']}</td>"
                   f"<td>{html.escape(r['status'])}</td><td>{html.escape(r['reason'])}</td></tr>" for r in rows)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Feedback</title></head><body>"
            f"<h1>Feedback: {html.escape(notebook)} ({html.escape(student_id)})</h1>"
            "<table border=\"1\"><tr><th>cell</th><th>points</th><th>max</th><th>status</th><th>reason</th></tr>"
            f"{body}</table></body></html>\n")


def grade(assignment: str, submissions: pathlib.Path, out: pathlib.Path, *, source_dir=None, secret_file=None,
          options: GradeOptions | None = None, timings: dict | None = None) -> int:
    """Grade a batch (see the module docstring); ``timings`` receives seconds per student."""
    batch = Batch(assignment, pathlib.Path(submissions), pathlib.Path(out), source_dir=source_dir,
                  secret_file=secret_file, options=options or GradeOptions())
    try:
        return batch.run()
    finally:
        if timings is not None:
            timings.update(batch.timings)


def correct_submission(master: nbformat.NotebookNode, student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version with every answer cell filled from the master (markers removed):
    what a student who solved everything hands in. Used by tests and benchmarks."""
    import copy

    from .build import BEGIN_SOLUTION, END_SOLUTION, _remove_regions

    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in master.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(student)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = _remove_regions(answers[gid], BEGIN_SOLUTION, END_SOLUTION, keep_inside=True)
    return nb
