"""Running a notebook for authors and tests: one environment, one kernel client.

Grading has its own, sandboxed kernel (``kernel.py``, ``preprocessors.py``); everything else
that executes a course notebook outside nbgrader — ``verify``, the seed sweep, the test suite,
the benchmarks — builds its kernel's environment with :func:`notebook_env` and its client with
:func:`notebook_client`, so that a notebook runs the same way wherever an author runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import time

from dlcourse.checks import GRADING_SEED_VAR

from .notebook_format import ANSI_RE

# What every author-side run sets, whatever the caller's environment says.
FIXED = {"MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}


def notebook_env(profile: str = "ci", *, cache_dir: str | os.PathLike | None = None,
                 grading_seed: str | int | None = None, base: dict | None = None) -> dict[str, str]:
    """The environment of a kernel that runs a course notebook: ``base`` (default: this process's
    environment) with the profile, an off-screen Matplotlib, no bytecode files, the experiment cache
    (``cache_dir``: a fresh folder means nothing is reused) and, when given, the grading seed that
    hidden tests draw from; without one, any seed inherited from ``base`` is removed."""
    env = dict(os.environ if base is None else base)
    env.update(FIXED)
    env["DLCOURSE_PROFILE"] = profile
    if cache_dir is not None:
        env["DLCOURSE_CACHE"] = str(cache_dir)
    if grading_seed is None:
        env.pop(GRADING_SEED_VAR, None)
    else:
        env[GRADING_SEED_VAR] = str(grading_seed)
    return env


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """This process's ``os.environ`` replaced by ``env`` for the block (for nbgrader's Validator,
    whose kernels inherit it), then restored."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def notebook_client(nb, workdir: str | os.PathLike, runtime_dir: str | os.PathLike, *, timeout: int,
                    allow_errors: bool = False):
    """An ``nbclient.NotebookClient`` for ``nb`` run in ``workdir``, its kernel on IPC transport
    (as the grader's: no TCP ports, no "running over TCP without encryption" warning) with its
    connection file and sockets in ``runtime_dir``. Start the kernel with
    ``client.setup_kernel(env=notebook_env(...))``."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(workdir)}})
    client.km = client.create_kernel_manager()
    client.km.transport = "ipc"
    client.km.connection_file = str(pathlib.Path(runtime_dir) / "kernel.json")
    return client


def kernel_peak_mb(client) -> float | None:
    """The kernel process's peak resident memory so far (``VmHWM``), in MB (10**6 bytes); None
    where it cannot be read."""
    try:
        pid = client.km.provisioner.process.pid
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except (AttributeError, OSError, ValueError):
        return None
    return None


@dataclasses.dataclass
class NotebookRun:
    """One ordinary run of a notebook: every code cell, top to bottom, in one kernel."""

    seconds: float                                                # the cells' wall time
    kernel_peak_mb: float | None
    stderr_cells: list = dataclasses.field(default_factory=list)  # (cell index, what it wrote)


class CellFailed(RuntimeError):
    """A cell raised (or timed out) during :func:`execute_cells`."""

    def __init__(self, index: int, summary: str, *, timed_out: bool = False) -> None:
        super().__init__(f"cell {index}: {summary}")
        self.index, self.summary, self.timed_out = index, summary, timed_out


def error_summary(exc: BaseException) -> str:
    """The exception line of a CellExecutionError (or a timeout), without ANSI colours."""
    text = ANSI_RE.sub("", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt|Exit)\b", ln):
            return ln[:500]
    return (lines[-1] if lines else repr(exc))[:500]


def execute_cells(client, nb) -> NotebookRun:
    """Run every code cell of ``nb`` (outputs are stored in it) in ``client``'s started kernel.
    Raises :class:`CellFailed` at the first cell that raises or exceeds the client's timeout."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    start = time.perf_counter()
    stderr = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError as exc:
            raise CellFailed(index, error_summary(exc), timed_out=True) from None
        except CellExecutionError as exc:
            raise CellFailed(index, error_summary(exc)) from None
        written = "".join(o.get("text", "") for o in cell.outputs
                          if o.get("output_type") == "stream" and o.get("name") == "stderr")
        if written:
            stderr.append((index, written[:300]))
    return NotebookRun(time.perf_counter() - start, kernel_peak_mb(client), stderr)
