"""The course's notebook format, in one place: the region markers of a master, walking and
removing regions, and what kind of nbgrader cell a cell is.

Used by the build, the grading preprocessors, the feedback scrubber, the metadata rebuild,
the release and the seed sweep, so that they all agree on what a test cell or a hidden region is.

A master cell carries nbgrader metadata (``metadata.nbgrader``: ``grade_id``, ``grade``,
``solution``, ``locked``, ``points``, ``schema_version`` 3). Kinds used by the course:

- **exercise** (solution code cell): ``solution`` true, ``grade`` false; between
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` the model answer, replaced by a stub for students;
- **test cell** (graded code): ``grade`` true, ``solution`` false, locked; its visible tests,
  then optionally ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` (removed for students,
  restored at grading);
- **written answer**: markdown, ``grade`` and ``solution`` true; ``### BEGIN MARK SCHEME`` /
  ``### END MARK SCHEME`` regions hold the rubric, removed for students;
- **read-only** course cells: ``locked`` only.
"""

from __future__ import annotations

import re

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
BEGIN_MARK, END_MARK = "### BEGIN MARK SCHEME", "### END MARK SCHEME"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN, BEGIN_MARK, END_MARK)


# Terminal colour codes in tracebacks (IPython colours them; feedback, logs and reports do not).
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata (``{}`` when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id") or None


def is_graded_code(cell) -> bool:
    """A code cell that earns points when it runs (a test cell; also an autograded answer)."""
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("grade"))


def is_test_cell(cell) -> bool:
    """A graded code cell that is not a student's answer: the course's tests."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_written_answer(cell) -> bool:
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


def region_lines(source: str, begin: str, end: str):
    """Yield ``(line, inside)`` for every line of ``source`` except the ``begin``/``end`` marker lines."""
    inside = False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == begin:
            inside = True
        elif stripped == end:
            inside = False
        else:
            yield line, inside


def remove_regions(source: str, begin: str, end: str, *, keep_inside: bool) -> str:
    """Drop the marker lines ``begin``/``end``; keep or drop what lies between them."""
    kept = (line for line, inside in region_lines(source, begin, end) if keep_inside or not inside)
    return "\n".join(kept).rstrip("\n")


def strip_hidden_regions(source: str) -> str:
    """``source`` without its hidden-test regions (marker lines included)."""
    return "\n".join(line for line, inside in region_lines(source, BEGIN_HIDDEN, END_HIDDEN) if not inside)


def hidden_begin(cell) -> int | None:
    """0-based line index of the cell's ``### BEGIN HIDDEN TESTS`` marker, or None."""
    return next((i for i, line in enumerate(cell.get("source", "").split("\n")) if line.strip() == BEGIN_HIDDEN),
                None)


def python_source(source: str) -> str:
    """A cell's source as plain Python (IPython's magics and shell escapes transformed)."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def _compiles(source: str) -> bool:
    import ast

    try:
        ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return False
    return True


def split_hidden(source: str) -> tuple[str, str] | None:
    """``(visible part, hidden part)`` of a test cell, split at its first hidden-test marker
    line; ``None`` when it has none. When the marker stands inside a block (indented, or the
    parts would not compile on their own), the visible part is empty: the whole cell runs as
    hidden."""
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip() == BEGIN_HIDDEN:
            visible, hidden = "".join(lines[:i]), "".join(lines[i:])
            indented = line[:1].isspace()
            if indented or (_compiles(source) and not (_compiles(visible) and _compiles(hidden))):
                return "", source
            return visible, hidden
    return None
