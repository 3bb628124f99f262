"""Rebuilding nbgrader metadata in submissions that lost it (autograder/rebuild_metadata.py).

Fast: no notebook is executed. The committed solutions/ notebook of every topic has no
nbgrader metadata and keeps the master's cell ids, as does the student version in
notebooks/, so a cell id says where each grade_id belongs. One test builds a real gradebook
with nbgrader's generate_assignment (slow)."""

from __future__ import annotations

import copy
import os
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder import build
from autograder.rebuild_metadata import (RebuildMetadata, RebuildReport, graded_id, rebuild,
                                         template_from_gradebook, top_level_names)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOPICS = [p.parent.name for p in build.find_masters(ROOT / "source")]
GB_TOPIC = "00_getting_started"


def load(kind: str, topic: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / kind / topic / f"{topic}.ipynb", as_version=4)


def graded(template) -> list:
    return [c for c in template.cells if graded_id(c)]


def assert_lands(nb, template, where: dict[str, int], expected_missing=()):
    """Every template grade_id except ``expected_missing`` sits on cell ``where[grade_id]``
    of ``nb`` with the template's nbgrader metadata, and no other cell has nbgrader metadata."""
    carrying = {graded_id(c): i for i, c in enumerate(nb.cells) if graded_id(c)}
    expected = {graded_id(c): c for c in graded(template) if graded_id(c) not in expected_missing}
    assert set(carrying) == set(expected)
    for gid, tcell in expected.items():
        assert carrying[gid] == where[gid], gid
        assert nb.cells[carrying[gid]].metadata["nbgrader"] == tcell.metadata["nbgrader"], gid
    assert not [i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata and i not in carrying.values()]


def positions_by_id(nb, template) -> dict[str, int]:
    index = {c.id: i for i, c in enumerate(nb.cells)}
    return {graded_id(c): index[c.id] for c in graded(template) if c.id in index}


def fresh_copy(nb, *, insert_after: int | None = None, scratch_source: str = "x = 1\nprint(x)"):
    """``nb`` pasted into a new notebook: new cell ids, no metadata, outputs on code cells,
    a scratch code cell after cell ``insert_after``. Returns (copy, origin) with
    origin[j] = id of the original cell behind cell j (None for the scratch cell)."""
    fresh, origin = nbformat.v4.new_notebook(), []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source, execution_count=i + 1,
                                            outputs=[nbformat.v4.new_output("stream", text=f"out {i}\n")])
        else:
            new = nbformat.v4.new_markdown_cell(cell.source)
        fresh.cells.append(new)
        origin.append(cell.id)
        if i == insert_after:
            fresh.cells.append(nbformat.v4.new_code_cell(scratch_source))
            origin.append(None)
    return fresh, origin


def positions_by_origin(origin, template) -> dict[str, int]:
    return {graded_id(c): origin.index(c.id) for c in graded(template) if c.id in origin}


def first_index(template, kind_test) -> int:
    return next(i for i, c in enumerate(template.cells) if graded_id(c) and kind_test(c.metadata.nbgrader, c))


def is_exercise(meta, cell):
    return meta.get("solution") and cell.cell_type == "code"


def is_test(meta, cell):
    return meta.get("grade") and not meta.get("solution")


# --------------------------------------------------------------------------- every topic

def test_every_topic_is_covered():
    assert len(TOPICS) == 11


@pytest.mark.parametrize("topic", TOPICS)
def test_solution_notebook_gets_the_templates_metadata(topic):
    solution, template = load("solutions", topic), load("notebooks", topic)
    assert [c.id for c in solution.cells] == [c.id for c in template.cells]  # the build keeps ids
    assert not any("nbgrader" in c.metadata for c in solution.cells)
    report = rebuild(solution, template)
    ids = [graded_id(c) for c in graded(template)]
    assert report.needed and report.matched == ids == report.rebuilt and report.unmatched == []
    assert report.reason == f"metadata rebuilt from the master ({len(ids)} of {len(ids)} cells matched)"
    assert_lands(solution, template, positions_by_id(solution, template))
    by_id = {c.id: c for c in solution.cells}
    for tcell in graded(template):  # LockCells' flags too
        for key in ("deletable", "editable"):
            assert by_id[tcell.id].metadata.get(key) == tcell.metadata.get(key)
    nbformat.validate(solution)


