"""The grading command end to end, on the NumPy fixture assignment and its fixture submissions
(tests/fixtures/make_submissions.py describes each one and what it must score).

Every guarantee of autograder/README.md has a test here: crashes, timeouts, syntax errors,
memory exhaustion and corrupt files cost only that student's points, with a reason;
deleted and edited test cells are restored; stderr does not cost points; feedback never
shows hidden tests; the sandbox blocks reading the masters, other students' work and the
gradebook, writing outside the student's folder, and the network; obvious tampering is
caught; grading twice gives the same grades."""

from __future__ import annotations

import csv
import os
import html
import json
import pathlib
import re
import shutil
import zipfile

import nbformat
import pytest

from autograder import grade as grading
from autograder.preprocessors import hidden_lines_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "source"
MASTER = SOURCE / "99_fixture" / "99_fixture.ipynb"

import sys  # noqa: E402
sys.path.insert(0, str(FIXTURES))
import make_submissions  # noqa: E402

pytestmark = pytest.mark.slow
EXPORT_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                  "raw_score", "late_submission_penalty", "score", "max_score"]
CANARY = "AUTOGRADER_TEST_CANARY"
OPTIONS = dict(timeout=10, memory_mb=2048, cpu_seconds=120, student_timeout=300)


def read_breakdown(out):
    with open(out / "breakdown.csv") as fh:
        return list(csv.DictReader(fh))


def read_grades(out):
    with open(out / "grades.csv") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, {r["student_id"]: r for r in reader}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """All fixture submissions graded once, in the sandbox. The escape attempt aims at the real
    paths of this run: the master, another student's submission, the gradebook, the repository."""
    base = tmp_path_factory.mktemp("grading")
    subs, out = base / "submissions", base / "out"
    targets = {
        "read": [str(MASTER), str(ROOT / "pyproject.toml"), str(subs / "correct" / "99_fixture.ipynb"),
                 str(out / "_nbgrader" / "gradebook.db"), str(out / "course-secret"),
                 str(pathlib.Path.home() / ".bashrc")],
        "write": [str(ROOT / "ESCAPED-autograder-test"), str(base / "escaped"),
                  str(out / "_nbgrader" / "gradebook.db"), str(subs / "correct" / "99_fixture.ipynb")],
    }
    make_submissions.write(subs, targets=targets)
    # A variable of the instructor's shell: no process in the sandbox may carry it.
    os.environ[CANARY] = "instructor-shell-canary"
    try:
        rc = grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS))
    finally:
        del os.environ[CANARY]
    assert rc == 0
    return {"base": base, "subs": subs, "out": out, "targets": targets}


def test_every_fixture_submission_scores_as_expected(batch):
    rows = read_breakdown(batch["out"])
    got = {}
    for r in rows:
        got.setdefault(r["student_id"], {})[r["cell"]] = r
    assert sorted(got) == sorted(make_submissions.EXPECTED), "one row group per student folder"
    problems = []
    for student, cells in make_submissions.EXPECTED.items():
        for cell, (points, status) in cells.items():
            r = got[student][cell]
            if float(r["points"]) != points or not r["status"].startswith(status.split()[0]):
                problems.append(f"{student}/{cell}: expected {points} {status}, got {r['points']} {r['status']} ({r['reason']})")
            if status != "passed":
                assert r["reason"], f"{student}/{cell}: a lost point needs a reason"
        manual = got[student]["written_softmax"]
        assert manual["status"] in ("manual", "corrupt notebook")
    assert not problems, "\n".join(problems)


