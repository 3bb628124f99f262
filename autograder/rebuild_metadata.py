"""Rebuild the nbgrader cell metadata of a submission that lost it.

nbgrader finds answers and tests by their cell metadata (``metadata.nbgrader``). A
submission without it (the course's ``solutions/`` notebook handed in, work pasted into a
fresh notebook, a notebook re-saved by another tool) scores 0 (nbgrader issues #1398 and
#1941). :func:`rebuild` matches such a notebook's cells to the master's graded cells and
copies their metadata back; :class:`RebuildMetadata` does it in ``nbgrader autograde``'s
sanitize chain, before ``OverwriteCells``.

Matching is a monotone alignment: matches keep the template's cell order, and no cell is
matched twice. A template cell matches

- a read-only (locked) cell or a test cell: by its source, compared with trailing spaces,
  blank end lines and hidden-test / mark-scheme regions removed on both sides; a test cell
  may also have lines added at its end;
- an exercise (code solution cell): by the top-level functions and classes its stub
  defines, all of which the candidate must define; by the assigned top-level names when
  the stub defines none; by position when it has no names at all;
- a written answer (markdown solution cell): by position, between the nearest matched
  cells before and after it.

Unchanged ungraded cells of the template (prose, demonstration code) count as anchors for
the positional rules, so a template with them (the released student notebook) places
written answers better than one with the graded cells only (the gradebook).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from .notebook_format import BEGIN_HIDDEN, BEGIN_MARK, END_HIDDEN, END_MARK, region_lines
from .notebook_format import nbgrader_meta as _nbgrader

# Alignment weights: a cell that kept its metadata outweighs any number of content matches;
# a graded cell outweighs any number of prose anchors.
KEPT_WEIGHT, GRADED_WEIGHT, PLAIN_WEIGHT = 10_000, 100, 1
SCHEMA_VERSION = 3

_DEF_RE = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)
_ASSIGN_RE = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)", re.M)


@dataclass
class RebuildReport:
    """What :func:`rebuild` did, as template grade_ids in template order: ``matched`` (cells
    that kept their metadata, and ``rebuilt``: cells that got it back) and ``unmatched``.
    ``needed`` is False when the notebook already had every template grade_id."""

    needed: bool
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        if not self.needed:
            return "nbgrader metadata present; nothing rebuilt"
        if not self.rebuilt:  # the metadata was there; graded cells were deleted
            return "graded cells missing from the submission: " + ", ".join(self.unmatched)
        total = len(self.matched) + len(self.unmatched)
        text = f"metadata rebuilt from the master ({len(self.matched)} of {total} cells matched"
        if self.unmatched:
            text += "; not matched: " + ", ".join(self.unmatched)
        return text + ")"

    def as_dict(self) -> dict:
        return {"matched": list(self.matched), "unmatched": list(self.unmatched),
                "rebuilt": list(self.rebuilt), "reason": self.reason}


# --------------------------------------------------------------------------- cell facts

def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def graded_id(cell) -> str | None:
    """The grade_id of a cell nbgrader tracks (answer, test, read-only or task cell), else None."""
    meta = _nbgrader(cell)
    if any(meta.get(flag) for flag in ("grade", "solution", "locked", "task")):
        return meta.get("grade_id") or None
    return None


def _kind(cell) -> str:
    """``exercise`` (code answer), ``answer`` (written answer), ``test``, ``locked`` (read-only
    or task cell) or ``plain`` (not graded)."""
    if graded_id(cell) is None:
        return "plain"
    meta = _nbgrader(cell)
    if meta.get("solution"):
        return "exercise" if cell["cell_type"] == "code" else "answer"
    return "test" if meta.get("grade") and not meta.get("task") else "locked"


def _without_regions(source: str) -> str:
    """``source`` without hidden tests and mark schemes (markers and content)."""
    for begin, end in ((BEGIN_HIDDEN, END_HIDDEN), (BEGIN_MARK, END_MARK)):
        source = "\n".join(line for line, inside in region_lines(source, begin, end) if not inside)
    return source


def normalized_lines(source: str) -> tuple[str, ...]:
    """The lines compared for locked and test cells: regions removed, trailing spaces
    stripped, blank lines at both ends dropped."""
    lines = [line.rstrip() for line in _without_regions(source).split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return tuple(lines)


def _assigned(target) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_assigned(t) for t in target.elts))
    if isinstance(target, ast.Starred):
        return _assigned(target.value)
    return set()


def top_level_names(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """``(defined, assigned)``: the functions and classes a cell defines at top level, and
    the variables it assigns there. Source that does not parse (IPython magics, a half
    written answer) is read with regular expressions on unindented lines."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError):
        return frozenset(_DEF_RE.findall(source)), frozenset(_ASSIGN_RE.findall(source))
    defined, assigned = set(), set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                assigned |= _assigned(target)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            assigned |= _assigned(node.target)
    return frozenset(defined), frozenset(assigned)


