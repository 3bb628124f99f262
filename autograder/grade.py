"""``python -m autograder grade ASSIGNMENT SUBMISSIONS --out OUT``: grade a batch safely.

The run, in stages (each in its own module):

1. **intake** (``autograder/intake.py``): the folder or zip of hand-ins, checked and extracted
   safely, one folder per valid student id;
2. **course** (``autograder/course.py``): the private nbgrader course folder ``OUT/_nbgrader``
   (gradebook included; kept across re-grades) with an ``nbgrader_config.py`` that plugs in the
   course's pipeline (``autograder/nbgrader_config.py``) with this run's limits;
3. **sandbox** (``autograder/kernel.py``, ``autograder/sandbox.py``): probed once before any
   student is graded; every kernel then runs in it;
4. **execution** (``autograder/workers.py``): nbgrader's own ``Autograde`` for one student at a
   time in each of ``--jobs N`` worker processes (default: one per core; threads per kernel
   capped at cores // N), or on a Dask cluster (``--scheduler``, ``autograder/cluster.py``);
   a student over their wall clock or a worker that dies costs that student only, and the
   batch's log, CSVs and feedback come out in student order, the same for any N;
5. **results** (``autograder/results.py``): ``OUT/grades.csv`` (nbgrader export),
   ``OUT/breakdown.csv`` (points, status and reason per graded cell per student, manual grades
   included), and ``OUT/feedback/ID/*.html`` (nbgrader's ``generate_feedback``, hidden tests
   removed), with ``OUT/grading.log``.

``--student ID`` re-grades (or adds) only those students; everyone else keeps what the
gradebook holds, including grades entered by hand in the Formgrader.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import sys
from dataclasses import dataclass

import nbformat

from . import REPO_ROOT
from . import sandbox as _sandbox  # GradeOptions has a field named sandbox
from .course import CourseFolder, CourseSettings
from .errors import GradeError
from .feedback import hidden_lines_of, page_problems, summary_html, template_scripts
from .files import human_size, remove_tree
from .intake import MB, STUDENT_ID_RE, discover, safe_extract, stage
from .kernel import GradingSandbox, SandboxUnavailable
from .workers import (StudentTask, TaskResult, TaskState, WorkerPool, default_jobs, physical_memory_mb,
                      thread_limits)
from .report import write_report
from .results import Outcome, export, outcome_path
from .secret import SecretError, grading_seed, load_secret
from .status import Status

__all__ = ["GradeError", "GradeOptions", "GradingRun", "grade", "export_results", "grading_seed", "load_secret",
           "correct_submission"]


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
    jobs: int = 0               # students graded at the same time (0: one per core, as many as fit in memory)
    scheduler: str | None = None  # address of a Dask scheduler: grade on its workers instead
    progress: bool | None = None  # progress bar on stderr (None: when stderr is a terminal)


class _ConsoleHandler(logging.StreamHandler):
    """The log on the terminal, printed above the progress bar instead of through it."""

    def emit(self, record):
        try:
            from tqdm import tqdm
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001
            self.handleError(record)


def progress_bar(total: int, enabled: bool | None):
    """Students done / total, failures so far and the time left (tqdm), on stderr; ``None``:
    only when stderr is a terminal."""
    from tqdm import tqdm
    return tqdm(total=total, unit="student", desc="grading", file=sys.stderr, dynamic_ncols=True,
                disable=None if enabled is None else not enabled)


class GradingRun:
    """One run of the grade command: an assignment, a folder or zip of hand-ins, an OUT."""

    def __init__(self, assignment, submissions, out, *, source_dir, secret_file, options, students=None):
        self.assignment = assignment
        self.opts = options
        self.out = out.resolve()
        self.course = CourseFolder(self.out / "_nbgrader", assignment)
        self.work = self.course.root
        self.source_dir = (source_dir or REPO_ROOT / "source").resolve()
        self.master_dir = self.source_dir / assignment
        self.submissions = submissions.resolve()
        self.only = list(students or [])
        self.secret_path = (secret_file or self.out / "course-secret").resolve()
        self.log = logging.getLogger(f"autograder.{id(self)}")
        self._handlers: list[logging.Handler] = []
        self.timings: dict[str, float] = {}  # seconds per student, for benchmarks/grading.py
        self.jobs = options.jobs or default_jobs(options.memory_mb)
        # On a Dask cluster each worker thread grades one student: one thread per kernel.
        self.threads = 1 if options.scheduler else thread_limits(self.jobs)

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
        if self.work in self.submissions.parents or self.submissions == self.out or self.out in self.submissions.parents:
            raise GradeError("the submissions must not live inside OUT; choose another --out")
        if self.opts.jobs < 0:
            raise GradeError(f"--jobs {self.opts.jobs}: give a number of students graded at once, at least 1")
        for sid in self.only:
            if not STUDENT_ID_RE.match(sid):
                raise GradeError(f"--student {sid!r}: not a valid student id (letters, digits, . _ @ -)")
        batch_file = self.work / "assignment.txt"
        if batch_file.is_file() and batch_file.read_text().strip() != self.assignment:
            raise GradeError(f"{self.out} holds the grades of {batch_file.read_text().strip()!r}, not "
                             f"{self.assignment!r}; grade each assignment into its own --out")
        try:  # last: it creates the secret on first use
            self.secret = load_secret(self.secret_path)
        except SecretError as exc:
            raise GradeError(str(exc)) from exc

    def setup_logging(self):
        self.out.mkdir(parents=True, exist_ok=True)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        fh = logging.FileHandler(self.out / "grading.log", mode="w", encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        sh = _ConsoleHandler(sys.stdout)
        sh.setFormatter(logging.Formatter("%(message)s"))
        self.log.addHandler(fh)
        self.log.addHandler(sh)
        self._handlers = [fh, sh]

    def close_logging(self):
        for h in self._handlers:
            h.close()
            self.log.removeHandler(h)

    def sandbox_settings(self) -> dict:
        """The GradingSandbox traits of this run (into the course folder's nbgrader_config.py)."""
        private = [self.out, self.submissions.parent if self.submissions.is_file() else self.submissions,
                   self.source_dir, self.secret_path.parent]
        return {"enabled": self.opts.sandbox, "memory_mb": self.opts.memory_mb, "cpu_seconds": self.opts.cpu_seconds,
                "uid": self.opts.sandbox_uid, "profile": self.opts.profile, "state_dir": str(self.work),
                "secret_file": str(self.secret_path), "private_paths": sorted({str(p) for p in private}),
                "data_dir": os.environ.get("DLCOURSE_DATA", ""), "threads": self.threads}

    def prepare_course(self):
        self.course.prepare(self.master_dir, CourseSettings(timeout=self.opts.timeout, sandbox=self.sandbox_settings()))
        (self.work / "assignment.txt").write_text(self.assignment + "\n")
        self.hidden = {name: hidden_lines_of(nbformat.read(path, as_version=4)) for name, path in self.masters.items()}

    def log_data_source(self):
        """Which data the kernels read (the full IDX files or the bundled sample), in the log; a
        DLCOURSE_DATA folder that lacks files stops the batch here, before any student."""
        from traitlets.config import Config
        config = Config()
        config.CourseDirectory.root = str(self.work)
        config.GradingSandbox.data_dir = self.sandbox_settings()["data_dir"]
        try:
            _, described = GradingSandbox(config=config).data_source()
        except ValueError as exc:
            raise GradeError(str(exc)) from exc
        self.log.info("data: %s", described)

    def probe_sandbox(self):
        """The probe nbgrader's own processes run too, here once before any student is graded."""
        from traitlets.config import Config
        config = Config()
        config.CourseDirectory.root = str(self.work)
        for key, value in self.sandbox_settings().items():
            setattr(config.GradingSandbox, key, value)
        try:
            GradingSandbox(config=config).check()
        except SandboxUnavailable as exc:
            raise GradeError(str(exc)) from exc
        self.log.info("sandbox probe: ok (no capabilities, no unshare/umount/remount/ptrace, grader's environment "
                      "and private files hidden, no network, %d MB address space, %d s CPU)",
                      self.opts.memory_mb, self.opts.cpu_seconds)

    # ---- students
    def collect(self) -> dict[str, pathlib.Path]:
        root = self.submissions
        if root.is_file():
            root = self.work / "incoming"
            if root.exists():
                remove_tree(root)
            root.mkdir()
            got = safe_extract(self.submissions, root, max_member_bytes=self.opts.max_notebook_mb * MB,
                               max_total_bytes=self.opts.max_total_mb * MB, max_ratio=self.opts.max_zip_ratio)
            names = got["skipped_names"]
            self.log.info("%s: extracted %d notebooks; skipped %d members that are not notebooks (links and other "
                          "files)%s", self.submissions.name, got["extracted"], got["skipped"],
                          f", e.g. {', '.join(names[:5])}" if names else "")
        found = discover(root)
        if not found:
            raise GradeError(f"{self.submissions}: no STUDENT_ID folders found; expected STUDENT_ID/NOTEBOOK.ipynb")
        if self.only:
            missing = [sid for sid in self.only if sid not in found]
            if missing:
                raise GradeError(f"--student {', '.join(missing)}: no such folder in {self.submissions} "
                                 f"(found {len(found)} students, e.g. {', '.join(sorted(found)[:5])})")
            found = {sid: found[sid] for sid in self.only}
        return found

    def prepare_student(self, student_id: str, folder: pathlib.Path) -> Outcome:
        """The gradebook entry and the staged notebooks of one student (before anyone is graded)."""
        from nbgrader.api import Gradebook
        with Gradebook(self.course.gradebook_url) as gb:
            gb.update_or_create_student(student_id)
        for name in self.masters:  # what a previous run left for this student is replaced
            self.course.autograded(student_id, name).unlink(missing_ok=True)
        return Outcome(problems=stage(folder, list(self.masters), self.course.submitted(student_id),
                                      max_notebook_bytes=self.opts.max_notebook_mb * MB))

    def task_for(self, student_id: str, outcome: Outcome) -> StudentTask | None:
        left = len(self.masters) - len(outcome.problems)
        if not left:
            return None
        return StudentTask(str(self.work), self.assignment, student_id, timeout=self.opts.student_timeout * left)

    def finish_student(self, student_id: str, outcome: Outcome, result: TaskResult | None):
        """The student's block in grading.log and their outcome file (in student order, whatever
        order the students finished in)."""
        # The seed lets an instructor re-run a hidden test with this student's inputs
        # (DLCOURSE_GRADING_SEED=<seed>); the log stays with the instructor.
        self.log.info("== %s (grading seed %d)", student_id, grading_seed(self.secret, self.assignment, student_id))
        for name, (status, why) in outcome.problems.items():
            self.log.warning("%s/%s: %s: %s", student_id, name, status.value, why)
        if result is not None and result.state is not TaskState.GRADED:
            outcome.failure = (result.detail if result.state is TaskState.TIMED_OUT
                               else f"nbgrader autograde failed ({result.state.value}): {result.detail}")
            self.log.error("%s: %s", student_id, outcome.failure)
        # No autograde (every notebook missing or refused): no grading time for the report.
        outcome.seconds = round(result.seconds, 2) if result is not None else None
        self.timings[student_id] = outcome.seconds or 0.0
        outcome.save(outcome_path(self.course, student_id))
        self.log_student(student_id)
        self.log.info("%s graded in %.1f s", student_id, self.timings[student_id])

    def execute(self, tasks: list[StudentTask]):
        """(task, result) for every task, as each ends: on this machine's worker pool, or on the
        Dask cluster of ``--scheduler``."""
        if self.opts.scheduler:
            from .cluster import run_on_cluster
            yield from run_on_cluster(self.opts.scheduler, tasks)
            return
        with WorkerPool(self.jobs, log_dir=self.work / "logs") as pool:
            yield from pool.run(tasks)

    def grade_students(self, students: dict[str, pathlib.Path]) -> list[str]:
        order, outcomes, tasks = [], {}, {}
        for sid, folder in students.items():
            if not STUDENT_ID_RE.match(sid):
                self.log.error("skipped folder %r: not a valid student id (letters, digits, . _ @ -)", sid)
                continue
            order.append(sid)
            try:
                outcomes[sid] = self.prepare_student(sid, folder)
            except Exception as exc:  # the batch always finishes
                self.log.exception("%s: grading failed: %r", sid, exc)
                outcomes[sid] = Outcome(problems={n: (Status.ERROR, f"the grader failed on this submission ({exc!r})")
                                                  for n in self.masters})
            task = self.task_for(sid, outcomes[sid])
            if task is not None:
                tasks[sid] = task
        results: dict[str, TaskResult] = {}
        logged = 0
        failures = 0
        with progress_bar(len(order), self.opts.progress) as bar:
            def log_ready():
                nonlocal logged
                while logged < len(order) and (order[logged] not in tasks or order[logged] in results):
                    sid = order[logged]
                    self.finish_student(sid, outcomes[sid], results.get(sid))
                    logged += 1
                    bar.update(1)
            log_ready()
            for task, result in self.execute(list(tasks.values())):
                if result.state is TaskState.SANDBOX_UNAVAILABLE:  # the grader's problem: stop the batch, loudly
                    raise GradeError(f"{task.student}: the grading sandbox failed in nbgrader autograde:\n"
                                     f"{result.detail[:1500]}")
                results[task.student] = result
                failures += result.state is not TaskState.GRADED
                bar.set_postfix(failures=failures, refresh=False)
                log_ready()
        return order

    def log_student(self, student_id: str):
        from nbgrader.api import Gradebook
        from .results import student_rows
        for name in self.masters:
            path = self.course.autograded(student_id, name)
            if not path.is_file():
                continue
            found = nbformat.read(path, as_version=4).metadata.get("autograder") or {}
            for err in found.get("student_errors") or []:
                self.log.info("%s/%s: error in a student cell: %s", student_id, name, err)
            if found.get("notebook_error"):
                self.log.error("%s/%s: %s", student_id, name, found["notebook_error"])
            if found.get("scratch"):
                self.log.info("%s: removed scratch (%s, %d files)", student_id, human_size(found["scratch"]["bytes"]),
                              found["scratch"]["files"])
        with Gradebook(self.course.gradebook_url) as gb:
            for row in student_rows(self.course, gb, student_id):
                if row["status"] not in (Status.PASSED, Status.MANUAL):
                    self.log.info("%s/%s/%s: %s/%s %s: %s", student_id, row["notebook"], row["cell"], row["points"],
                                  row["max_points"], row["status"], row["reason"])

    # ---- outputs
    def feedback(self, students: list[str], rows: list[dict]):
        # All at once when everyone was graded; per student with --student (only those), or when
        # the whole run failed (one bad notebook must not cost everyone their feedback).
        whole = bool(students) and not self.only
        if not whole or self.course.nbgrader(["generate_feedback", self.assignment, "--force"], "feedback")[0] != 0:
            for sid in students:
                self.course.nbgrader(["generate_feedback", self.assignment, "--student", sid, "--force"],
                                     f"feedback-{sid}")
        all_hidden = {h for lines in self.hidden.values() for h in lines}
        try:
            allowed_scripts = template_scripts()
        except Exception as exc:  # then every feedback with a script is replaced: safe, and logged
            self.log.error("could not render the feedback template's own scripts (%r); feedback files with any "
                           "<script> will be replaced by a summary", exc)
            allowed_scripts = set()
        for sid in students:
            dest = self.out / "feedback" / sid
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for name in self.masters:
                src = self.course.feedback(sid, name)
                mine = [r for r in rows if r["student_id"] == sid and r["notebook"] == name]
                if src.is_file():
                    text = src.read_text(encoding="utf-8")
                    # FeedbackExporter ran this check on the page inside nbgrader; run again here
                    # against every notebook's hidden lines, and say it in grading.log.
                    why = page_problems(text, all_hidden, allowed_scripts)
                    if why:
                        self.log.error("%s/%s: feedback would show %s; replaced by a summary", sid, name, why)
                        text = summary_html(sid, name, mine)
                        src.write_text(text, encoding="utf-8")  # nbgrader's copy too
                else:
                    text = summary_html(sid, name, mine)
                (dest / f"{name}.html").write_text(text, encoding="utf-8")

    def run(self) -> int:
        try:
            self.check_inputs()
            self.setup_logging()
            self.log.info("grading %s from %s into %s (profile %s, sandbox %s, %d s per cell%s)", self.assignment,
                          self.submissions, self.out, self.opts.profile, "on" if self.opts.sandbox else "OFF",
                          self.opts.timeout, f", only {', '.join(self.only)}" if self.only else "")
            self.log_data_source()
            self.prepare_course()
            if self.opts.sandbox:
                self.probe_sandbox()
            else:
                self.log.warning("--no-sandbox: student code runs as %s with your permissions", os.environ.get("USER", "you"))
            students = self.collect()
            if self.opts.scheduler:
                self.log.info("%d students, on the Dask cluster at %s (1 thread per kernel)", len(students),
                              self.opts.scheduler)
            else:
                self.log.info("%d students, %d at a time (%d threads per kernel)", len(students), self.jobs,
                              self.threads)
                total = physical_memory_mb()
                if total and self.jobs * self.opts.memory_mb > total:
                    self.log.warning("%d kernels of up to %d MB each can need more than this machine's %d MB: a "
                                     "student who fills their allowance may get another's kernel killed; use fewer "
                                     "--jobs or a lower --memory", self.jobs, self.opts.memory_mb, total)
            graded = self.grade_students(students)
            rows = export(self.course, self.out)
            self.feedback(graded, rows)
            total = {}
            for r in rows:
                if r["points"] != "":
                    total[r["student_id"]] = total.get(r["student_id"], 0) + float(r["points"])
            self.log.info("done: %d students graded (%d in the gradebook); grades.csv, breakdown.csv and feedback/ in %s",
                          len(graded), len(total), self.out)
            for sid in graded:
                self.log.info("  %-24s %g", sid, total.get(sid, 0))
            try:
                self.log.info("class report: %s", write_report(self.out))
            except Exception as exc:  # noqa: BLE001  the grades are written; the page is a convenience
                self.log.error("could not write the class report (%r); run python -m autograder report %s",
                               exc, self.out)
            return 0
        finally:
            incoming = self.work / "incoming"  # the extracted zip: every notebook is in submitted/ now
            if self.submissions.is_file() and (incoming.exists() or incoming.is_symlink()):
                try:
                    size, files = remove_tree(incoming)
                    self.log.info("removed the extracted zip %s (%s, %d files)", incoming, human_size(size), files)
                except OSError as exc:
                    self.log.error("could not remove the extracted zip %s: %r", incoming, exc)
            self.close_logging()


def grade(assignment: str, submissions: pathlib.Path, out: pathlib.Path, *, source_dir=None, secret_file=None,
          options: GradeOptions | None = None, timings: dict | None = None, students=None) -> int:
    """Grade a batch (see the module docstring); ``timings`` receives seconds per student;
    ``students``: only these ids (the others keep their grades)."""
    run = GradingRun(assignment, pathlib.Path(submissions), pathlib.Path(out), source_dir=source_dir,
                     secret_file=secret_file, options=options or GradeOptions(), students=students)
    try:
        return run.run()
    finally:
        if timings is not None:
            timings.update(run.timings)


def export_results(out: pathlib.Path) -> list[dict]:
    """``python -m autograder export OUT``: rewrite OUT/grades.csv and OUT/breakdown.csv from the
    gradebook (manual grades from the Formgrader included) and the autograded notebooks."""
    out = pathlib.Path(out).resolve()
    marker = out / "_nbgrader" / "assignment.txt"
    if not marker.is_file():
        raise GradeError(f"{out} holds no graded batch (no _nbgrader/assignment.txt); give the --out of a grade run")
    return export(CourseFolder(out / "_nbgrader", marker.read_text().strip()), out)


def correct_submission(master: nbformat.NotebookNode, student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version with every answer cell filled from the master (markers removed):
    what a student who solved everything hands in. Used by tests and benchmarks."""
    import copy

    from .notebook_format import BEGIN_SOLUTION, END_SOLUTION, remove_regions

    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in master.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(student)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = remove_regions(answers[gid], BEGIN_SOLUTION, END_SOLUTION, keep_inside=True)
    return nb