def test_reasons_say_what_happened(batch):
    rows = {(r["student_id"], r["cell"]): r for r in read_breakdown(batch["out"])}
    log = (batch["out"] / "grading.log").read_text()
    assert "died" in rows["kernel_death", "test_softmax"]["reason"]
    assert "within 10 s" in rows["infinite_loop", "test_softmax"]["reason"]
    assert "MemoryError" in rows["out_of_memory", "test_softmax"]["reason"]
    assert "SyntaxError" in rows["syntax_error", "test_softmax"]["reason"]
    assert "not a readable notebook" in rows["corrupt", "test_softmax"]["reason"]
    assert rows["edited_test_cell", "test_softmax"]["reason"].startswith("not implemented yet: softmax (cell 5")
    assert "numpy.allclose" in rows["tamper_numpy", "test_softmax"]["reason"]
    assert "showtraceback" in rows["tamper_traceback", "test_softmax"]["reason"]
    assert "dlcourse.checks.assert_close" in rows["tamper_checks", "test_softmax"]["reason"]
    assert "NameError" in rows["deleted_exercise", "test_accuracy"]["reason"]
    assert "'ValueError'" in rows["tamper_shadow_exception", "test_clip"]["reason"]
    assert "must raise ValueError" in rows["partial", "test_clip"]["reason"]
    # An unfilled stub names the student's own exercise and the cell JupyterLab users count (1-based).
    assert rows["unfilled", "test_softmax"]["reason"] == "not implemented yet: softmax (cell 5, exercise ex_softmax)"
    assert rows["unfilled", "test_clip"]["reason"] == "not implemented yet: clip (cell 11, exercise ex_clip)"
    # Forged replies: caught before the test when the reply path was patched earlier, after the
    # test when the student's function patched it while the test ran.
    assert "forged" in rows["forged_reply", "test_softmax"]["reason"]
    assert "after this test" in rows["forged_reply_late", "test_softmax"]["reason"]
    assert "before this test" in rows["forged_reply_late", "test_accuracy"]["reason"]
    assert "pre_run_cell callback" in rows["hook_cell_source", "test_softmax"]["reason"]
    assert "setprofile" in rows["trace_cell_source", "test_softmax"]["reason"]
    for student in ("kernel_death", "infinite_loop", "out_of_memory", "corrupt", "tamper_numpy"):
        assert f"{student}/99_fixture" in log, f"{student}'s problem is not in grading.log"
    # Each student's grading seed is logged, so an instructor can re-run a hidden test with it.
    secret = grading.load_secret(batch["out"] / "course-secret")
    for student in make_submissions.EXPECTED:
        seed = grading.grading_seed(secret, "99_fixture", student)
        assert f"== {student} (grading seed {seed})" in log, f"{student}'s grading seed is not in grading.log"


def test_grades_csv_has_nbgrader_export_columns_and_matching_scores(batch):
    columns, grades = read_grades(batch["out"])
    assert columns == EXPORT_COLUMNS
    assert sorted(grades) == sorted(make_submissions.EXPECTED)
    for student, cells in make_submissions.EXPECTED.items():
        expected = sum(points for points, _ in cells.values())
        assert float(grades[student]["score"]) == expected, student
        assert float(grades[student]["max_score"]) == 5.0  # 4 autograded + 1 written


def test_an_output_flood_is_truncated_not_fatal(batch):
    nb = nbformat.read(batch["out"] / "_nbgrader" / "autograded" / "output_flood" / "99_fixture" / "99_fixture.ipynb",
                       as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("print('flood "))
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "[output truncated by the grader: this cell printed more than 1 MB]" in text
    assert text.startswith("flood flood") and len(text) < 2**20 + 200


def test_hidden_parts_run_outside_the_history(batch):
    """The hidden part of each test cell runs as its own execution, without history, and its
    outputs are marked for feedback to withhold."""
    nb = nbformat.read(batch["out"] / "_nbgrader" / "autograded" / "correct" / "99_fixture" / "99_fixture.ipynb",
                       as_version=4)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert tests and all("hidden_output_start" in c.metadata.get("autograder", {}) for c in tests
                         if "BEGIN HIDDEN TESTS" in c.source)
    assert not [c for c in nb.cells if "__autograder" in c.source], "injected cells are removed"