@dataclass(frozen=True)
class _Facts:
    """What matching reads of one cell, computed once."""

    cell_type: str
    lines: tuple[str, ...]
    defined: frozenset[str]
    assigned: frozenset[str]

    @classmethod
    def of(cls, cell) -> "_Facts":
        source = _source(cell)
        defined, assigned = top_level_names(source) if cell["cell_type"] == "code" else (frozenset(), frozenset())
        return cls(cell["cell_type"], normalized_lines(source), defined, assigned)


def _content_weight(kind: str, want: _Facts, have: _Facts) -> int | None:
    """Weight of matching a template cell to a candidate by content; None: no match (or
    this kind is matched by position only)."""
    if want.cell_type != have.cell_type:
        return None
    if kind == "plain":
        return PLAIN_WEIGHT if want.lines and want.lines == have.lines else None
    if kind == "locked":
        return GRADED_WEIGHT if want.lines == have.lines else None
    if kind == "test":
        # A student may have added checks of their own at the end.
        same = want.lines == have.lines or (want.lines and have.lines[: len(want.lines)] == want.lines)
        return GRADED_WEIGHT if same else None
    if kind == "exercise":
        if want.defined:
            return GRADED_WEIGHT if want.defined <= have.defined else None
        if want.assigned:
            return GRADED_WEIGHT if want.assigned <= have.assigned else None
    return None


def _by_position(kind: str, want: _Facts) -> bool:
    return kind == "answer" or (kind == "exercise" and not want.defined and not want.assigned)


# --------------------------------------------------------------------------- alignment

