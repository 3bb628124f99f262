"""Hidden tests run here, in the grader's trusted process, never in the student's kernel.

For each test cell with a hidden part, :class:`GradingExecute` executes only the visible part in
the sandboxed kernel. The hidden part runs in a thread of the grading process, through
:class:`HiddenRun`:

1. the grader listens on a unix socket in the kernel's runtime folder (the one folder the
   sandbox shares with the grader) and asks the kernel to run ``dlcourse.channel.serve`` on it;
2. the hidden source runs in a fresh namespace here, after the import statements of the cell's
   visible part, with the student's grading seed (``checks.use_grading_seed``) and with
   ``dlcourse.channel.student`` bound to that socket: ``student.f(x)`` is a request, its answer
   data rebuilt here (never unpickled, never executed);
3. when the hidden part ends the kernel is told it is done, and its reply is awaited as for any
   cell (the cell timeout interrupts a student function that does not return).

The verdict — passed, or the exception and its message — is computed here, so nothing the
student's code does in the kernel can change it except by returning the right data, and the
hidden source, its inputs' generator and its reference values never exist in the kernel.
:func:`lint` is the rule ``build --check`` applies to masters so that this holds: a hidden part
may use only what it imports or defines, the names the visible part imports, and ``student``.
"""

from __future__ import annotations

import ast
import builtins
import io
import itertools
import os
import pathlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from dlcourse import channel as student_channel

from .notebook_format import python_source
from dlcourse.checks import use_grading_seed

HIDDEN_FILENAME = "<hidden test>"
_numbers = itertools.count(1)


@dataclass
class HiddenVerdict:
    """What the hidden part of one test cell came to."""

    passed: bool
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)  # the student's frames (from the kernel) only
    stdout: str = ""
    lost_kernel: str = ""   # the kernel stopped answering (closed, interrupted, timed out): why
    requests: int = 0
    seconds: float = 0.0


def visible_imports(visible: str) -> str:
    """The top-level import statements of a test cell's visible part, which the hidden part may
    rely on (``import numpy as np``, ``from dlcourse import checks``)."""
    try:
        tree = ast.parse(python_source(visible))
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    return bound


def lint(visible: str, hidden: str) -> list[str]:
    """What in a hidden part would need the student's kernel on the trusted side; empty when none.

    A hidden part runs outside the kernel with only its own names, the visible part's imports and
    built-ins: any other name it reads (a student's function called directly, a variable or helper
    the visible part defined) is reported."""
    try:
        tree = ast.parse(python_source(hidden))
    except SyntaxError as error:
        return [f"the hidden part does not parse: {error.msg} (line {error.lineno})"]
    imported = _bound_names(ast.parse(visible_imports(visible)))
    allowed = _bound_names(tree) | imported | set(dir(builtins))
    problems, seen = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in allowed \
                and node.id not in seen:
            seen.add(node.id)
            problems.append(f"line {node.lineno} reads {node.id!r}, which the hidden part neither imports nor "
                            f"defines: call the student's code as student.{node.id} (from dlcourse.checks import "
                            "student), and define helpers inside the hidden part")
    return problems


def preload(sources: list[str]) -> threading.Thread | None:
    """Import the frameworks the hidden tests will use in a background thread, while the kernel
    starts and runs the notebook: the first student of a grading process would otherwise wait
    for torch and TensorFlow (several seconds) at its first hidden part."""
    wanted = [name for name in ("torch", "keras") if any(re.search(rf"\b{name}\b", s) for s in sources)]
    if not wanted:
        return None

    def work():
        from dlcourse import frameworks
        for name in wanted:
            try:
                getattr(frameworks, f"import_{name}")()
            except Exception:  # noqa: BLE001 - the hidden part will report it when it imports
                pass

    thread = threading.Thread(target=work, name="hidden-test-imports", daemon=True)
    thread.start()
    return thread


