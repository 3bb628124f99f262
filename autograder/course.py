"""The nbgrader course folder of a batch (``OUT/_nbgrader``) and the nbgrader commands run in it.

The folder persists across re-grades into the same OUT: the gradebook (manual grades and
comments entered in the Formgrader included), the submissions and the autograded notebooks of
students not re-graded stay as they are. Each run refreshes the master (``source/``), the
``nbgrader_config.py`` (which calls :func:`autograder.nbgrader_config.configure` with the
run's limits) and the release version. Every nbgrader command runs as its own process, with
its log in ``logs/``."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import sys

from . import REPO_ROOT
from .errors import GradeError


@dataclasses.dataclass
class CourseSettings:
    """What the course folder's nbgrader_config.py sets (typed; written into the config as literals)."""

    timeout: int
    sandbox: dict  # GradingSandbox traits


class CourseFolder:
    def __init__(self, root: pathlib.Path, assignment: str):
        self.root = root
        self.assignment = assignment

    @property
    def gradebook_url(self) -> str:
        # Students graded side by side write to one SQLite file: a writer waits for the lock
        # (up to a minute) instead of failing at once ("database is locked").
        return f"sqlite:///{self.root / 'gradebook.db'}?timeout=60"

    def submitted(self, student_id: str) -> pathlib.Path:
        return self.root / "submitted" / student_id / self.assignment

    def autograded(self, student_id: str, notebook: str) -> pathlib.Path:
        return self.root / "autograded" / student_id / self.assignment / f"{notebook}.ipynb"

    def feedback(self, student_id: str, notebook: str) -> pathlib.Path:
        return self.root / "feedback" / student_id / self.assignment / f"{notebook}.html"

    def prepare(self, master_dir: pathlib.Path, settings: CourseSettings) -> None:
        """Create or refresh the folder for this run; what earlier runs graded stays."""
        for sub in ("source", "submitted", "logs", "outcomes"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        source = self.root / "source" / self.assignment
        if source.exists():
            shutil.rmtree(source)
        shutil.copytree(master_dir, source, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        (self.root / "nbgrader_config.py").write_text(
            "# Written by python -m autograder grade for this batch; rewritten on every run.\n"
            "import sys\n"
            f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
            "from autograder.nbgrader_config import configure\n"
            f"configure(get_config(), course_root={str(self.root)!r}, timeout={settings.timeout!r},\n"
            f"          sandbox={settings.sandbox!r})\n"
            f"get_config().CourseDirectory.db_url = {self.gradebook_url!r}\n")
        rc, text = self.nbgrader(["generate_assignment", self.assignment, "--force"], "generate_assignment")
        if rc != 0:
            raise GradeError(f"nbgrader generate_assignment failed on the master; its log:\n{text[-3000:]}")

    def nbgrader(self, args: list[str], label: str, timeout: int = 600) -> tuple[int | None, str]:
        """Run ``nbgrader ARGS`` in the folder; (exit code or None when stopped at ``timeout``, log text)."""
        log_path = self.root / "logs" / f"{label}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        # This python's bin folder first: nbgrader runs `alembic` (and jupyter tools) from PATH,
        # which an un-activated virtual environment does not provide.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable)] + [p for p in [env.get("PATH")] if p])
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        with open(log_path, "w") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=self.root, env=env,
                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
        return rc, log_path.read_text(errors="replace")
