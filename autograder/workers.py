"""Students graded concurrently: worker processes that run nbgrader's own Autograde in-process.

``python -m autograder grade ... --jobs N`` starts N worker processes (:class:`WorkerPool`);
each imports nbgrader once and then grades one student at a time with nbgrader's
``Autograde`` converter, as ``nbgrader autograde ASSIGNMENT --student ID --force`` would, in
the batch's course folder (so its config, gradebook and sandbox). Why a pool of long-lived
workers and not one ``nbgrader`` command per student: starting Python and importing nbgrader
costs 3-4 s, and the sandbox probe runs once per process, so a worker pays both once.

Isolation is unchanged: every student's notebook runs in its own sandboxed kernel
(``GradingSandbox``) with its own limits. A worker that takes longer than the student's wall
clock is killed together with its kernels (bubblewrap's ``--die-with-parent``) and replaced;
a worker that dies is replaced; either way only that student is affected. The gradebook is
SQLite, which serialises the short writes nbgrader makes (the course folder's database URL
waits up to a minute for a lock).

``--scheduler ADDRESS`` sends the same tasks to a Dask cluster (``autograder/cluster.py``);
each Dask worker grades through a :class:`WorkerPool` of one.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

TASKS_PER_WORKER = 50  # then the worker is replaced: whatever a long run accumulates is let go


class TaskState(enum.Enum):
    """How one student's autograde ended (the grades themselves are in the gradebook)."""

    GRADED = "graded"                            # nbgrader's Autograde finished
    FAILED = "failed"                            # Autograde reported an error for this student
    TIMED_OUT = "timed out"                      # over the student's wall clock; worker killed
    WORKER_DIED = "worker died"                  # the grading process itself ended
    SANDBOX_UNAVAILABLE = "sandbox unavailable"  # the grader's problem: the batch must stop


@dataclasses.dataclass(frozen=True)
class StudentTask:
    course_root: str   # the batch's nbgrader course folder (OUT/_nbgrader)
    assignment: str
    student: str
    timeout: float     # wall-clock seconds for this student's whole autograde


@dataclasses.dataclass
class TaskResult:
    student: str
    state: TaskState
    detail: str = ""      # what went wrong, in a line or a few (empty when graded)
    seconds: float = 0.0  # wall time of the autograde