class HiddenRun:
    """One hidden part, run in a thread here while the kernel answers its requests."""

    grace = 15  # seconds past the cell timeout: the kernel's own timeout (an interrupt) comes first

    def __init__(self, folder: pathlib.Path, visible: str, hidden: str, *, seed, timeout: float,
                 max_bytes: int = student_channel.MAX_BYTES):
        self.path = pathlib.Path(folder) / f"tests-{os.getpid()}-{next(_numbers)}.sock"
        self.imports, self.hidden = visible_imports(visible), hidden
        self.seed, self.timeout, self.max_bytes = seed, timeout, max_bytes
        self.verdict: HiddenVerdict | None = None
        self._connection: socket.socket | None = None
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._thread = threading.Thread(target=self._run, name="hidden-test", daemon=True)

    def kernel_source(self) -> str:
        """What the kernel executes meanwhile: answer this run's requests until told it is done."""
        from .guard import NOT_STORED
        return f'{NOT_STORED}\n__import__("dlcourse.channel").channel.serve({str(self.path)!r})\n'

    def start(self) -> None:
        # No chmod after the bind: the folder is the kernel's too, so by then the path may be a
        # link the student's code swapped in, and a chmod would follow it to any file of the
        # grader's (as root: /etc/passwd). None is needed: bubblewrap maps the kernel's uid to the
        # grader's, which owns the socket.
        self._listener.bind(str(self.path))
        self._listener.listen(1)
        self._started = time.monotonic()
        self._deadline = self._started + self.timeout + self.grace
        self._thread.start()

    def finish(self) -> HiddenVerdict:
        """Wait for the hidden part (the kernel has replied, or died); never longer than its deadline."""
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 1)
        if self._thread.is_alive():  # stuck on our side: break its connection, and report it
            if self._connection is not None:
                self._connection.close()
            self._thread.join(5)
        verdict = self.verdict or HiddenVerdict(False, "TimeoutError", f"the hidden tests did not finish within "
                                                f"{self.timeout:.0f} s", lost_kernel="timed out")
        self._listener.close()
        self.path.unlink(missing_ok=True)
        verdict.seconds = time.monotonic() - self._started
        return verdict

    # ---- the thread
    def _run(self) -> None:
        output = io.StringIO()
        channel = None
        try:
            self._listener.settimeout(max(1.0, self._deadline - time.monotonic()))
            try:
                self._connection, _ = self._listener.accept()
            except OSError:
                self.verdict = HiddenVerdict(False, "ConnectionError", "the student's kernel never answered the "
                                             "grader's request to run the hidden tests",
                                             lost_kernel="never connected")
                return
            channel = student_channel.Channel.over_socket(self._connection, self._deadline, self.max_bytes)
            namespace = {"__name__": "__hidden_test__", "__builtins__": builtins,
                         "print": _printer(output)}
            with use_grading_seed(self.seed), student_channel.using(channel):
                exec(compile(self.imports, "<test imports>", "exec"), namespace)  # noqa: S102 - the master's code
                exec(compile(python_source(self.hidden), HIDDEN_FILENAME, "exec"), namespace)  # noqa: S102
            self.verdict = HiddenVerdict(True)
        except student_channel.ChannelError as error:
            self.verdict = HiddenVerdict(False, type(error).__name__, str(error), lost_kernel=str(error))
        except BaseException as error:  # noqa: BLE001 - a failed hidden test, whatever it raised
            self.verdict = _failure(error)
        finally:
            if self.verdict is not None:
                self.verdict.stdout = output.getvalue()
                self.verdict.requests = channel.requests if channel is not None else 0
            if channel is not None:
                channel.close()


def _printer(output: io.StringIO):
    def hidden_print(*args, **kwargs):
        kwargs.pop("file", None)
        builtins.print(*args, file=output, **kwargs)
    return hidden_print


def _failure(error: BaseException) -> HiddenVerdict:
    if isinstance(error, student_channel.StudentRaised):
        return HiddenVerdict(False, error.student_type, str(error), list(error.student_traceback))
    message = str(error)
    if not message:  # a bare assert: say where, never what (the line is hidden code)
        tb = error.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == HIDDEN_FILENAME:
                line = tb.tb_lineno
            tb = tb.tb_next
        message = f"(hidden test, line {line})" if line else ""
    return HiddenVerdict(False, type(error).__name__, message)
