"""nbgrader preprocessors used by ``python -m autograder grade``.

``GradingExecute`` replaces nbgrader's ``Execute`` in the autograde chain. Around
nbgrader's own execution it:

- injects the tamper guard (``autograder.guard``): a capture cell first, and a guard right
  before and right after every graded test cell; all three run with ``store_history=False``
  and are removed again before the notebook is saved;
- executes only the visible part of a test cell in the kernel; the hidden part (from ``### BEGIN
  HIDDEN TESTS`` on) runs in this process (``autograder/hidden.py``) and reaches the student's
  code through ``dlcourse.channel`` while the kernel answers; what the student's code printed
  meanwhile and the hidden verdict are appended to the cell's outputs and marked
  (``metadata.autograder.hidden_output_start``) so that feedback can withhold them;
- records the kernel's execute reply of every execution. **Rule: a graded test cell earns its
  points iff its visible part replied ``ok`` and printed no error output, the guards before
  and after it printed their token, and its hidden part passed here.** Output to stderr does not cost points: it is relabelled
  as stdout in graded cells, so nbgrader's own scoring (which zeroes any stderr) agrees;
- caps what one execution may print (:attr:`max_output_bytes`; the rest is replaced by a
  note) and does not abort the notebook when IOPub output lags behind the reply, so a flood
  of output costs the same on a busy machine as on an idle one;
- turns a dead kernel (``os._exit``, a crash, the CPU-time limit) or any other execution
  failure into 0 points for every graded test cell of the notebook, with the reason,
  instead of nbgrader's abort of the whole submission;
- runs the kernel in the grading sandbox (:class:`~autograder.kernel.GradingSandbox`: probed
  first, seeded per student, ``ci`` profile); a sandbox that cannot work, or a kernel that
  never answers, raises, so nbgrader fails the submission loudly instead of scoring zeros;
- writes the outcome of every graded cell (:class:`~autograder.status.Status` value and a
  reason a student can act on) into the cell's metadata (``metadata.autograder.status`` and
  ``.reason``), and the notebook-level findings into ``nb.metadata.autograder``; the
  autograded notebook carries them to ``python -m autograder export`` and the feedback.
"""

from __future__ import annotations

import os
import re
import pathlib
import secrets
import shutil

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, OverwriteCells
from traitlets import Integer

from . import guard
from .hidden import HiddenRun, preload
from .files import remove_tree
from .notebook_format import is_graded_code, split_hidden  # noqa: F401 (both re-exported)
from .notebook_format import ANSI_RE, nbgrader_meta as _nbg
from .kernel import FixedKernelSpecManager, GradingSandbox, SandboxUnavailable
from .status import Status
from dlcourse.validate import stderr_as_stdout

INJECTED_KEY = "autograder_injected"
TIMEOUT_ENAMES = {"CellTimeoutError", "TimeoutError"}
OUTPUT_NOTE = "\n[output truncated by the grader: this cell printed more than {limit}]\n"
_FRAME_RE = re.compile(r"Cell In\[\d+\], line \d+, in ([A-Za-z_]\w*)")
_DEF_RE = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.M)


def _error_output(ename: str, evalue: str, traceback: list[str] | None = None) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=traceback if traceback is not None else [f"{ename}: {evalue}"])


def _one_line(text: str, limit: int = 300) -> str:
    text = ANSI_RE.sub("", str(text)).strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def record_outcome(cell, status: Status, reason: str) -> None:
    """Store a graded cell's outcome in its metadata, where export and feedback read it."""
    cell.setdefault("metadata", {}).setdefault("autograder", {}).update(status=status.value, reason=reason)


def outcome_of(cell) -> tuple[Status, str] | None:
    """The ``(status, reason)`` that :func:`record_outcome` stored, or None."""
    found = (cell.get("metadata", {}).get("autograder") or {})
    if "status" not in found:
        return None
    return Status(found["status"]), found.get("reason", "")