def _align(weights: dict[tuple[int, int], int], n_template: int, n_cells: int) -> dict[int, int]:
    """Monotone alignment of template cells to notebook cells with the largest total weight
    (``weights[(template index, cell index)]``); returns template index -> cell index.
    Among equal alignments it takes the later cell, the definition that is in force when
    the tests run, over an earlier draft of it."""
    score = [[0] * (n_cells + 1) for _ in range(n_template + 1)]
    for i in range(1, n_template + 1):
        for j in range(1, n_cells + 1):
            best = max(score[i - 1][j], score[i][j - 1])
            w = weights.get((i - 1, j - 1))
            if w is not None:
                best = max(best, score[i - 1][j - 1] + w)
            score[i][j] = best
    pairs, i, j = {}, n_template, n_cells
    while i and j:
        w = weights.get((i - 1, j - 1))
        if w is not None and score[i][j] == score[i - 1][j - 1] + w:
            pairs[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif score[i][j] == score[i][j - 1]:
            j -= 1
        else:
            i -= 1
    return pairs


def _place_by_position(i: int, kind: str, template_type: str, pairs: dict[int, int],
                       free: list[int], cells) -> int | None:
    """The cell for template cell ``i`` among the free cells between its matched neighbours:
    the only code cell there for an exercise; for a written answer, the markdown cell whose
    distance from the previous match is closest to the template's (the one right after the
    question, usually)."""
    before = [k for k in pairs if k < i]
    after = [k for k in pairs if k > i]
    prev_t = max(before) if before else -1
    prev_n = pairs[prev_t] if before else -1
    next_n = pairs[min(after)] if after else len(cells)
    options = [j for j in free if prev_n < j < next_n and cells[j]["cell_type"] == template_type]
    if kind == "exercise":
        return options[0] if len(options) == 1 else None
    if not options:
        return None
    offset = i - prev_t
    return min(options, key=lambda j: (abs((j - prev_n) - offset), j))


def _copy_metadata(template_cell, cell) -> None:
    meta = nbformat.from_dict(copy.deepcopy(dict(template_cell["metadata"]["nbgrader"])))
    cell.setdefault("metadata", nbformat.NotebookNode())["nbgrader"] = meta
    for key in ("deletable", "editable"):  # LockCells' flags, as in the released notebook
        if key in template_cell["metadata"]:
            cell["metadata"][key] = template_cell["metadata"][key]


def rebuild(notebook: NotebookNode, template: NotebookNode) -> RebuildReport:
    """Give the cells of ``notebook`` the nbgrader metadata of the ``template`` cells they
    correspond to (see the module docstring for the rules); changes ``notebook`` in place.

    ``template`` is the student version of the master: nbgrader metadata on its graded
    cells (``notebooks/NN/NN.ipynb``, nbgrader's release folder, or
    :func:`template_from_gradebook`). Cells of ``notebook`` that carry a template grade_id
    are kept as they are; only cells without one are candidates. A template cell that
    cannot be matched is left out (``OverwriteCells`` re-adds graded cells; that exercise
    alone scores 0).
    """
    tcells, cells = template.cells, notebook.cells
    wanted = [graded_id(c) for c in tcells]  # None for ungraded cells
    wanted_ids = [gid for gid in wanted if gid]
    present: dict[str, int] = {}
    for j, cell in enumerate(cells):
        gid = graded_id(cell)
        if gid in wanted_ids and gid not in present:
            present[gid] = j
    if all(gid in present for gid in wanted_ids):
        return RebuildReport(needed=False, matched=wanted_ids)

    kinds = [_kind(c) for c in tcells]
    tfacts = [_Facts.of(c) for c in tcells]
    free = [j for j, cell in enumerate(cells) if graded_id(cell) not in wanted_ids]
    cfacts = {j: _Facts.of(cells[j]) for j in free}
    weights: dict[tuple[int, int], int] = {}
    for i, (gid, kind, want) in enumerate(zip(wanted, kinds, tfacts)):
        if gid in present:
            weights[(i, present[gid])] = KEPT_WEIGHT
            continue
        for j in free:
            w = _content_weight(kind, want, cfacts[j])
            if w is not None:
                weights[(i, j)] = w
    pairs = _align(weights, len(tcells), len(cells))

    used = set(pairs.values())
    for i, (gid, kind) in enumerate(zip(wanted, kinds)):
        if gid and gid not in present and i not in pairs and _by_position(kind, tfacts[i]):
            j = _place_by_position(i, kind, tcells[i]["cell_type"], pairs,
                                   [j for j in free if j not in used], cells)
            if j is not None:
                pairs[i] = j
                used.add(j)

    for i, j in pairs.items():
        if wanted[i] and wanted[i] not in present:
            _copy_metadata(tcells[i], cells[j])
    matched = [gid for i, gid in enumerate(wanted) if gid and (gid in present or i in pairs)]
    unmatched = [gid for gid in wanted_ids if gid not in matched]
    rebuilt = [gid for gid in matched if gid not in present]
    return RebuildReport(needed=True, matched=matched, unmatched=unmatched, rebuilt=rebuilt)


# --------------------------------------------------------------------------- nbgrader

def _source_cells_in_order(gb, notebook) -> list:
    """The notebook's source cells in notebook order. nbgrader stores no cell position;
    SaveCells inserts the rows in notebook order, and SQLite's rowid keeps that order (an
    unordered ``notebook.source_cells``, which nbgrader's own ``add_missing_grade_cells``
    relies on, returns the same in practice). Other databases: as the relationship returns them."""
    from nbgrader.api import SourceCell
    from sqlalchemy import literal_column

    if gb.db.get_bind().dialect.name != "sqlite":
        return list(notebook.source_cells)
    return (gb.db.query(SourceCell).filter(SourceCell.notebook_id == notebook.id)
            .order_by(literal_column("source_cell.rowid")).all())


def template_from_gradebook(gb, notebook_id: str, assignment_id: str) -> NotebookNode:
    """The graded cells of a notebook as nbgrader's gradebook stores them, as a template for
    :func:`rebuild`: one cell per source cell, with the nbgrader metadata of a released
    notebook (schema 3, grade/solution/locked/task flags, points, checksum, cell_type) and
    LockCells' deletable/editable flags; the cell id is the grade_id.

    SaveCells runs after ClearSolutions and before ClearHiddenTests/ClearMarkScheme in
    ``generate_assignment``: an exercise's stored source is its stub, a test cell's still
    holds its hidden tests. Those regions are removed here, as in the released notebook;
    the checksum is the gradebook's (computed with them), which is what OverwriteCells
    writes anyway. Ungraded cells (prose, demonstrations) are not in the gradebook.
    """
    notebook = gb.find_notebook(notebook_id, assignment_id)
    grade_cells = {c.name: c for c in notebook.grade_cells}
    task_cells = {c.name: c for c in notebook.task_cells}
    solution_ids = {c.name for c in notebook.solution_cells}
    cells = []
    for sc in _source_cells_in_order(gb, notebook):
        meta = {"grade": sc.name in grade_cells, "grade_id": sc.name, "locked": bool(sc.locked),
                "solution": sc.name in solution_ids, "schema_version": SCHEMA_VERSION,
                "cell_type": sc.cell_type}
        if sc.checksum:
            meta["checksum"] = sc.checksum
        if sc.name in grade_cells:
            meta["points"] = grade_cells[sc.name].max_score
        if sc.name in task_cells:
            meta.update(task=True, grade=False, points=task_cells[sc.name].max_score)
        lock = {"deletable": False}
        if not meta["solution"] and (meta["grade"] or meta["locked"]):
            lock["editable"] = False
        source = _without_regions(sc.source or "").rstrip("\n")
        new_cell = nbformat.v4.new_code_cell if sc.cell_type == "code" else nbformat.v4.new_markdown_cell
        cells.append(new_cell(source, metadata={**lock, "nbgrader": meta}, id=sc.name[:64]))
    kernelspec = json.loads(notebook.kernelspec) if notebook.kernelspec else {}
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec} if kernelspec else {})


