"""``python -m autograder grade ... --scheduler ADDRESS``: each student's autograde as a task on a
Dask distributed cluster (``pip install -e ".[cluster]"``; imported only with ``--scheduler``).

A task is the same :class:`~autograder.workers.StudentTask` the local pool runs, and a Dask
worker runs it the same way: in a grading process of its own (a
:class:`~autograder.workers.WorkerPool` of one per worker thread, started on the first task and
kept), so the sandbox, the limits and the wall clock are those of a local run. What a worker
machine needs (autograder/README.md, "Grading on several machines"): the course installed at
the same path, bubblewrap, and the batch's OUT folder on a file system every worker shares
(the submissions, the gradebook and the autograded notebooks are read and written there).
"""

from __future__ import annotations

import threading
import uuid

from .errors import GradeError
from .workers import StudentTask, TaskResult, TaskState, WorkerPool

_local = threading.local()


def grade_task(task: StudentTask) -> TaskResult:
    """Run on a Dask worker: one student, in this worker thread's grading process."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = WorkerPool(1)
    return pool.grade_one(task)


def run_on_cluster(address: str, tasks: list[StudentTask]):
    """Submit every task to the scheduler at ``address``; yields (task, result) as each ends."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise GradeError("--scheduler needs Dask's distributed package: pip install -e \".[cluster]\"") from exc
    batch = uuid.uuid4().hex[:8]
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise GradeError(f"--scheduler {address}: no Dask scheduler answered there ({exc}); start one with "
                         "`dask scheduler` and give its address, e.g. tcp://host:8786") from exc
    with client:
        # pure=False and a key per batch: a re-grade is run again, never taken from a cache.
        futures = {client.submit(grade_task, task, key=f"autograde-{batch}-{task.student}", pure=False,
                                 retries=0): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001  a lost worker, a task that could not run
                result = TaskResult(task.student, TaskState.WORKER_DIED, f"the Dask task failed: {exc!r}")
            yield task, result
