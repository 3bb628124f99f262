"""Students graded side by side (``--jobs N``) and on a Dask cluster (``--scheduler``): the same
batch result as one after another, and one student's timeout, crash or dead worker costs that
student only (autograder/workers.py, autograder/cluster.py)."""

from __future__ import annotations

import csv
import os
import pathlib
import re
import shutil
import sys
import time

import pytest

from autograder import grade as grading
from autograder import kernel, workers

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "source"
sys.path.insert(0, str(FIXTURES))
import make_submissions  # noqa: E402

OPTIONS = dict(timeout=10, memory_mb=2048, cpu_seconds=120, student_timeout=300)
# An ordinary hand-in, partial credit, a crash, a timeout, stderr, a memory blow-up, a missing
# notebook (corrupt JSON) and tampering: every kind of row and log line, in one small batch.
STUDENTS = ["correct", "partial", "kernel_death", "infinite_loop", "stderr_noise", "out_of_memory", "corrupt",
            "tamper_numpy"]


def normalized_log(out: pathlib.Path) -> list[str]:
    """grading.log without what differs between any two runs: times, durations, paths, sizes,
    and the line that says how many students ran at once."""
    lines = []
    for line in (out / "grading.log").read_text().splitlines():
        line = re.sub(r"^\S+ \S+ (INFO|WARNING|ERROR) ", r"\1 ", line)
        line = line.replace(str(out), "OUT")
        line = re.sub(r"graded in [0-9.]+ s", "graded in T s", line)
        line = re.sub(r"removed scratch \([^)]*\)", "removed scratch (...)", line)
        if re.match(r"INFO \d+ students, ", line) or line.startswith("INFO grading 99_fixture from"):
            continue
        lines.append(line)
    return lines


def read(path: pathlib.Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def comparable(out: pathlib.Path) -> dict:
    grades = [{k: v for k, v in r.items() if k != "timestamp"} for r in read(out / "grades.csv")]
    # A kernel that kills itself may or may not have announced the cell it died in ("In [4]"
    # or "In [ ]"), in a serial run too: execution counts are not compared.
    feedback = {p.relative_to(out).as_posix(): re.sub(r"In(\s|&nbsp;)*\[(\s|&nbsp;|[0-9])*\]", "In [#]",
                                                   p.read_text().replace(str(out), "OUT"))
                for p in sorted((out / "feedback").rglob("*.html"))}
    return {"grades": grades, "breakdown": read(out / "breakdown.csv"), "log": normalized_log(out),
            "feedback": feedback}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    base = tmp_path_factory.mktemp("parallel")
    everyone = base / "all"
    make_submissions.write(everyone)
    subs = base / "subs"
    for student in STUDENTS:
        shutil.copytree(everyone / student, subs / student)
    out = base / "serial"
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, secret_file=base / "secret",
                         options=grading.GradeOptions(jobs=1, **OPTIONS)) == 0
    return {"base": base, "subs": subs, "out": out, "result": comparable(out)}


def assert_same(result: dict, expected: dict):
    assert result["grades"] == expected["grades"]
    assert result["breakdown"] == expected["breakdown"]
    assert result["log"] == expected["log"]
    assert result["feedback"].keys() == expected["feedback"].keys()
    for name, page in expected["feedback"].items():
        assert result["feedback"][name] == page, f"{name} differs"


@pytest.mark.slow
def test_parallel_batch_equals_serial(serial, capfd):
    out = serial["base"] / "parallel"
    started = time.monotonic()
    assert grading.grade("99_fixture", serial["subs"], out, source_dir=SOURCE, secret_file=serial["base"] / "secret",
                         options=grading.GradeOptions(jobs=3, progress=True, **OPTIONS)) == 0
    print(f"jobs=3: {time.monotonic() - started:.1f} s")
    assert_same(comparable(out), serial["result"])
    # The breakdown of the batch is what the fixture says each submission earns.
    points = {(r["student_id"], r["cell"]): float(r["points"] or 0) for r in serial["result"]["breakdown"]}
    for student in STUDENTS:
        for cell, (expected, _status) in make_submissions.EXPECTED[student].items():
            assert points[(student, cell)] == expected, (student, cell)
    err = capfd.readouterr().err
    assert f"{len(STUDENTS)}/{len(STUDENTS)}" in err and "failures=" in err, err[-2000:]
    assert "3 at a time (1 threads per kernel)" in (out / "grading.log").read_text()