@pytest.mark.parametrize("topic", TOPICS)
def test_pasted_into_a_fresh_notebook(topic):
    template = load("notebooks", topic)
    after_first_test = first_index(template, is_test)
    pasted, origin = fresh_copy(load("solutions", topic), insert_after=after_first_test)
    report = rebuild(pasted, template)
    assert report.unmatched == []
    assert_lands(pasted, template, positions_by_origin(origin, template))


@pytest.mark.parametrize("topic", TOPICS)
def test_deleted_exercise_is_the_only_one_unmatched(topic):
    template = load("notebooks", topic)
    gone = first_index(template, is_exercise)
    solution = load("solutions", topic)
    del solution.cells[gone]
    report = rebuild(solution, template)
    assert report.unmatched == [graded_id(template.cells[gone])]
    assert "not matched: " + graded_id(template.cells[gone]) in report.reason
    assert_lands(solution, template, positions_by_id(solution, template), expected_missing=report.unmatched)


@pytest.mark.parametrize("topic", TOPICS)
def test_deleted_written_answer_is_the_only_one_unmatched(topic):
    template = load("notebooks", topic)
    gone = first_index(template, lambda meta, cell: meta.get("solution") and cell.cell_type == "markdown")
    solution = load("solutions", topic)
    del solution.cells[gone]
    report = rebuild(solution, template)
    assert report.unmatched == [graded_id(template.cells[gone])]
    assert_lands(solution, template, positions_by_id(solution, template), expected_missing=report.unmatched)


@pytest.mark.parametrize("topic", TOPICS)
def test_swapped_exercises_are_never_matched_to_the_wrong_cell(topic):
    template = load("notebooks", topic)
    exercises = [i for i, c in enumerate(template.cells) if graded_id(c) and is_exercise(c.metadata.nbgrader, c)]
    a, b = exercises[0], exercises[1]
    solution = load("solutions", topic)
    solution.cells[a], solution.cells[b] = solution.cells[b], solution.cells[a]
    report = rebuild(solution, template)
    swapped = {graded_id(template.cells[a]), graded_id(template.cells[b])}
    assert set(report.unmatched) <= swapped
    assert_lands(solution, template, positions_by_id(solution, template), expected_missing=report.unmatched)


@pytest.mark.parametrize("topic", TOPICS)
def test_exercise_swapped_with_its_test_loses_at_most_one(topic):
    template = load("notebooks", topic)
    a = first_index(template, is_exercise)
    b = a + 1
    assert is_test(template.cells[b].metadata.get("nbgrader", {}), template.cells[b])
    solution = load("solutions", topic)
    solution.cells[a], solution.cells[b] = solution.cells[b], solution.cells[a]
    report = rebuild(solution, template)
    assert len(report.unmatched) <= 1
    assert set(report.unmatched) <= {graded_id(template.cells[a]), graded_id(template.cells[b])}
    assert_lands(solution, template, positions_by_id(solution, template), expected_missing=report.unmatched)


@pytest.mark.parametrize("topic", TOPICS)
def test_notebook_with_metadata_is_left_alone(topic):
    template = load("notebooks", topic)
    student = copy.deepcopy(template)
    report = rebuild(student, template)
    assert not report.needed and report.unmatched == []
    assert report.matched == [graded_id(c) for c in graded(template)]
    assert student == template
    # and a rebuilt notebook needs nothing the second time
    solution = load("solutions", topic)
    rebuild(solution, template)
    again = copy.deepcopy(solution)
    assert not rebuild(again, template).needed and again == solution


# --------------------------------------------------------------------------- rules, on one topic

def test_cells_that_kept_their_metadata_stay_and_the_rest_is_matched():
    template, solution = load("notebooks", GB_TOPIC), load("solutions", GB_TOPIC)
    where = positions_by_id(solution, template)
    first = graded(template)[0]
    solution.cells[where[graded_id(first)]].metadata["nbgrader"] = copy.deepcopy(first.metadata["nbgrader"])
    report = rebuild(solution, template)
    assert report.needed and report.unmatched == []
    assert_lands(solution, template, where)