def thread_limits(jobs: int, cores: int | None = None) -> int:
    """Threads each kernel may use so that ``jobs`` kernels side by side do not oversubscribe
    the cores (torch, TensorFlow and OpenMP/BLAS read it from the kernel's environment)."""
    cores = cores or usable_cores()
    return max(1, cores // max(1, jobs))


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def physical_memory_mb() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return None


def default_jobs(memory_mb: int) -> int:
    """One student per core, but never more kernels than fit in memory at their limit: a
    student who fills their whole allowance must not push another's kernel out."""
    jobs = usable_cores()
    total = physical_memory_mb()
    if total and memory_mb > 0:
        jobs = min(jobs, max(1, total // memory_mb))
    return jobs


# ---- inside a worker process

def autograde(task: StudentTask) -> TaskResult:
    """``nbgrader autograde ASSIGNMENT --student ID --force`` in this process, its log in the
    course folder's ``logs/autograde-ID.log``."""
    from nbgrader.converters import Autograde, NbGraderException
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from .kernel import SandboxUnavailable

    root = pathlib.Path(task.course_root)
    log = logging.getLogger(f"autograder.worker.{os.getpid()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(root / "logs" / f"autograde-{task.student}.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s [AutogradeApp | %(levelname)s] %(message)s"))
    log.addHandler(handler)
    started = time.monotonic()
    SandboxUnavailable.raised.clear()
    try:
        # Read every task: the batch rewrites its config on each run.
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        coursedir = CourseDirectory(config=config, log=log)
        coursedir.root = str(root)
        coursedir.assignment_id, coursedir.student_id = task.assignment, task.student
        converter = Autograde(coursedir=coursedir, config=config, log=log)
        converter.force = True
        converter.create_student = True
        try:
            converter.start()
            state, detail = TaskState.GRADED, ""
        except NbGraderException as exc:
            state, detail = TaskState.FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001  the batch always finishes
            log.error("autograde failed:\n%s", traceback.format_exc())
            state, detail = TaskState.FAILED, f"{type(exc).__name__}: {exc}"
        if SandboxUnavailable.raised:
            state, detail = TaskState.SANDBOX_UNAVAILABLE, str(SandboxUnavailable.raised[-1])
        elif state is TaskState.FAILED:
            text = (root / "logs" / f"autograde-{task.student}.log").read_text(errors="replace")
            errors = [line for line in text.splitlines() if "| ERROR]" in line or "Error" in line][-3:]
            detail = " | ".join(errors)[-400:] or detail
    finally:
        handler.close()
        log.removeHandler(handler)
    return TaskResult(task.student, state, detail, time.monotonic() - started)


def serve(fd: int) -> None:
    """The worker's loop (``python -c "from autograder.workers import serve; serve(FD)"``): tasks
    in and results out over the socket ``FD``, until the parent sends None or goes away."""
    from multiprocessing.connection import Connection
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn = Connection(fd)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            result = autograde(task)
        except BaseException as exc:  # noqa: BLE001  report, never hang the parent
            result = TaskResult(task.student, TaskState.FAILED, f"{type(exc).__name__}: {exc}")
        conn.send(result)


# ---- the parent side

class _Worker:
    """One worker process (a plain subprocess, so that a daemonic Dask worker may start one too),
    in its own session: killing its process group kills what it started."""

    def __init__(self, log_dir: str | None):
        from multiprocessing.connection import Connection

        from . import REPO_ROOT
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        # nbgrader runs `alembic` from PATH, which an un-activated virtual environment lacks.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable)] + [p for p in [env.get("PATH")] if p])
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        # Stray output (warnings, a library's prints) into a file, not the instructor's terminal.
        sink = open(os.path.join(log_dir, "workers.log"), "a") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", f"from autograder.workers import serve; serve({theirs.fileno()})"],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        finally:
            theirs.close()
            if sink is not subprocess.DEVNULL:
                sink.close()
        self.conn = Connection(ours.detach())
        self.tasks = 0

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.conn.close()

    def stop(self):
        try:
            self.conn.send(None)
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class WorkerPool:
    """``jobs`` worker processes; :meth:`run` grades tasks and yields each result as it ends
    (not in task order: the caller orders what it writes)."""

    def __init__(self, jobs: int, log_dir: pathlib.Path | None = None):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.log_dir = str(log_dir) if log_dir else None
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()

    def _worker(self) -> _Worker:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        worker = worker or _Worker(self.log_dir)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _release(self, worker: _Worker):
        with self._lock:
            self._busy.discard(worker)
        worker.tasks += 1
        if worker.tasks >= TASKS_PER_WORKER:
            worker.stop()
            return
        with self._lock:
            self._idle.append(worker)

    def grade_one(self, task: StudentTask) -> TaskResult:
        """One task on an idle (or new) worker; blocks until it ends or times out."""
        worker = self._worker()
        started = time.monotonic()
        try:
            worker.conn.send(task)
            if not worker.conn.poll(task.timeout):
                self._discard(worker)
                return TaskResult(task.student, TaskState.TIMED_OUT,
                                  f"grading this student took longer than {task.timeout:g} s and was stopped",
                                  time.monotonic() - started)
            result = worker.conn.recv()
        except (EOFError, OSError):
            self._discard(worker)
            code = worker.process.returncode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            return TaskResult(task.student, TaskState.WORKER_DIED, f"the grading process ended ({how})",
                              time.monotonic() - started)
        self._release(worker)
        return result

    def _discard(self, worker: _Worker):
        with self._lock:
            self._busy.discard(worker)
        worker.kill()

    def run(self, tasks: list[StudentTask]):
        """Grade ``tasks`` with up to ``jobs`` at a time; yields (task, result) as each ends."""
        import queue
        done: queue.Queue = queue.Queue()
        pending = list(tasks)
        stop = threading.Event()

        def feed():
            while not stop.is_set():
                with self._lock:
                    if not pending:
                        return
                    task = pending.pop(0)
                try:
                    done.put((task, self.grade_one(task)))
                except BaseException as exc:  # noqa: BLE001
                    done.put((task, TaskResult(task.student, TaskState.FAILED, f"{type(exc).__name__}: {exc}")))

        threads = [threading.Thread(target=feed, daemon=True) for _ in range(min(self.jobs, len(tasks)))]
        for t in threads:
            t.start()
        finished = False
        try:
            for _ in range(len(tasks)):
                yield done.get()
            finished = True
        finally:
            stop.set()
            if not finished:  # the caller stopped early (the sandbox failed, Ctrl-C): stop the rest now
                self.abort()
            for t in threads:
                t.join()

    def abort(self):
        """Kill the workers busy now (with their kernels); their tasks end as WORKER_DIED."""
        with self._lock:
            busy = list(self._busy)
        for worker in busy:
            worker.kill()

    def close(self):
        self.abort()
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            worker.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
