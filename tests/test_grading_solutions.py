"""The course's own solution notebooks, handed in as a student's work, grade to full automatic
marks in the sandbox. They carry no nbgrader metadata (the build removes it), like a notebook a
student pasted their work into: the grader rebuilds it from the master and says so."""

from __future__ import annotations

import csv
import pathlib
import shutil

import pytest

from autograder import grade as grading

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOPICS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("topic", TOPICS)
def test_solution_notebook_grades_full(topic, tmp_path):
    subs = tmp_path / "subs" / "solutions"
    subs.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / topic / f"{topic}.ipynb", subs / f"{topic}.ipynb")
    out = tmp_path / "out"
    options = grading.GradeOptions(timeout=300, student_timeout=900)
    assert grading.grade(topic, subs.parent, out, options=options) == 0
    with open(out / "breakdown.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] != "manual"]
    assert rows, "no automatically graded cell"
    lost = [f"{r['cell']}: {r['points']}/{r['max_points']} {r['status']} ({r['reason']})" for r in rows
            if r["status"] != "passed" or float(r["points"]) != float(r["max_points"])]
    assert not lost, "\n".join(lost)
    assert all("metadata rebuilt from the master" in r["reason"] for r in rows), rows[0]["reason"]