def test_draft_of_an_exercise_before_it_does_not_take_the_match():
    template = load("notebooks", GB_TOPIC)
    exercise = first_index(template, is_exercise)
    names, _ = top_level_names(template.cells[exercise].source)
    draft = f"def {sorted(names)[0]}(*args):\n    return None  # first try\n"
    pasted, origin = fresh_copy(load("solutions", GB_TOPIC), insert_after=exercise - 1, scratch_source=draft)
    assert rebuild(pasted, template).unmatched == []
    assert_lands(pasted, template, positions_by_origin(origin, template))


def test_test_cell_with_added_lines_or_hidden_tests_still_matches():
    template = load("notebooks", GB_TOPIC)
    master = nbformat.read(ROOT / "source" / GB_TOPIC / f"{GB_TOPIC}.ipynb", as_version=4)
    tests = [i for i, c in enumerate(template.cells) if graded_id(c) and is_test(c.metadata.nbgrader, c)]
    solution = load("solutions", GB_TOPIC)
    solution.cells[tests[0]].source += "\n\n# my own check\nprint('ok')  \n"
    assert build.BEGIN_HIDDEN in master.cells[tests[1]].source
    solution.cells[tests[1]].source = master.cells[tests[1]].source  # a master handed in
    report = rebuild(solution, template)
    assert report.unmatched == []
    assert_lands(solution, template, positions_by_id(solution, template))


def test_edited_test_cell_is_not_matched():
    template = load("notebooks", GB_TOPIC)
    test = first_index(template, is_test)
    solution = load("solutions", GB_TOPIC)
    solution.cells[test].source = solution.cells[test].source.replace("checks.", "checks .", 1)
    report = rebuild(solution, template)
    assert report.unmatched == [graded_id(template.cells[test])]
    assert_lands(solution, template, positions_by_id(solution, template), expected_missing=report.unmatched)


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def _graded(cell, gid, **flags):
    meta = {"grade": False, "locked": False, "solution": False, "schema_version": 3,
            "grade_id": gid, "cell_type": cell.cell_type, **flags}
    cell.metadata["nbgrader"] = meta
    return cell


def _template(stub: str):
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return _nb(md("## Exercise"),
               _graded(code(stub), "ex", solution=True),
               _graded(code("assert check()"), "test", grade=True, locked=True, points=1),
               md("## Question"),
               _graded(md("YOUR ANSWER HERE"), "answer", grade=True, solution=True, points=2),
               md("## Summary"))


def _submission(answer: str, *extra_code: str):
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return _nb(md("## Exercise"), *(code(s) for s in extra_code), code(answer),
               code("assert check()"), md("## Question"), md("My answer."), md("## Summary"))


@pytest.mark.parametrize("stub, answer", [
    ("LEARNING_RATE = None  # YOUR CODE HERE", "LEARNING_RATE: float = 0.1"),    # assigned names
    ("# YOUR CODE HERE\nraise NotImplementedError()", "print('done')"),          # position
    ("%matplotlib inline\ndef check():\n    raise NotImplementedError()",        # magics: regex
     "%time\ndef check(): return True"),
])
def test_exercise_matching_without_function_names(stub, answer):
    template, nb = _template(stub), _submission(answer)
    report = rebuild(nb, template)
    assert report.matched == ["ex", "test", "answer"] and report.unmatched == []
    assert [graded_id(c) for c in nb.cells] == [None, "ex", "test", None, "answer", None]


def test_exercise_by_position_needs_a_single_candidate():
    template = _template("# YOUR CODE HERE")
    nb = _submission("print('done')", "print('scratch')")
    report = rebuild(nb, template)
    assert report.unmatched == ["ex"]
    assert report.reason == "metadata rebuilt from the master (2 of 3 cells matched; not matched: ex)"


def test_report_without_rebuild():
    report = RebuildReport(needed=False, matched=["a"])
    assert report.as_dict() == {"matched": ["a"], "unmatched": [], "rebuilt": [], "reason": report.reason}
    assert "nothing rebuilt" in report.reason