def _human(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


class StudentCode:
    """Where the student's own code lives in a notebook: the function each solution cell
    defines, and the cell number JupyterLab users count (1-based, injected cells excluded)."""

    def __init__(self, cells):
        self.defined_in: dict[str, tuple[int, str | None]] = {}
        for index, cell in enumerate(cells):
            if cell.cell_type == "code" and not is_graded_code(cell):
                for name in _DEF_RE.findall(cell.source):
                    if _nbg(cell).get("solution") or name not in self.defined_in:
                        self.defined_in[name] = (index, _nbg(cell).get("grade_id") if _nbg(cell).get("solution") else None)

    def where(self, name: str) -> str | None:
        if name not in self.defined_in:
            return None
        index, grade_id = self.defined_in[name]
        return f"cell {index + 1}" + (f", exercise {grade_id}" if grade_id else "")

    def raising_function(self, traceback) -> str | None:
        """The innermost notebook function in an IPython traceback that the student wrote."""
        names = _FRAME_RE.findall(ANSI_RE.sub("", "\n".join(traceback or [])))
        for name in reversed(names):
            if name in self.defined_in:
                return name
        return None


class GradingExecute(Execute):
    """nbgrader's Execute with tamper guards, hidden parts kept out of history, crash
    containment, an output cap and a per-cell report."""

    max_output_bytes = Integer(
        2**20, help="What one execution may print (text and data, in characters); the rest "
                        "is dropped and replaced by a note.").tag(config=True)

    def preprocess(self, nb, resources, km=None):
        info = resources.get("nbgrader", {})
        name = info.get("notebook") or resources.get("unique_key") or resources.get("metadata", {}).get("name", "notebook")
        student, assignment = info.get("student") or "student", info.get("assignment") or name
        sandbox = GradingSandbox(parent=self)
        sandbox.check()  # SandboxUnavailable propagates: nbgrader fails this submission and exits non-zero
        runtime = sandbox.runtime_folder()
        settings = sandbox.settings_for(assignment, student, runtime)
        self._runtime = runtime
        self._grading_seed = sandbox.seed(assignment, student)
        preload([parts[1] for cell in nb.cells if is_graded_code(cell) and (parts := split_hidden(cell.source))])
        self._kernel_spec = sandbox.kernel_spec(settings, f"{student}-{name}")
        try:
            return self._grade(nb, resources, km, name)
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
            pathlib.Path(self._kernel_spec.argv[2]).unlink(missing_ok=True)
            if os.path.lexists(settings.workdir):  # what the student's code left behind, sized for the log
                size, files = remove_tree(settings.workdir)
                nb.metadata.setdefault("autograder", {})["scratch"] = {"bytes": size, "files": files}

    def _grade(self, nb, resources, km, name):
        # A reply is what decides; IOPub output that lags behind it (a flood) must not abort the notebook.
        self.raise_on_iopub_timeout = False
        self._replies: dict[int, dict] = {}
        self._guard_tokens: dict[int, str] = {}
        original_cells = list(nb.cells)
        cells, guards_of = [], {}
        capture = nbformat.v4.new_code_cell(guard.CAPTURE, metadata={INJECTED_KEY: "capture"})
        cells.append(capture)
        for cell in original_cells:
            if is_graded_code(cell):
                before, after = self._guard_cell(), self._guard_cell()
                guards_of[id(cell)] = (before, after)
                cells += [before, cell, after]
            else:
                cells.append(cell)
        nb.cells = cells

        notebook_error = None
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except Exception as exc:  # a dead kernel, a kernel that never started, a hung channel...
            kind = type(exc).__name__
            if not self._replies:
                # Not one reply, not even to the grader's own first cell: the kernel could not run at
                # all. That is the grader's problem, not the student's: fail loudly.
                raise SandboxUnavailable(f"the grading kernel did not start or never answered ({kind}: "
                                         f"{_one_line(exc)}); nothing was graded") from exc
            if kind == "DeadKernelError":
                notebook_error = ("the kernel died (os._exit, a crash, or the memory/CPU-time limit) "
                                  "while running the notebook")
            else:
                notebook_error = f"execution failed: {kind}: {_one_line(exc)}"
            self.log.error("%s: %s", name, notebook_error)
        finally:
            nb.cells = original_cells

        code = StudentCode(original_cells)
        errors_so_far: list[str] = []
        capture_reply = self._replies.get(id(capture))
        for index, cell in enumerate(nb.cells):
            reply = self._replies.get(id(cell))
            if not is_graded_code(cell):
                if reply and reply.get("status") == "error" and cell.cell_type == "code":
                    errors_so_far.append(self._student_error(index, reply, code))
                continue
            guards = [self._replies.get(id(g)) and (self._replies[id(g)], self._guard_tokens[id(g)])
                      for g in guards_of.get(id(cell), ())]
            status, reason = self._judge(cell, reply, guards, capture_reply, notebook_error)
            if status is Status.FAILED:
                reason = self._explain(reply, reason, code, errors_so_far)
            record_outcome(cell, status, reason)
        found = nb.metadata.setdefault("autograder", {})
        found["notebook_error"] = notebook_error
        found["student_errors"] = errors_so_far
        return nb, resources

    def _guard_cell(self):
        token = secrets.token_hex(8)
        cell = nbformat.v4.new_code_cell(guard.guard_source(token), metadata={INJECTED_KEY: "guard"})
        self._guard_tokens[id(cell)] = token
        return cell

    # ---- execution
    def preprocess_cell(self, cell, resources, index):
        self._check_assign_resources(resources)
        self._output_used, self._output_truncated = 0, False
        if cell.get("metadata", {}).get(INJECTED_KEY):
            self.execute_cell(cell, index, store_history=False)
            return cell, self.resources
        parts = split_hidden(cell.source) if is_graded_code(cell) else None
        if parts is None:
            self.execute_cell(cell, index, store_history=True)
            return cell, self.resources
        visible, hidden = parts
        source = cell.source
        visible_reply = None
        if visible.strip():
            cell.source = visible
            try:
                self.execute_cell(cell, index, store_history=True)
            finally:
                cell.source = source
            visible_reply = self._replies.get(id(cell))
        # A one-cell run shows no value for the visible part's last line, and nbgrader would read
        # a number there as partial credit: drop the split's execute_result.
        shown = [o for o in cell.outputs if o.output_type != "execute_result"] if visible.strip() else []
        if visible_reply is None or visible_reply.get("status") == "ok":
            self._run_hidden(cell, index, visible, hidden, shown, visible_reply)
        return cell, self.resources

    def _run_hidden(self, cell, index, visible, hidden, shown, visible_reply):
        """The hidden part, in this (trusted) process, while the kernel answers its requests
        (``autograder/hidden.py``). Its verdict becomes the cell's reply; what the student's code
        printed meanwhile, and the failure, are the cell's hidden outputs."""
        run = HiddenRun(self._runtime, visible, hidden, seed=self._grading_seed, timeout=self.timeout)
        run.start()
        part = nbformat.v4.new_code_cell(run.kernel_source())
        self._output_used, self._output_truncated = 0, False
        try:
            self.execute_cell(part, index, store_history=False)
        finally:
            verdict = run.finish()
            self.log.info("hidden part of %s: %s, %d requests to the kernel in %.1f s",
                          _nbg(cell).get("grade_id", f"cell {index + 1}"), "passed" if verdict.passed else "failed",
                          verdict.requests, verdict.seconds)
            self.nb.cells[index] = cell  # nbclient stores the executed cell at its index
            outputs = shown + list(part.outputs)
            if verdict.stdout:
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=verdict.stdout))
            if not verdict.passed:
                outputs.append(_error_output(verdict.ename, verdict.evalue,
                                             verdict.traceback + [f"{verdict.ename}: {verdict.evalue}"]))
            cell.outputs = outputs
            cell.setdefault("metadata", {}).setdefault("autograder", {})["hidden_output_start"] = len(shown)
        kernel_reply = self._replies.get(id(part)) or {}
        if verdict.passed:
            merged = {"status": "ok", "ename": None, "evalue": "", "traceback": None}
        elif verdict.lost_kernel and kernel_reply.get("ename") in TIMEOUT_ENAMES:
            merged = {"status": "error", "ename": kernel_reply["ename"], "evalue": kernel_reply.get("evalue", ""),
                      "traceback": kernel_reply.get("traceback")}
        else:
            merged = {"status": "error", "ename": verdict.ename, "evalue": verdict.evalue,
                      "traceback": verdict.traceback + [f"{verdict.ename}: {verdict.evalue}"]}
        # Error outputs under an ok reply (a forged reply) are counted in the visible part only: the
        # hidden part's verdict never came from the kernel.
        merged["error_outputs"] = (visible_reply or {}).get("error_outputs", 0)
        merged["stdout"] = (visible_reply or {}).get("stdout", "")
        self._replies[id(cell)] = merged

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output handler, with what one execution may print capped."""
        content = msg.get("content", {})
        if msg.get("msg_type") in ("stream", "display_data", "execute_result", "update_display_data"):
            size = len(content.get("text", "")) + sum(len(str(v)) for v in (content.get("data") or {}).values())
            before = getattr(self, "_output_used", 0)
            self._output_used = before + size
            if self._output_used > self.max_output_bytes:
                if self._output_truncated:
                    return None
                self._output_truncated = True
                note = nbformat.v4.new_output("stream", name="stdout",
                                              text=OUTPUT_NOTE.format(limit=_human(self.max_output_bytes)))
                if msg["msg_type"] == "stream" and before < self.max_output_bytes:  # keep the head
                    head = dict(msg, content=dict(content, text=content["text"][: self.max_output_bytes - before]))
                    super().output(outs, head, display_id, cell_index)
                outs.append(note)
                return None
        return super().output(outs, msg, display_id, cell_index)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        content = kwargs["execute_reply"]["content"]
        cell = kwargs["cell"]
        self._replies[id(cell)] = {
            "status": content.get("status"), "ename": content.get("ename"),
            "evalue": content.get("evalue", ""), "traceback": content.get("traceback"),
            # error outputs under an ok reply: only a forged reply (or a manual showtraceback) makes them
            "error_outputs": sum(1 for o in cell.outputs if o.output_type == "error"
                                 and content.get("status") == "ok"),
            "stdout": "".join(o.get("text", "") for o in cell.outputs
                              if o.output_type == "stream" and o.get("name") == "stdout")}

    # ---- verdicts
    def _judge(self, cell, reply, guards, capture_reply, notebook_error) -> tuple[Status, str]:
        """Set the graded cell's outputs so nbgrader scores it by the rule; return (status, reason)."""
        if notebook_error:
            cell.outputs = [_error_output("AutograderNotebookError", notebook_error + ": this notebook scores 0")]
            return (Status.KERNEL_DIED if "died" in notebook_error else Status.ERROR), notebook_error
        if capture_reply is None or capture_reply.get("status") != "ok":
            why = "the grader's setup cell failed in this kernel" + (
                f" ({capture_reply.get('ename')}: {_one_line(capture_reply.get('evalue', ''))})" if capture_reply else "")
            cell.outputs = [_error_output("AutograderNotebookError", why)]
            return Status.ERROR, why
        for when, entry in zip(("before", "after"), guards):
            why = self._guard_problem(entry)
            if why:
                why = f"tampering detected {when} this test: {why}"
                cell.outputs = [_error_output(guard.TAMPER_ENAME, why)]
                return Status.TAMPERED, why
        if len(guards) < 2:
            why = "tampering detected: a guard of this test did not run"
            cell.outputs = [_error_output(guard.TAMPER_ENAME, why)]
            return Status.TAMPERED, why
        if reply is None:
            why = "the test cell was not executed"
            cell.outputs = [_error_output("AutograderNotebookError", why)]
            return Status.ERROR, why
        if reply.get("status") == "ok" and reply.get("error_outputs"):
            why = "tampering detected: the test raised an error but its reply said ok (a forged reply)"
            cell.outputs = [_error_output(guard.TAMPER_ENAME, why)]
            return Status.TAMPERED, why
        if reply.get("status") != "ok":
            ename, evalue = reply.get("ename", "Error"), reply.get("evalue", "")
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if not errors:
                errors = [_error_output(ename, evalue, reply.get("traceback") or None)]
            cell.outputs = errors + [o for o in cell.outputs if o.output_type != "error"]
            if ename in TIMEOUT_ENAMES:
                return Status.TIMEOUT, f"the test did not finish within {self.timeout} s"
            return Status.FAILED, f"{ename}: {_one_line(evalue)}" if evalue else ename
        # Passed: stderr (warnings, debug prints) does not cost points; Validate applies the same rule.
        cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
        stderr_as_stdout(cell)
        return Status.PASSED, ""

    @staticmethod
    def _guard_problem(entry) -> str | None:
        if not entry:
            return "the guard did not run"
        reply, token = entry
        if reply.get("status") != "ok":
            return _one_line(reply.get("evalue", "")) or reply.get("ename") or "the guard failed"
        if reply.get("error_outputs") or f"{guard.TOKEN_PREFIX} {token}" not in reply.get("stdout", ""):
            return "the guard's reply was forged (or its output redirected)"
        return None

    @staticmethod
    def _student_error(index: int, reply: dict, code: StudentCode) -> str:
        ename, evalue = reply.get("ename") or "Error", _one_line(reply.get("evalue", ""), 160)
        fn = code.raising_function(reply.get("traceback"))
        where = f"cell {index + 1}" + (f" ({fn})" if fn else "")
        if ename == "NotImplementedError" and fn:
            return f"{where}: not implemented yet: {fn}"
        return f"{where}: {ename}: {evalue}" if evalue else f"{where}: {ename}"

    @staticmethod
    def _explain(reply, reason: str, code: StudentCode, earlier: list[str]) -> str:
        """A failed test's reason, pointing at the student's own code that raised when it did."""
        fn = code.raising_function(reply.get("traceback")) if reply else None
        if fn:
            where = code.where(fn)
            if reply.get("ename") == "NotImplementedError":
                return f"not implemented yet: {fn} ({where})"
            return f"{reason} (raised in {fn}, {where})"
        if earlier:
            return f"{reason} (earlier, {earlier[0]})"
        return reason

    def create_kernel_manager(self):
        """A kernel manager that can only start the sandboxed kernel of this notebook (whatever
        kernelspec the notebook names), on IPC transport (TCP cannot cross ``--unshare-net``),
        its connection file and sockets in the runtime folder the sandbox binds."""
        self.km = self.kernel_manager_class(kernel_name="python3", config=self.config,
                                            kernel_spec_manager=FixedKernelSpecManager(self._kernel_spec))
        self.km.transport = "ipc"
        self.km.connection_file = str(self._runtime / "kernel.json")  # short: socket paths allow 107 bytes
        return self.km


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, with missing graded cells put back even when the cells
    around them were deleted too (nbgrader 0.9.6 fails with a KeyError then): each missing
    graded cell goes after the nearest earlier master cell still in the notebook."""

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = source_nb.source_cells
        order = [cell.name for cell in source_cells]
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}

        def present():
            return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)
                    if c.metadata.get("nbgrader", {}).get("grade_id")}

        for grade_id in order:
            if grade_id not in grade_cells or grade_id in present():
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_id)
            source_cell = source_cells[order.index(grade_id)]
            new_cell = nbformat.from_dict(self.missing_cell_transform(source_cell, grade_cells[grade_id].max_score,
                                                   is_solution=grade_id in solution_ids))
            where = present()
            earlier = [where[g] for g in order[: order.index(grade_id)] if g in where]
            nb.cells.insert(max(earlier) + 1 if earlier else 0, new_cell)
        return nb, resources


# Feedback (hidden tests, HTML/JS) lives in autograder/feedback.py; re-exported for older imports.
from .feedback import (REDACTED, ScrubFeedback, drop_hidden_context, hidden_lines_of, redact,  # noqa: E402,F401
                       strip_hidden_regions)
