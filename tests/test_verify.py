"""``python -m autograder verify``: the author's one command, on the fixture assignment.

A clean master verifies with no problem; each defect an author can introduce — a test that
passes on the stubs, a cell that writes to stderr, a cell that raises, a master edited without
rebuilding — is reported by name, and the command exits 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder import build
from autograder.verify import verify
from conftest import ROOT

FIXTURE_SOURCE = ROOT / "tests" / "fixtures" / "source"
TOPIC = "99_fixture"

pytestmark = pytest.mark.slow


@pytest.fixture
def course(tmp_path):
    shutil.copytree(FIXTURE_SOURCE, tmp_path / "source")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")  # the badge's repository address
    assert build.build(tmp_path, source_dir=tmp_path / "source", out_root=tmp_path, out=open(os.devnull, "w")) == 0
    return tmp_path


def _edit(course, edit):
    path = course / "source" / TOPIC / f"{TOPIC}.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit(nb)
    nbformat.write(nb, path)


def test_a_clean_master_verifies(course):
    result = verify(TOPIC, root=course, seeds=3, log=lambda *a: None)
    assert result.correctness_problems() == [], result.summary()
    assert result.master.seconds > 0 and result.master.stderr_cells == []
    assert {r.grade_id: r.runs for r in result.sweep} == {"test_softmax": 3, "test_accuracy": 3, "test_clip": 3}
    assert "ok" in result.summary().splitlines()[-1]


def test_every_defect_is_reported(course):
    def break_it(nb):
        nb.cells[2].source += "\nimport sys\nsys.stderr.write('noise from the imports cell\\n')"
        test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_accuracy")
        test.source = "assert True  # tests nothing\nprint('Visible tests passed.')"

    _edit(course, break_it)
    assert build.build(course, source_dir=course / "source", out_root=course, out=open(os.devnull, "w")) == 0
    result = verify(TOPIC, root=course, seeds=1, log=lambda *a: None)
    problems = "\n".join(result.correctness_problems())
    assert "writes to stderr in cell 2" in problems and "noise from the imports cell" in problems, problems
    assert "passes on the unsolved stubs" in problems and "tests nothing" in problems, problems
    assert result.stale == [], "rebuilt: nothing stale"

    _edit(course, lambda nb: nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('broken demo')")))
    result = verify(TOPIC, root=course, seeds=1, log=lambda *a: None)
    problems = "\n".join(result.correctness_problems())
    assert "the master fails" in problems and "cell 3" in problems and "broken demo" in problems, problems
    assert any(path.endswith(f"{TOPIC}.ipynb") for path in result.stale), "edited without a rebuild: stale"
    assert "stale: " in problems


def test_the_command_exits_1_on_a_problem_and_names_unknown_notebooks(course):
    _edit(course, lambda nb: nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('broken demo')")))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = lambda *args: subprocess.run([sys.executable, "-m", "autograder", "verify", *args,  # noqa: E731
                                        "--source", str(course / "source")],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    proc = run("99", "--seeds", "1")
    assert proc.returncode == 1 and "PROBLEM: the master fails" in proc.stdout, proc.stdout + proc.stderr
    proc = run("42_nothing")
    assert proc.returncode == 2 and "99_fixture" in proc.stderr, proc.stderr