def test_notebook_with_metadata_and_a_deleted_graded_cell():
    template = load("notebooks", GB_TOPIC)
    student = copy.deepcopy(template)
    gone = first_index(template, is_exercise)
    del student.cells[gone]
    before = copy.deepcopy(student)
    report = rebuild(student, template)
    assert report.needed and report.rebuilt == [] and report.unmatched == [graded_id(template.cells[gone])]
    assert report.reason == "graded cells missing from the submission: " + graded_id(template.cells[gone])
    assert student == before


# --------------------------------------------------------------------------- nbgrader gradebook

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with one master, after ``nbgrader generate_assignment`` (gradebook.db
    and release/)."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "source" / GB_TOPIC, root / "source" / GB_TOPIC)
    (root / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(root)!r}\n")
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", GB_TOPIC, "--force"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _resources(root):
    return {"nbgrader": {"notebook": GB_TOPIC, "assignment": GB_TOPIC, "student": "s1",
                         "db_url": f"sqlite:///{root / 'gradebook.db'}"}}


@pytest.mark.slow
def test_template_from_gradebook_matches_the_solution_notebook(course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        stored = template_from_gradebook(gb, GB_TOPIC, GB_TOPIC)
    nbformat.validate(stored)
    student = load("notebooks", GB_TOPIC)
    # The gradebook keeps the notebook's order, the stubs, and (removed here) hidden tests.
    assert [c.id for c in stored.cells] == [graded_id(c) for c in graded(student)]
    master = {c.id: c.source for c in nbformat.read(ROOT / "source" / GB_TOPIC / f"{GB_TOPIC}.ipynb", 4).cells}
    for got, want in zip(stored.cells, graded(student)):
        assert got.cell_type == want.cell_type
        assert got.source.rstrip("\n") == want.source.rstrip("\n")
        assert build.BEGIN_HIDDEN not in got.source
        got_meta, want_meta = got.metadata["nbgrader"], want.metadata["nbgrader"]
        assert {**got.metadata, "nbgrader": None} == {**want.metadata, "nbgrader": None}  # LockCells' flags
        assert got_meta.keys() == want_meta.keys()
        differs = {k for k in want_meta if got_meta[k] != want_meta[k]}
        # ClearHiddenTests changes a test cell's checksum after SaveCells stored it.
        assert differs <= ({"checksum"} if build.BEGIN_HIDDEN in master[want.id] else set()), want.id

    solution = load("solutions", GB_TOPIC)
    report = rebuild(solution, stored)
    assert report.matched == [graded_id(c) for c in stored.cells] and report.unmatched == []
    where = positions_by_id(solution, student)
    for cell in stored.cells:
        if cell.cell_type == "code":  # written answers: by position, without the prose around them
            assert graded_id(solution.cells[where[cell.id]]) == cell.id


@pytest.mark.slow
@pytest.mark.parametrize("use_release", [True, False])
def test_preprocessor_rebuilds_before_overwrite_cells(course, use_release, monkeypatch):
    from nbgrader.preprocessors import CheckCellMetadata, OverwriteCells
    from traitlets.config import Config

    monkeypatch.chdir(course)
    config = Config()
    config.CourseDirectory.root = str(course)
    config.RebuildMetadata.use_release = use_release
    solution, student = load("solutions", GB_TOPIC), load("notebooks", GB_TOPIC)
    where = positions_by_id(solution, student)
    resources = _resources(course)
    nb, resources = RebuildMetadata(config=config).preprocess(solution, resources)
    rebuilt = nb.metadata["autograder"]["metadata_rebuilt"]
    assert rebuilt["unmatched"] == []
    assert rebuilt["matched"] == rebuilt["rebuilt"] == [graded_id(c) for c in graded(student)]
    for gid, index in where.items():
        if use_release or nb.cells[index].cell_type == "code":
            assert graded_id(nb.cells[index]) == gid
    n_cells = len(nb.cells)
    nb, resources = OverwriteCells(add_missing_cells=True).preprocess(nb, resources)
    nb, resources = CheckCellMetadata().preprocess(nb, resources)
    assert len(nb.cells) == n_cells  # nothing was missing, nothing re-added
    assert [graded_id(c) for c in nb.cells if graded_id(c)] == [graded_id(c) for c in graded(student)]