def test_restored_cells_are_graded(batch):
    autograded = batch["out"] / "_nbgrader" / "autograded"
    nb = nbformat.read(autograded / "deleted_test_cell" / "99_fixture" / "99_fixture.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert "test_accuracy" in ids, "the deleted test cell was not restored"
    nb = nbformat.read(autograded / "deleted_exercise" / "99_fixture" / "99_fixture.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert ids.index("ex_softmax") < ids.index("test_softmax") < ids.index("test_accuracy") < ids.index("ex_clip"), \
        "a test cell deleted together with its exercise goes back where it was"
    nb = nbformat.read(autograded / "edited_test_cell" / "99_fixture" / "99_fixture.ipynb", as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax")
    assert "all tests passed" not in test.source and "BEGIN HIDDEN TESTS" in test.source


def test_stderr_from_correct_work_keeps_points_and_its_text(batch):
    nb = nbformat.read(batch["out"] / "_nbgrader" / "autograded" / "stderr_noise" / "99_fixture" / "99_fixture.ipynb",
                       as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax")
    text = "".join(o.get("text", "") for o in test.outputs)
    assert "debug: softmax called" in text, "the debug print should still be visible"
    assert not any(o.output_type == "error" for o in test.outputs)


def _snoop_report(out, student="snoop_memory"):
    nb = nbformat.read(out / "_nbgrader" / "autograded" / student / "99_fixture" / "99_fixture.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if "SNOOP" in c.source for o in c.get("outputs", []))
    found = re.search(r"SNOOP searched (\d+) texts; found (\d+)", text)
    assert found, f"the search did not report: {text[:500]}"
    return int(found.group(1)), int(found.group(2)), text


def test_hidden_tests_never_reach_the_kernel(batch):
    """A submission that searches every frame during its calls and every object, history entry and
    line cache at the end finds nothing of the hidden tests, and no output anywhere in OUT (the
    autograded notebooks' outputs, feedback, CSVs, log, report) holds a hidden-test line."""
    searched, found, text = _snoop_report(batch["out"])
    assert searched > 10_000 and found == 0, text
    hidden = [h for h in hidden_lines_of(nbformat.read(MASTER, as_version=4)) if len(h) > 12]
    out = batch["out"]
    for path in (out / "_nbgrader" / "autograded").rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert "HIDDEN-SENTINEL" not in outputs and not [h for h in hidden if json.dumps(h)[1:-1] in outputs], path
    for path in [*out.glob("*.csv"), out / "grading.log", out / "report.html", *(out / "feedback").rglob("*.html")]:
        text = path.read_text()
        assert "HIDDEN-SENTINEL" not in text and not [h for h in hidden if h in text], path


def test_the_search_finds_hidden_tests_that_run_in_the_kernel(tmp_path):
    """The same search, in a kernel that ran the master's test cells whole (hidden parts included,
    as nbgrader alone runs them), finds the hidden tests: the test above can fail."""
    from nbclient import NotebookClient
    master = nbformat.read(MASTER, as_version=4)
    full = {c.metadata["nbgrader"]["grade_id"]: c.source for c in master.cells
            if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_")}
    path = make_submissions.write(tmp_path / "subs")["snoop_memory"]
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.source = full.get(cell.metadata.get("nbgrader", {}).get("grade_id"), cell.source)
    NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if "SNOOP" in c.source for o in c.get("outputs", []))
    found = re.search(r"SNOOP searched (\d+) texts; found (\d+)", text)
    assert found and int(found.group(2)) > 0 and "HIDDEN-SENTINEL" in text, text


def test_feedback_shows_failures_but_never_hidden_tests(batch):
    out = batch["out"]
    hidden = hidden_lines_of(nbformat.read(MASTER, as_version=4))
    assert any("HIDDEN-SENTINEL" in h for h in hidden)
    files = sorted((out / "feedback").rglob("*.html"))
    assert {f.parent.name for f in files} == set(make_submissions.EXPECTED)
    for f in files:
        raw = f.read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        assert "HIDDEN-SENTINEL" not in raw and "HIDDEN-SENTINEL" not in text, f"{f}: hidden test shown"
        leaked = [h for h in hidden if h in text]
        assert not leaked, f"{f}: shows hidden-test lines {leaked[:2]}"
    partial = html.unescape(re.sub(r"<[^>]+>", "", (out / "feedback" / "partial" / "99_fixture.html").read_text()))
    assert "must raise ValueError" in partial, "the failing hidden test's message belongs in the feedback"
    correct = (out / "feedback" / "correct" / "99_fixture.html").read_text()
    assert "softmax" in correct and "rows must sum to 1" in html.unescape(correct), "visible tests are shown"


def test_sandbox_blocks_reads_writes_and_network(batch):
    nb = nbformat.read(batch["out"] / "_nbgrader" / "autograded" / "sandbox_escape" / "99_fixture" / "99_fixture.ipynb",
                       as_version=4)
    printed = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream" and o.text.startswith("{")]
    assert printed, "the escape cell did not run"
    results = json.loads(printed[0])
    assert results and all(v == "blocked" for v in results.values()), results
    assert len(results) == len(batch["targets"]["read"]) + len(batch["targets"]["write"]) + 1
    assert not (ROOT / "ESCAPED-autograder-test").exists()
    assert not (batch["base"] / "escaped").exists()
    assert "escaped" not in (batch["subs"] / "correct" / "99_fixture.ipynb").read_text()
    rows = [r for r in read_breakdown(batch["out"]) if r["student_id"] == "sandbox_escape" and r["cell"].startswith("test_")]
    assert all(r["status"] == "passed" for r in rows), "the student's own tests still grade"


def test_privileged_escape_is_refused(batch):
    """As root (CI) and as an ordinary user: no capabilities, no unshare/umount/remount, no
    user namespace, no ptrace, no write to /proc/sys (core_pattern), no other process to rewrite
    through /proc/PID/mem, and no process carries the grader's
    environment (bwrap's init once showed the instructor's shell and every AUTOGRADER_* setting)."""
    nb = nbformat.read(batch["out"] / "_nbgrader" / "autograded" / "sandbox_escape_privileged" / "99_fixture" /
                       "99_fixture.ipynb", as_version=4)
    printed = [line for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream" for line in o.text.splitlines() if line.startswith("ESCAPE ")]
    assert printed, "the escape cell did not run"
    found = json.loads(printed[0][len("ESCAPE "):])
    assert found["cap_eff"] == "0000000000000000", found
    assert found["uid"] != 0
    for key in ("unshare_umount", "unshare_syscall", "umount_syscall", "user_namespace", "ptrace_init",
                "core_pattern", "foreign_mem"):
        assert found[key] == "blocked", (key, found)
    assert "AUTOGRADER" not in found["init_environ"] and "canary" not in found["init_environ"], found["init_environ"]
    assert not [k for k in found["environ"] if k.startswith("AUTOGRADER") or k == CANARY], found["environ"]
    rows = [r for r in read_breakdown(batch["out"]) if r["student_id"] == "sandbox_escape_privileged"]
    assert all(r["status"] in ("passed", "manual") for r in rows), rows


def test_probe_refuses_a_sandbox_that_keeps_capabilities(tmp_path, monkeypatch, batch):
    """A future change that loses --cap-drop, the seccomp filter and --disable-userns is caught
    by the start-up probe before any student is graded."""
    from autograder import sandbox

    original = sandbox.sandbox_command

    def weakened(settings, inner, seccomp_fd=None):
        cmd = original(settings, inner, None)  # no seccomp filter
        for flag in ("--cap-drop", "--uid", "--gid"):  # as root, bwrap then keeps every capability
            i = cmd.index(flag)
            del cmd[i:i + 2]
        return [a for a in cmd if a != "--disable-userns"]

    monkeypatch.setattr(sandbox, "sandbox_command", weakened)
    subs = tmp_path / "subs"
    shutil.copytree(batch["subs"] / "correct", subs / "correct")
    if os.geteuid() != 0:  # bwrap run by an ordinary user grants no capabilities on the host side anyway
        monkeypatch.setattr(sandbox, "seccomp_fd", lambda: None)
        pytest.skip("capabilities inside bwrap are only kept when the grader runs as root")
    with pytest.raises(grading.GradeError, match="keeps capabilities") as err:
        grading.grade("99_fixture", subs, tmp_path / "out", source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS))
    assert "unmount hidden folders" in str(err.value) and "mount namespace" in str(err.value)
    assert not (tmp_path / "out" / "_nbgrader" / "autograded").exists(), "no student may be graded"


def test_grading_twice_gives_the_same_grades(batch, tmp_path):
    subs = tmp_path / "subs"
    for student in ("correct", "partial", "tamper_numpy", "kernel_death"):
        shutil.copytree(batch["subs"] / student, subs / student)
    out = tmp_path / "out"
    shutil.copy(batch["out"] / "course-secret", tmp_path / "secret")
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, secret_file=tmp_path / "secret",
                         options=grading.GradeOptions(**OPTIONS)) == 0
    key = lambda r: (r["student_id"], r["cell"], r["points"], r["status"])  # noqa: E731
    first = {key(r) for r in read_breakdown(batch["out"]) if r["student_id"] in {"correct", "partial", "tamper_numpy", "kernel_death"}}
    assert {key(r) for r in read_breakdown(out)} == first
    _, a = read_grades(batch["out"])
    _, b = read_grades(out)
    assert {s: b[s]["score"] for s in b} == {s: a[s]["score"] for s in b}


def test_zip_input_and_renamed_notebook(batch, tmp_path):
    archive = tmp_path / "hand-ins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(batch["subs"] / "correct" / "99_fixture.ipynb", "hand-ins/alice/99_fixture (1).ipynb")
        zf.write(batch["subs"] / "corrupt" / "99_fixture.ipynb", "hand-ins/bob/99_fixture.ipynb")
        zf.writestr("hand-ins/../../evil.txt", "zip slip")
    with pytest.raises(grading.GradeError, match="outside the archive"):
        grading.grade("99_fixture", archive, tmp_path / "bad", source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS))
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(batch["subs"] / "correct" / "99_fixture.ipynb", "hand-ins/alice/99_fixture (1).ipynb")
        zf.write(batch["subs"] / "corrupt" / "99_fixture.ipynb", "hand-ins/bob/99_fixture.ipynb")
    out = tmp_path / "out"
    assert grading.grade("99_fixture", archive, out, source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS)) == 0
    _, grades = read_grades(out)
    assert float(grades["alice"]["score"]) == 4.0 and float(grades["bob"]["score"]) == 0.0
    assert (out / "feedback" / "bob" / "99_fixture.html").is_file()


def test_kernel_environment_seed_profile_and_cache(batch):
    """Hidden tests draw from DLCOURSE_GRADING_SEED: per student, from the course secret."""
    secret = (batch["out"] / "course-secret").read_bytes().strip()
    seeds = {s: grading.grading_seed(secret, "99_fixture", s) for s in ("a", "b")}
    assert seeds["a"] != seeds["b"] and grading.grading_seed(secret, "99_fixture", "a") == seeds["a"]
    assert grading.grading_seed(b"another secret!!", "99_fixture", "a") != seeds["a"]
    assert 0o600 == (batch["out"] / "course-secret").stat().st_mode & 0o777


def test_refuses_without_a_sandbox_unless_told(tmp_path, monkeypatch, batch):
    subs = tmp_path / "subs"
    shutil.copytree(batch["subs"] / "correct", subs / "correct")
    monkeypatch.setattr(grading.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(grading.GradeError, match="--no-sandbox"):
        grading.grade("99_fixture", subs, tmp_path / "out", source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS))
    monkeypatch.undo()
    out = tmp_path / "out2"
    opts = grading.GradeOptions(sandbox=False, **OPTIONS)
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts) == 0
    _, grades = read_grades(out)
    assert float(grades["correct"]["score"]) == 4.0


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(grading.GradeError, match="no assignment 'nope'"):
        grading.grade("nope", tmp_path, tmp_path / "out", source_dir=SOURCE)
    with pytest.raises(grading.GradeError, match="does not exist"):
        grading.grade("99_fixture", tmp_path / "missing", tmp_path / "out", source_dir=SOURCE)


E2E = "00_getting_started"


@pytest.mark.skipif(not (ROOT / "source" / E2E / f"{E2E}.ipynb").is_file(), reason="the pilot notebook is not there yet")
def test_end_to_end_on_the_pilot_notebook(tmp_path):
    """A fully correct submission of the real pilot notebook earns every autograded point in
    the sandbox; the untouched student version earns none."""
    from autograder import build

    master = build.sync_master(build.read_notebook(ROOT / "source" / E2E / f"{E2E}.ipynb"), E2E,
                               build.repository_url(ROOT))
    student = build.student_version(master, E2E)
    subs = tmp_path / "subs"
    for sid, nb in (("solved", grading.correct_submission(master, student)), ("stub", student)):
        (subs / sid).mkdir(parents=True)
        nbformat.write(nb, subs / sid / f"{E2E}.ipynb")
    out = tmp_path / "out"
    assert grading.grade(E2E, subs, out, source_dir=ROOT / "source",
                         options=grading.GradeOptions(timeout=300)) == 0
    rows = [r for r in read_breakdown(out) if r["status"] != "manual"]
    solved = [r for r in rows if r["student_id"] == "solved"]
    stub = [r for r in rows if r["student_id"] == "stub"]
    assert solved and all(r["status"] == "passed" for r in solved), \
        [(r["cell"], r["status"], r["reason"]) for r in solved if r["status"] != "passed"]
    assert stub and all(float(r["points"]) == 0 and r["status"] == "failed" for r in stub), \
        [(r["cell"], r["status"], r["reason"]) for r in stub if r["status"] != "failed"]
    hidden = hidden_lines_of(master)
    for f in (out / "feedback").rglob("*.html"):
        text = html.unescape(re.sub(r"<[^>]+>", "", f.read_text()))
        assert not [h for h in hidden if h in text], f"{f} shows hidden tests"


def test_manual_grades_survive_regrades_and_are_exported(batch, tmp_path):
    """A written answer graded by hand (through nbgrader's gradebook API, as the Formgrader
    does) keeps its points and comment through a full re-grade and a --student re-grade, and
    ``python -m autograder export`` puts it into grades.csv and breakdown.csv."""
    from nbgrader.api import Gradebook

    from autograder.__main__ import main

    subs = tmp_path / "subs"
    for student in ("correct", "partial"):
        shutil.copytree(batch["subs"] / student, subs / student)
    out = tmp_path / "out"
    opts = grading.GradeOptions(**OPTIONS)
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts) == 0
    url = f"sqlite:///{out / '_nbgrader' / 'gradebook.db'}"
    with Gradebook(url) as gb:
        grade = gb.find_grade("written_softmax", "99_fixture", "99_fixture", "correct")
        grade.manual_score = 1
        comment = gb.find_comment("written_softmax", "99_fixture", "99_fixture", "correct")
        comment.manual_comment = "Clear and correct."
        gb.db.commit()
    secret = (out / "course-secret").read_text()
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts) == 0  # full re-grade
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts, students=["partial"]) == 0
    assert (out / "course-secret").read_text() == secret, "the course secret is kept"
    with Gradebook(url) as gb:
        assert gb.find_grade("written_softmax", "99_fixture", "99_fixture", "correct").manual_score == 1
        assert gb.find_comment("written_softmax", "99_fixture", "99_fixture", "correct").manual_comment == \
            "Clear and correct."
    (out / "grades.csv").unlink()
    assert main(["export", str(out)]) == 0
    _, grades = read_grades(out)
    assert float(grades["correct"]["score"]) == 5.0 and float(grades["partial"]["score"]) == 3.0
    rows = {(r["student_id"], r["cell"]): r for r in read_breakdown(out)}
    assert rows["correct", "written_softmax"]["points"] == "1"
    assert rows["correct", "written_softmax"]["reason"] == "graded by hand"
    assert rows["partial", "test_clip"]["status"] == "failed" and rows["partial", "test_softmax"]["points"] == "2"


def test_student_option_regrades_only_that_student(batch, tmp_path):
    subs = tmp_path / "subs"
    for student in ("correct", "partial"):
        shutil.copytree(batch["subs"] / student, subs / student)
    out = tmp_path / "out"
    opts = grading.GradeOptions(**OPTIONS)
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts, students=["correct"]) == 0
    assert {r["student_id"] for r in read_breakdown(out)} == {"correct"}
    shutil.copytree(batch["subs"] / "unfilled", subs / "newcomer")
    before = (out / "_nbgrader" / "autograded" / "correct" / "99_fixture" / "99_fixture.ipynb").stat().st_mtime_ns
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts, students=["newcomer"]) == 0
    after = (out / "_nbgrader" / "autograded" / "correct" / "99_fixture" / "99_fixture.ipynb").stat().st_mtime_ns
    assert before == after, "another student's grading was touched"
    _, grades = read_grades(out)
    assert float(grades["correct"]["score"]) == 4.0 and float(grades["newcomer"]["score"]) == 0.0
    assert {r["student_id"] for r in read_breakdown(out)} == {"correct", "newcomer"}
    with pytest.raises(grading.GradeError, match="no such folder"):
        grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts, students=["nobody"])
