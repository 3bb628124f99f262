"""nbgrader preprocessors used by ``python -m autograder grade``.

``GradingExecute`` replaces nbgrader's ``Execute`` in the autograde chain. Around
nbgrader's own execution it:

- injects the tamper guard (``autograder.guard``): a capture cell first and a guard cell
  before every graded test cell, removed again before the notebook is saved;
- records the kernel's execute reply of every cell. **Rule: a graded test cell earns its
  points iff its execute reply is ``ok`` (no exception) and its guard found no tampering.**
  Output to stderr does not cost points: it is relabelled as stdout in graded cells, so
  nbgrader's own scoring (which zeroes any stderr) agrees with the rule;
- turns a dead kernel (``os._exit``, a crash, the CPU-time limit) or any other execution
  failure into 0 points for every graded test cell of the notebook, with the reason,
  instead of nbgrader's abort of the whole submission;
- writes the outcome of every graded cell (status and reason) to a JSON report
  (``$AUTOGRADER_REPORT_DIR/<notebook>.json``) read by the grade command.

``ScrubFeedback`` runs first in ``generate_feedback``: it removes hidden-test regions from
every cell and every output line that reproduces a hidden-test line (tracebacks and
warnings quote source lines).
"""

from __future__ import annotations

import itertools
import json
import os
import re

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Unicode

from . import guard
from .build import BEGIN_HIDDEN, END_HIDDEN, region_lines

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
INJECTED_KEY = "autograder_injected"
TIMEOUT_ENAMES = {"CellTimeoutError", "TimeoutError"}
REDACTED = "[line of a hidden test removed]"
_KERNEL_COUNT = itertools.count()


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_graded_code(cell) -> bool:
    return cell.cell_type == "code" and bool(_nbg(cell).get("grade"))


def _error_output(ename: str, evalue: str, traceback: list[str] | None = None) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=traceback if traceback is not None else [f"{ename}: {evalue}"])


def _short(text: str, limit: int = 300) -> str:
    text = ANSI_RE.sub("", str(text)).strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GradingExecute(Execute):
    """nbgrader's Execute with tamper guards, crash containment and a per-cell report."""

    def preprocess(self, nb, resources, km=None):
        name = resources.get("unique_key") or resources.get("metadata", {}).get("name", "notebook")
        self._replies: dict[int, dict] = {}
        original_cells = list(nb.cells)
        cells, guard_of = [], {}
        capture = nbformat.v4.new_code_cell(guard.CAPTURE, metadata={INJECTED_KEY: "capture"})
        cells.append(capture)
        for cell in original_cells:
            if is_graded_code(cell):
                g = nbformat.v4.new_code_cell(guard.GUARD, metadata={INJECTED_KEY: "guard"})
                guard_of[id(cell)] = g
                cells.append(g)
            cells.append(cell)
        nb.cells = cells

        notebook_error = None
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except Exception as exc:  # a dead kernel, a kernel that never started, a hung channel...
            kind = type(exc).__name__
            if kind == "DeadKernelError":
                notebook_error = ("the kernel died (os._exit, a crash, or the memory/CPU-time limit) "
                                  "while running the notebook")
            else:
                notebook_error = f"execution failed: {kind}: {_short(exc)}"
            self.log.error("%s: %s", name, notebook_error)
        finally:
            nb.cells = original_cells

        report = {"notebook": name, "notebook_error": notebook_error, "cells": {}, "student_errors": []}
        capture_reply = self._replies.get(id(capture))
        for index, cell in enumerate(nb.cells):
            reply = self._replies.get(id(cell))
            if not is_graded_code(cell):
                if reply and reply.get("status") == "error" and cell.cell_type == "code":
                    report["student_errors"].append(
                        f"cell {index}: {reply.get('ename')}: {_short(reply.get('evalue', ''), 160)}")
                continue
            grade_id = _nbg(cell).get("grade_id")
            guard_reply = self._replies.get(id(guard_of.get(id(cell))))
            status, reason = self._judge(cell, reply, guard_reply, capture_reply, notebook_error)
            report["cells"][grade_id] = {"status": status, "reason": reason}

        report_dir = os.environ.get("AUTOGRADER_REPORT_DIR")
        if report_dir:
            os.makedirs(report_dir, exist_ok=True)
            with open(os.path.join(report_dir, f"{name}.json"), "w") as fh:
                json.dump(report, fh, indent=1, sort_keys=True)
        return nb, resources

    def _judge(self, cell, reply, guard_reply, capture_reply, notebook_error):
        """Set the graded cell's outputs so nbgrader scores it by the rule; return (status, reason)."""
        if notebook_error:
            cell.outputs = [_error_output("AutograderNotebookError", notebook_error + ": this notebook scores 0")]
            return "kernel-died" if "died" in notebook_error else "error", notebook_error
        if capture_reply is None or capture_reply.get("status") != "ok":
            why = "the grader's setup cell failed in this kernel" + (
                f" ({capture_reply.get('ename')}: {_short(capture_reply.get('evalue', ''))})" if capture_reply else "")
            cell.outputs = [_error_output("AutograderNotebookError", why)]
            return "error", why
        if guard_reply is None or guard_reply.get("status") != "ok":
            detail = _short(guard_reply.get("evalue", "")) if guard_reply else "the guard did not run"
            why = f"tampering detected before this test: {detail}"
            cell.outputs = [_error_output(guard.TAMPER_ENAME, why)]
            return "tampered", why
        if reply is None:
            why = "the test cell was not executed"
            cell.outputs = [_error_output("AutograderNotebookError", why)]
            return "error", why
        if reply.get("status") != "ok":
            ename, evalue = reply.get("ename", "Error"), reply.get("evalue", "")
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if not errors:
                errors = [_error_output(ename, evalue, reply.get("traceback") or None)]
            cell.outputs = errors + [o for o in cell.outputs if o.output_type != "error"]
            if ename in TIMEOUT_ENAMES:
                return "timeout", f"the test did not finish within {self.timeout} s"
            return "failed", f"{ename}: {_short(evalue)}" if evalue else ename
        # Passed: stderr (warnings, debug prints) does not cost points.
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                out.name = "stdout"
        cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
        return "passed", ""

    def create_kernel_manager(self):
        """Kernel manager on IPC transport, its connection file and sockets in the runtime folder
        that the sandbox binds (TCP cannot cross ``--unshare-net``; /tmp is hidden from kernels)."""
        km = super().create_kernel_manager()
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR")
        km.transport = "ipc"
        if runtime:
            os.makedirs(runtime, exist_ok=True)
            # Short: unix socket paths are limited to 107 bytes.
            km.connection_file = os.path.join(runtime, f"k{os.getpid()}-{next(_KERNEL_COUNT)}.json")
        return km

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        content = kwargs["execute_reply"]["content"]
        self._replies[id(kwargs["cell"])] = {
            "status": content.get("status"), "ename": content.get("ename"),
            "evalue": content.get("evalue", ""), "traceback": content.get("traceback")}


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
