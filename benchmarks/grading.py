"""Seconds per graded notebook, with and without the bubblewrap sandbox.

    flock /tmp/dlcourse-cpu.lock python benchmarks/grading.py                     # every master, 1 student
    flock /tmp/dlcourse-cpu.lock python benchmarks/grading.py --students 3 --assignments 00 01

For each assignment (default: every master in source/), grades N copies of a
fully correct submission (the student version with every answer filled in
from the master) twice: in the sandbox and with --no-sandbox, in the ``ci``
profile with the grader's default limits. Recorded per (assignment, sandbox):
the per-student wall time (the nbgrader process: start, sanitizing, kernel
start, every cell, saving grades) as median/min/max, the batch total (adds the
one-off work: copying the master, generate_assignment, the sandbox probe,
export and feedback) and how many graded cells did not pass (must be 0).

Rows are merged into ``benchmarks/results/grading.csv`` by (assignment,
sandbox); a markdown table of this run is printed. Exit status 1 when a
correct submission lost points (a grading defect).

Throughput mode (class scale, issue "grading at class scale"):

    flock /tmp/dlcourse-cpu.lock python benchmarks/grading.py --throughput 8 --assignments 00 --jobs 1 2

grades a batch of N correct submissions of each chosen notebook, one after the other in one
run: plain nbgrader in a bare course folder (its own config only: no sandbox, no guards; the
commands an instructor would type, ``generate_assignment``, ``autograde`` for everyone in one
process, ``generate_feedback``, ``export``), then the course's grader at each ``--jobs``
value (and, with ``--dask-workers 1 2``, on a Dask LocalCluster of that many one-thread
workers). Recorded per row: wall time of the whole batch, of autograding alone, seconds per
student (batch wall / N) and the ratio of the batch wall to plain nbgrader's; rows go to
``benchmarks/results/throughput.csv`` (``--throughput-out``) and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from autograder import build  # noqa: E402
from autograder import grade as grading  # noqa: E402
from autograder.execution import notebook_env  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "grading.csv"
FIELDS = ["assignment", "sandbox", "students", "median_s_per_notebook", "min_s", "max_s", "batch_s",
          "cells_not_passed", "date_utc", "load_avg_before"]


def measure(source: pathlib.Path, assignment: str, students: int) -> list[dict]:
    master_path = source / assignment / f"{assignment}.ipynb"
    master = build.sync_master(build.read_notebook(master_path), assignment, build.repository_url(ROOT))
    submission = grading.correct_submission(master, build.student_version(master, assignment))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for i in range(students):
            path = tmp / "subs" / f"student{i}" / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(submission, path)
        for sandbox in (True, False):
            timings: dict[str, float] = {}
            out = tmp / f"out-{'sandbox' if sandbox else 'plain'}"
            load = " ".join(f"{v:.2f}" for v in os.getloadavg())
            start = time.monotonic()
            grading.grade(assignment, tmp / "subs", out, source_dir=source,
                          options=grading.GradeOptions(sandbox=sandbox), timings=timings)
            total = time.monotonic() - start
            lines = (out / "breakdown.csv").read_text().splitlines()[1:]
            lost = [r for r in lines if ",passed," not in r and ",manual," not in r]
            for r in lost:
                print(f"    NOT PASSED ({assignment}, sandbox {'on' if sandbox else 'off'}): {r}", flush=True)
            per = sorted(timings.values())
            rows.append({
                "assignment": assignment, "sandbox": "on" if sandbox else "off", "students": len(per),
                "median_s_per_notebook": round(statistics.median(per), 1), "min_s": round(per[0], 1),
                "max_s": round(per[-1], 1), "batch_s": round(total, 1), "cells_not_passed": len(lost),
                "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
                "load_avg_before": load})
            print(f"{assignment} sandbox={rows[-1]['sandbox']}: {rows[-1]['median_s_per_notebook']} s per notebook "
                  f"(batch {rows[-1]['batch_s']} s), cells not passed: {len(lost)}", flush=True)
    return rows


THROUGHPUT_FIELDS = ["assignment", "grader", "jobs", "students", "batch_s", "autograde_s", "s_per_student",
                     "ratio_to_plain", "points", "max_points", "date_utc", "cpus", "load_avg_before"]
DEFAULT_THROUGHPUT_OUT = ROOT / "benchmarks" / "results" / "throughput.csv"


def _nbgrader(course: pathlib.Path, *args: str, env: dict) -> float:
    import subprocess
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"plain nbgrader {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


def plain_nbgrader(tmp: pathlib.Path, assignment: str, master, submission, students: int) -> dict:
    """A bare nbgrader course folder graded the way nbgrader's documentation shows."""
    course = tmp / "plain"
    (course / "source" / assignment).mkdir(parents=True)
    nbformat.write(master, course / "source" / assignment / f"{assignment}.ipynb")
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
                                                "c.ExecutePreprocessor.timeout = 300\n")
    env = notebook_env("ci", cache_dir=tmp / "plain-cache")
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    started = time.monotonic()
    _nbgrader(course, "generate_assignment", assignment, "--force", env=env)
    for i in range(students):
        path = course / "submitted" / f"student{i}" / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(submission, path)
    autograde = _nbgrader(course, "autograde", assignment, "--force", env=env)
    _nbgrader(course, "generate_feedback", assignment, "--force", env=env)
    _nbgrader(course, "export", "--to", str(tmp / "plain-grades.csv"), env=env)
    batch = time.monotonic() - started
    with open(tmp / "plain-grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not any(float(r["raw_score"] or 0) for r in rows):
        raise SystemExit(f"plain nbgrader scored 0 for every correct submission: its kernels could not run the "
                         f"notebook (is dlcourse importable by {sys.executable} outside the repository?)")
    return {"batch_s": batch, "autograde_s": autograde, "points": sum(float(r["raw_score"]) for r in rows),
            "max_points": sum(float(r["max_score"]) for r in rows)}


def throughput(source: pathlib.Path, assignment: str, students: int, jobs_list: list[int],
               dask_workers: list[int] = (), plain: bool = True) -> list[dict]:
    master_path = source / assignment / f"{assignment}.ipynb"
    master = build.sync_master(build.read_notebook(master_path), assignment, build.repository_url(ROOT))
    submission = grading.correct_submission(master, build.student_version(master, assignment))
    cpus = os.cpu_count()
    rows = []

    def row(grader, jobs, result):
        return {"assignment": assignment, "grader": grader, "jobs": jobs, "students": students,
                "batch_s": round(result["batch_s"], 1), "autograde_s": round(result["autograde_s"], 1),
                "s_per_student": round(result["batch_s"] / students, 2), "points": result["points"],
                "max_points": result["max_points"], "cpus": cpus,
                "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
                "load_avg_before": result["load"]}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        if plain:
            load = " ".join(f"{v:.2f}" for v in os.getloadavg())
            result = plain_nbgrader(tmp, assignment, master, submission, students)
            rows.append(row("plain nbgrader", 1, {**result, "load": load}))
            print(f"{assignment} plain nbgrader: batch {result['batch_s']:.1f} s (autograde "
                  f"{result['autograde_s']:.1f} s), {result['points']:g}/{result['max_points']:g} points", flush=True)
        subs = tmp / "subs"
        for i in range(students):
            path = subs / f"student{i}" / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(submission, path)
        runs = [("course grader", jobs) for jobs in jobs_list] + [("dask LocalCluster", n) for n in dask_workers]
        for grader, jobs in runs:
            out = tmp / f"out-{grader.split()[0]}-{jobs}"
            load = " ".join(f"{v:.2f}" for v in os.getloadavg())
            timings: dict[str, float] = {}
            cluster = None
            if grader.startswith("dask"):
                from distributed import LocalCluster
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
            started = time.monotonic()
            try:
                grading.grade(assignment, subs, out, source_dir=source, timings=timings,
                              options=grading.GradeOptions(jobs=jobs, progress=False,
                                                           scheduler=cluster.scheduler_address if cluster else None))
            finally:
                batch = time.monotonic() - started
                if cluster is not None:
                    cluster.close()
            with open(out / "breakdown.csv", newline="") as fh:
                cells = list(csv.DictReader(fh))
            log = (out / "grading.log").read_text()
            # Autograding alone: from the first student handed to a worker to the last result.
            stamps = [line[:23] for line in log.splitlines() if " students, " in line or " graded in " in line]
            fmt = "%Y-%m-%d %H:%M:%S,%f"
            autograde = (datetime.datetime.strptime(stamps[-1], fmt)
                         - datetime.datetime.strptime(stamps[0], fmt)).total_seconds()
            result = {"batch_s": batch, "autograde_s": autograde, "load": load,
                      "points": sum(float(r["points"] or 0) for r in cells if r["status"] != "manual"),
                      "max_points": sum(float(r["max_points"]) for r in cells if r["status"] != "manual")}
            rows.append(row(grader, jobs, result))
            print(f"{assignment} {grader} {'workers' if cluster else '--jobs'} {jobs}: batch {batch:.1f} s (autograde {autograde:.1f} s), "
                  f"median {statistics.median(timings.values()):.1f} s per student in its worker", flush=True)
    plain_s = rows[0]["batch_s"] if plain else None
    for r in rows:
        r["ratio_to_plain"] = round(r["batch_s"] / plain_s, 2) if plain_s else ""
    return rows


def throughput_table(rows: list[dict]) -> str:
    lines = ["| assignment | grader | jobs | students | batch (s) | autograde (s) | s per student | "
             "ratio to plain | automatic points |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['assignment']} | {r['grader']} | {r['jobs']} | {r['students']} | {r['batch_s']} | "
                     f"{r['autograde_s']} | {r['s_per_student']} | {r['ratio_to_plain']} | "
                     f"{r['points']:g}/{r['max_points']:g} |")
    return "\n".join(lines)


def merge_csv(path: pathlib.Path, new: list[dict]) -> None:
    old = list(csv.DictReader(path.open(newline=""))) if path.exists() else []
    rows = {(r["assignment"], r["sandbox"]): r for r in old}
    rows.update({(r["assignment"], r["sandbox"]): r for r in new})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows.values(), key=lambda r: (r["assignment"], r["sandbox"] != "on")))
    os.replace(tmp, path)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| assignment | students | sandbox on: s per notebook | sandbox off: s per notebook | "
             "batch on / off (s) | cells not passed |", "| --- | --- | --- | --- | --- | --- |"]
    by = {}
    for r in rows:
        by.setdefault(r["assignment"], {})[r["sandbox"]] = r
    for name, pair in by.items():
        on, off = pair.get("on"), pair.get("off")

        def cell(r):
            if not r:
                return "—"
            return (f"{r['median_s_per_notebook']}" if int(r["students"]) == 1
                    else f"{r['median_s_per_notebook']} ({r['min_s']}–{r['max_s']})")
        lost = sum(int(r["cells_not_passed"]) for r in pair.values())
        students = (on or off)["students"]
        lines.append(f"| {name} | {students} | {cell(on)} | {cell(off)} | "
                     f"{on['batch_s'] if on else '—'} / {off['batch_s'] if off else '—'} | {lost} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1, help="correct submissions per assignment (default 1)")
    parser.add_argument("--assignments", nargs="+", metavar="NAME",
                        help="assignments or prefixes (00, 02_dropout); default: every master")
    parser.add_argument("--source", type=pathlib.Path, default=ROOT / "source", help="folder of masters")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="CSV to merge rows into (%(default)s)")
    parser.add_argument("--throughput", type=int, default=0, metavar="N",
                        help="throughput mode: a batch of N correct submissions, plain nbgrader vs the course's grader")
    parser.add_argument("--jobs", type=int, nargs="+", default=None,
                        help="--jobs values of the course's grader in throughput mode (default: 1 and the core count)")
    parser.add_argument("--dask-workers", type=int, nargs="*", default=[],
                        help="throughput mode: also grade on a Dask LocalCluster of each of these sizes")
    parser.add_argument("--no-plain", action="store_true", help="throughput mode: skip plain nbgrader")
    parser.add_argument("--throughput-out", type=pathlib.Path, default=DEFAULT_THROUGHPUT_OUT,
                        help="CSV the throughput rows are appended to (%(default)s)")
    args = parser.parse_args(argv)
    if args.students < 1:
        parser.error(f"--students must be at least 1, got {args.students}")
    names = [p.parent.name for p in build.find_masters(args.source)]
    if not names:
        parser.error(f"no masters under {args.source}")
    chosen = names
    if args.assignments:
        unknown = [a for a in args.assignments if not any(n == a or n.startswith(a) for n in names)]
        if unknown:
            parser.error(f"--assignments: no master matches {unknown}; available: {', '.join(names)}")
        chosen = [n for n in names if any(n == a or n.startswith(a) for a in args.assignments)]

    if args.throughput:
        jobs_list = args.jobs or sorted({1, os.cpu_count() or 1})
        print(f"throughput: {len(chosen)} assignment(s), {args.throughput} correct submissions each, --jobs "
              f"{jobs_list}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
        rows = []
        for name in chosen:
            rows += throughput(args.source, name, args.throughput, jobs_list, args.dask_workers, not args.no_plain)
        new = not args.throughput_out.exists()
        args.throughput_out.parent.mkdir(parents=True, exist_ok=True)
        with args.throughput_out.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=THROUGHPUT_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
        print(throughput_table(rows))
        print(f"appended to {args.throughput_out}")
        lost = [r for r in rows if r["grader"] != "plain nbgrader" and r["points"] != r["max_points"]]
        return 1 if lost else 0
    print(f"{len(chosen)} assignment(s), {args.students} correct submission(s) each; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    measured = []
    for name in chosen:
        rows = measure(args.source, name, args.students)
        measured += rows
        merge_csv(args.out, rows)   # keep what is done if interrupted
    print(markdown_table(measured))
    print(f"wrote {args.out}")
    return 1 if any(r["cells_not_passed"] for r in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