class RebuildMetadata(NbGraderPreprocessor):
    """Autograde sanitize step, before OverwriteCells: a submitted notebook missing graded
    cells' metadata gets it rebuilt by :func:`rebuild`.

    The template is the released student notebook (``release/<assignment>/<notebook>.ipynb``
    of the course directory) when it exists and has the gradebook's graded cells, in the
    gradebook's order: its prose anchors written answers; else :func:`template_from_gradebook`.
    When the notebook lacked a graded cell, ``nb.metadata.autograder.metadata_rebuilt`` holds
    :meth:`RebuildReport.as_dict` (matched, unmatched and rebuilt grade_ids, and the reason,
    which is also logged as a warning).
    """

    use_release = Bool(True, help="Use the released student notebook as the template when it "
                                  "matches the gradebook").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        notebook_id, assignment_id = info["notebook"], info["assignment"]
        with Gradebook(info["db_url"]) as gb:
            template = template_from_gradebook(gb, notebook_id, assignment_id)
        template = self._release_template(notebook_id, assignment_id, template) or template
        report = rebuild(nb, template)
        if report.needed:
            nb.metadata.setdefault("autograder", {})["metadata_rebuilt"] = report.as_dict()
            self.log.warning("%s: %s", notebook_id, report.reason)
        return nb, resources

    def _release_template(self, notebook_id: str, assignment_id: str, stored: NotebookNode):
        if not self.use_release:
            return None
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(parent=self)
        path = os.path.join(coursedir.format_path(coursedir.release_directory, ".", assignment_id),
                            f"{notebook_id}.ipynb")
        if not os.path.isfile(path):
            return None
        try:
            release = nbformat.read(path, as_version=4)
        except Exception as exc:  # an unreadable release: the gradebook still serves
            self.log.info("%s: cannot read %s (%s); using the gradebook", notebook_id, path, exc)
            return None
        ids = [graded_id(c) for c in release.cells if graded_id(c)]
        if ids != [graded_id(c) for c in stored.cells]:
            self.log.info("%s: %s does not match the gradebook; using the gradebook", notebook_id, path)
            return None
        return release
