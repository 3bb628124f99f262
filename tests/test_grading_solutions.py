"""The course's own solution notebooks, handed in as a student's work, grade to full automatic
marks in the sandbox. They carry no nbgrader metadata (the build removes it), like a notebook a
student pasted their work into: the grader rebuilds it from the master and says so."""

from __future__ import annotations

import concurrent.futures
import csv
import pathlib
import shutil

import pytest

from autograder import grade as grading

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOPICS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())

pytestmark = pytest.mark.slow


def grade_solution(topic: str, base: pathlib.Path) -> tuple[int, pathlib.Path]:
    subs = base / topic / "subs" / "solutions"
    subs.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / topic / f"{topic}.ipynb", subs / f"{topic}.ipynb")
    out = base / topic / "out"
    options = grading.GradeOptions(timeout=300, student_timeout=900, progress=False)
    return grading.grade(topic, subs.parent, out, options=options), out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every solution graded, two assignments at a time (each its own batch and OUT): one
    student per batch leaves the second core idle otherwise."""
    base = tmp_path_factory.mktemp("solutions")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {topic: pool.submit(grade_solution, topic, base) for topic in TOPICS}
        return {topic: future.result() for topic, future in futures.items()}


@pytest.mark.parametrize("topic", TOPICS)
def test_solution_notebook_grades_full(topic, graded):
    rc, out = graded[topic]
    assert rc == 0
    with open(out / "breakdown.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] != "manual"]
    assert rows, "no automatically graded cell"
    lost = [f"{r['cell']}: {r['points']}/{r['max_points']} {r['status']} ({r['reason']})" for r in rows
            if r["status"] != "passed" or float(r["points"]) != float(r["max_points"])]
    assert not lost, "\n".join(lost)
    assert all("metadata rebuilt from the master" in r["reason"] for r in rows), rows[0]["reason"]