@pytest.mark.slow
def test_dask_local_cluster_equals_serial(serial):
    distributed = pytest.importorskip("distributed")
    out = serial["base"] / "dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert grading.grade("99_fixture", serial["subs"], out, source_dir=SOURCE,
                             secret_file=serial["base"] / "secret",
                             options=grading.GradeOptions(scheduler=cluster.scheduler_address, **OPTIONS)) == 0
    assert_same(comparable(out), serial["result"])
    assert "on the Dask cluster at tcp://" in (out / "grading.log").read_text()


@pytest.mark.slow
def test_a_student_over_the_wall_clock_costs_only_that_student(serial, tmp_path):
    subs = tmp_path / "subs"
    for student in ("correct", "infinite_loop", "partial"):
        shutil.copytree(serial["subs"] / student, subs / student)
    out = tmp_path / "out"
    # Cells may run 60 s, the whole student 25 s: the endless loop hits the wall clock first,
    # and its worker is killed while the others are graded beside it.
    opts = grading.GradeOptions(**{**OPTIONS, "timeout": 60, "student_timeout": 25}, jobs=2)
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, secret_file=serial["base"] / "secret",
                         options=opts) == 0
    rows = {(r["student_id"], r["cell"]): r for r in read(out / "breakdown.csv")}
    assert all(r["status"] in ("passed", "manual") for (s, _), r in rows.items() if s == "correct")
    assert rows[("partial", "test_clip")]["status"] == "failed"
    looped = [r for (s, _), r in rows.items() if s == "infinite_loop" and r["status"] != "manual"]
    assert looped and all("longer than 25 s and was stopped" in r["reason"] for r in looped), looped
    assert "infinite_loop: grading this student took longer than 25 s" in (out / "grading.log").read_text()


# ---- the worker pool on its own (no nbgrader course needed: a config file decides what a worker does)

def course_whose_config(tmp_path: pathlib.Path, body: str) -> pathlib.Path:
    root = tmp_path / "course"
    (root / "logs").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(body)
    return root


def test_a_worker_that_dies_costs_its_task_only_and_is_replaced(tmp_path):
    dies = course_whose_config(tmp_path / "a", "import os\nos._exit(3)\n")
    raises = course_whose_config(tmp_path / "b", "raise RuntimeError('broken config')\n")
    with workers.WorkerPool(2) as pool:
        results = {task.student: result for task, result in pool.run([
            workers.StudentTask(str(dies), "99_fixture", "dies", timeout=120),
            workers.StudentTask(str(raises), "99_fixture", "raises", timeout=120),
            workers.StudentTask(str(dies), "99_fixture", "dies-again", timeout=120)])}
    assert results["dies"].state is workers.TaskState.WORKER_DIED and "exit 3" in results["dies"].detail
    assert results["dies-again"].state is workers.TaskState.WORKER_DIED
    assert results["raises"].state is workers.TaskState.FAILED and "broken config" in results["raises"].detail


def test_a_task_over_its_wall_clock_is_killed_with_its_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    # The worker starts a grandchild (as it starts kernels), then hangs.
    hang = course_whose_config(tmp_path, f"import subprocess, time\n"
                                         f"p = subprocess.Popen(['sleep', '300'])\n"
                                         f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
                                         f"time.sleep(300)\n")
    with workers.WorkerPool(1) as pool:
        started = time.monotonic()
        result = pool.grade_one(workers.StudentTask(str(hang), "99_fixture", "hangs", timeout=8))
        took = time.monotonic() - started
    assert result.state is workers.TaskState.TIMED_OUT and "longer than 8 s" in result.detail
    assert took < 30
    pid = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # A zombie that nobody reaps still answers kill(0): read its state.
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2] if pathlib.Path(f"/proc/{pid}").exists() else "X"
        if state in ("Z", "X"):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the worker's child {pid} outlived the kill")


