"""nbgrader's own commands, run as an instructor runs them from a course folder that holds a copy
of the course's root ``nbgrader_config.py``: ``nbgrader generate_assignment``, ``autograde``,
``generate_feedback``, ``export`` and ``validate``. They must give what ``python -m autograder
grade`` gives: the sandbox (escape attempts blocked), stderr tolerated, hidden tests kept out of
feedback, per-student grading seeds that a re-grade reproduces, crash isolation, notebooks
without nbgrader metadata graded; and a sandbox that cannot work fails autograde loudly."""

from __future__ import annotations

import csv
import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder.build import read_notebook, solution_version
from autograder.feedback import hidden_lines_of
from autograder.secret import grading_seed, load_secret
from dlcourse import checks

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MASTER = FIXTURES / "source" / "99_fixture" / "99_fixture.ipynb"
sys.path.insert(0, str(FIXTURES))
import make_submissions  # noqa: E402

pytestmark = pytest.mark.slow
STUDENTS = ("correct", "stderr_noise", "kernel_death", "sandbox_escape", "sandbox_escape_privileged", "forged_reply",
            "partial")
SEED_CELL = ("import os, json\n"
             "print('SEED ' + json.dumps({k: os.environ.get(k) for k in "
             "('DLCOURSE_GRADING_SEED', 'DLCOURSE_PROFILE')}))")


