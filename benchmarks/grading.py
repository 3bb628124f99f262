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