def test_sandbox_failure_is_reported_as_a_state_not_a_message(tmp_path):
    body = ("from autograder.kernel import SandboxUnavailable\n"
            "try:\n    raise SandboxUnavailable('bwrap is broken here')\nexcept SandboxUnavailable:\n    pass\n")
    root = course_whose_config(tmp_path, body)
    with workers.WorkerPool(1) as pool:
        result = pool.grade_one(workers.StudentTask(str(root), "99_fixture", "s", timeout=120))
    assert result.state is workers.TaskState.SANDBOX_UNAVAILABLE and "bwrap is broken here" in result.detail


def test_threads_per_kernel_never_oversubscribe_the_cores(tmp_path):
    assert workers.thread_limits(1, cores=8) == 8
    assert workers.thread_limits(2, cores=8) == 4
    assert workers.thread_limits(3, cores=8) == 2
    assert workers.thread_limits(16, cores=8) == 1
    from traitlets.config import Config
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.GradingSandbox.threads = 3
    settings = kernel.GradingSandbox(config=config).settings_for("a", "s", tmp_path / "runtime")
    for name in kernel.THREAD_VARIABLES:
        assert settings.kernel_env[name] == "3"
    config.GradingSandbox.threads = 0
    settings = kernel.GradingSandbox(config=config).settings_for("a", "s", tmp_path / "runtime")
    assert not set(kernel.THREAD_VARIABLES) & set(settings.kernel_env)


def test_default_jobs_fit_in_memory(monkeypatch):
    monkeypatch.setattr(workers, "usable_cores", lambda: 8)
    monkeypatch.setattr(workers, "physical_memory_mb", lambda: 16384)
    assert workers.default_jobs(6144) == 2      # 3 kernels at their limit would not fit
    assert workers.default_jobs(1024) == 8      # then the cores decide
    monkeypatch.setattr(workers, "physical_memory_mb", lambda: 4096)
    assert workers.default_jobs(6144) == 1      # never 0
    monkeypatch.setattr(workers, "physical_memory_mb", lambda: None)
    assert workers.default_jobs(6144) == 8


def test_jobs_must_be_positive(tmp_path):
    from autograder.__main__ import main
    assert main(["grade", "99_fixture", str(tmp_path), "--out", str(tmp_path / "out"), "--jobs", "0"]) == 2
    with pytest.raises(ValueError, match="at least 1"):
        workers.WorkerPool(0)


@pytest.mark.slow
def test_class_report_of_the_batch_matches_its_breakdown(serial):
    import html as html_module

    import nbformat

    from autograder.feedback import hidden_lines_of
    page = (serial["out"] / "report.html").read_text()
    rows = read(serial["out"] / "breakdown.csv")
    for cell in sorted({r["cell"] for r in rows}):
        mine = [r for r in rows if r["cell"] == cell]
        if any(r["status"] == "manual" for r in mine):
            continue
        passed = sum(r["status"] == "passed" for r in mine)
        expected = (f"<td>99_fixture</td><td>{cell}</td><td>{mine[0]['max_points']}</td><td>{passed}</td>"
                    f"<td>{len(mine)}</td><td>{100 * passed / len(mine):.0f} %</td>")
        assert expected in page, (cell, expected)
    for r in rows:
        if r["status"] in ("timeout", "kernel-died", "tampered", "corrupt notebook", "missing", "refused", "error"):
            assert f"<td>{html_module.escape(r['student_id'])}</td><td>99_fixture</td><td>{r['cell']}</td>" in page
    hidden = hidden_lines_of(nbformat.read(SOURCE / "99_fixture" / "99_fixture.ipynb", as_version=4))
    assert hidden and not [line for line in hidden if line in page or html_module.escape(line) in page]


@pytest.mark.slow
def test_feedback_names_no_grader_folder(serial):
    """Tracebacks and warnings quote the kernel's files: the student reads ~ for their own
    folder, never where the instructor keeps the batch (issue: students' clients, item 7)."""
    pages = {p: p.read_text() for p in (serial["out"] / "feedback").rglob("*.html")}
    assert pages
    for path, page in pages.items():
        for private in (str(serial["out"]), str(ROOT), "_nbgrader/scratch"):
            assert private not in page, (path.name, private)
    warned = pages[serial["out"] / "feedback" / "stderr_noise" / "99_fixture.html"]
    assert "~/tmp/ipykernel" in warned and "this softmax prints debug output" in warned