def nbgrader(course: pathlib.Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` run in ``course``, as an instructor types it (a plain environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER", "DLCOURSE_GRADING"))}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)


def export_rows(course: pathlib.Path) -> dict[str, dict]:
    with open(course / "grades.csv") as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    base = tmp_path_factory.mktemp("nbgrader-course")
    course = base / "course"
    (course / "source").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(MASTER.parent, course / "source" / "99_fixture")
    subs = base / "all"
    targets = {"read": [str(course / "source" / "99_fixture" / "99_fixture.ipynb"), str(course / "gradebook.db"),
                        str(course / ".autograder" / "course-secret"),
                        str(course / "submitted" / "correct" / "99_fixture" / "99_fixture.ipynb")],
               "write": [str(course / "gradebook.db"), str(base / "escaped")]}
    make_submissions.write(subs, targets=targets)
    for student in STUDENTS:
        dest = course / "submitted" / student / "99_fixture"
        dest.mkdir(parents=True)
        shutil.copy(subs / student / "99_fixture.ipynb", dest / "99_fixture.ipynb")
    # A notebook without nbgrader metadata (the solution version; also what a copy pasted into a
    # fresh notebook looks like), with one more cell that prints the kernel's seed and profile.
    plain = solution_version(read_notebook(MASTER), "99_fixture", "https://github.com/o/r")
    plain.cells.append(nbformat.v4.new_code_cell(SEED_CELL))
    dest = course / "submitted" / "plain" / "99_fixture"
    dest.mkdir(parents=True)
    nbformat.write(plain, dest / "99_fixture.ipynb")

    runs = {"generate": nbgrader(course, "generate_assignment", "99_fixture", "--force")}
    runs["autograde"] = nbgrader(course, "autograde", "99_fixture", "--force")
    runs["feedback"] = nbgrader(course, "generate_feedback", "99_fixture", "--force")
    runs["export"] = nbgrader(course, "export", "--to", "grades.csv")
    return {"course": course, "base": base, "runs": runs, "targets": targets}


def autograded(course, student):
    return nbformat.read(course / "autograded" / student / "99_fixture" / "99_fixture.ipynb", as_version=4)


def test_commands_succeed_and_use_the_course_config(course):
    for name, run in course["runs"].items():
        assert run.returncode == 0, f"{name}: {run.stdout[-2000:]}{run.stderr[-3000:]}"
        assert "No nbgrader_config.py file found" not in run.stderr, name
    assert "sandbox probe: ok" in course["runs"]["autograde"].stderr


def test_autograde_scores_as_the_batch_grader_does(course):
    grades = export_rows(course["course"])
    expected = {"correct": 4, "stderr_noise": 4, "kernel_death": 0, "sandbox_escape": 4,
                "sandbox_escape_privileged": 4, "forged_reply": 0, "partial": 3, "plain": 4}
    assert {s: float(grades[s]["score"]) for s in expected} == expected
    # Statuses and reasons travel in the autograded notebook.
    cells = {c.metadata["nbgrader"]["grade_id"]: c.metadata.get("autograder", {})
             for c in autograded(course["course"], "kernel_death").cells if c.metadata.get("nbgrader", {}).get("grade")
             and c.cell_type == "code"}
    assert {v["status"] for v in cells.values()} == {"kernel-died"}
    forged = {c.metadata["autograder"]["status"] for c in autograded(course["course"], "forged_reply").cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert forged == {"tampered"}


def test_stderr_does_not_cost_points_under_nbgrader_autograde(course):
    test = next(c for c in autograded(course["course"], "stderr_noise").cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax")
    assert "debug: softmax called" in "".join(o.get("text", "") for o in test.outputs)
    assert test.metadata["autograder"]["status"] == "passed"


def test_sandbox_blocks_escapes_under_nbgrader_autograde(course):
    nb = autograded(course["course"], "sandbox_escape")
    printed = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream" and o.text.startswith("{")]
    assert printed, "the escape cell did not run"
    results = json.loads(printed[0])
    assert results and all(v == "blocked" for v in results.values()), results
    assert not (course["base"] / "escaped").exists()
    nb = autograded(course["course"], "sandbox_escape_privileged")
    printed = [line for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream" for line in o.text.splitlines() if line.startswith("ESCAPE ")]
    found = json.loads(printed[0][len("ESCAPE "):])
    assert found["cap_eff"] == "0000000000000000" and found["uid"] != 0, found
    for key in ("unshare_umount", "unshare_syscall", "umount_syscall", "user_namespace", "ptrace_init",
                "core_pattern", "foreign_mem"):
        assert found[key] == "blocked", (key, found)


def test_seed_and_profile_come_from_the_course_secret(course):
    nb = autograded(course["course"], "plain")
    line = next(line for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
                for line in o.text.splitlines() if line.startswith("SEED "))
    found = json.loads(line[len("SEED "):])
    assert found == {"DLCOURSE_GRADING_SEED": None, "DLCOURSE_PROFILE": "ci"}, "the kernel never sees the seed"
    # the hidden tests, in the grader's process, draw from the student's seed
    draws = [line.split()[1] for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if o.output_type == "stream" for line in o.text.splitlines() if line.startswith("HIDDEN-DRAW ")]
    secret = load_secret(course["course"] / ".autograder" / "course-secret")
    with checks.use_grading_seed(grading_seed(secret, "99_fixture", "plain")):
        assert draws == [str(checks.grading_rng("draw-check").integers(10**9))], draws


def test_notebook_without_metadata_is_graded_and_says_so(course):
    nb = autograded(course["course"], "plain")
    assert "metadata_rebuilt" in nb.metadata.get("autograder", {}), "the rebuild is recorded"
    statuses = {c.metadata["nbgrader"]["grade_id"]: c.metadata["autograder"]["status"] for c in nb.cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert set(statuses.values()) == {"passed"}, statuses


def test_generate_feedback_never_shows_hidden_tests(course):
    hidden = hidden_lines_of(nbformat.read(MASTER, as_version=4))
    files = sorted((course["course"] / "feedback").rglob("*.html"))
    assert {f.parts[-3] for f in files} == set(STUDENTS) | {"plain"}
    for f in files:
        raw = f.read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        assert "HIDDEN-SENTINEL" not in raw, f"{f}: hidden test shown"
        assert not [h for h in hidden if h in text], f"{f}: shows hidden-test lines"
    partial = html.unescape(re.sub(r"<[^>]+>", "", (course["course"] / "feedback" / "partial" / "99_fixture" /
                                                     "99_fixture.html").read_text()))
    assert "must raise ValueError" in partial


def test_regrade_reproduces_the_seeded_grades(course):
    before = export_rows(course["course"])
    run = nbgrader(course["course"], "autograde", "99_fixture", "--student", "plain", "--force")
    assert run.returncode == 0, run.stderr[-3000:]
    again = nbgrader(course["course"], "export", "--to", "grades-again.csv")
    assert again.returncode == 0
    with open(course["course"] / "grades-again.csv") as fh:
        after = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert {s: after[s]["score"] for s in before} == {s: before[s]["score"] for s in before}
    test_seed_and_profile_come_from_the_course_secret(course)  # the same seed on the re-grade


def test_a_sandbox_that_cannot_start_fails_autograde_loudly(course):
    """A kernel that cannot start in the sandbox (here: 1 MB of address space) must not give
    silent zeros: autograde exits non-zero, says why, and records no grade."""
    course_dir = course["course"]
    run = nbgrader(course_dir, "autograde", "99_fixture", "--student", "correct", "--force",
                   "--GradingSandbox.memory_mb=1")
    assert run.returncode != 0
    assert "sandbox" in run.stderr and "SandboxUnavailable" in run.stderr, run.stderr[-2000:]
    assert not (course_dir / "autograded" / "correct" / "99_fixture" / "99_fixture.ipynb").exists()


def test_validate_applies_the_graders_stderr_rule(course, tmp_path):
    """Validate (nbgrader validate, the button) with the course config passes a correct notebook
    whose functions write to stderr; plain nbgrader's Validate fails it."""
    student = course["course"] / "submitted" / "stderr_noise" / "99_fixture" / "99_fixture.ipynb"
    work = tmp_path / "student"
    work.mkdir()
    shutil.copy(student, work / "99_fixture.ipynb")
    shutil.copy(ROOT / "autograder" / "templates" / "student" / "nbgrader_config.py", work / "nbgrader_config.py")
    ours = nbgrader(work, "validate", "99_fixture.ipynb", timeout=300)
    assert "Success! Your notebook passes all the tests." in ours.stdout, ours.stdout[-2000:] + ours.stderr[-2000:]
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(student, plain / "99_fixture.ipynb")
    theirs = nbgrader(plain, "validate", "99_fixture.ipynb", timeout=300)
    assert "Success!" not in theirs.stdout and "debug: softmax called" in theirs.stdout, theirs.stdout[-2000:]
