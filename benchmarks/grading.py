"""Seconds per graded notebook, with and without the bubblewrap sandbox.

    flock /tmp/dlcourse-cpu.lock python benchmarks/grading.py [--students 3] [--assignment 00_getting_started]

Grades N copies of a fully correct submission of the assignment (default: 00_getting_started
when source/ has it, else the NumPy fixture of tests/fixtures) twice: in the sandbox and with
--no-sandbox. Prints the per-student wall time (nbgrader process start, sanitizing, kernel
start, execution of every cell, saving grades) and the batch total. Record the numbers in
benchmarks/results/grading.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from autograder import build  # noqa: E402
from autograder import grade as grading  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--assignment", default=None)
    args = parser.parse_args()
    source = ROOT / "source"
    assignment = args.assignment or "00_getting_started"
    if not (source / assignment / f"{assignment}.ipynb").is_file():
        source, assignment = ROOT / "tests" / "fixtures" / "source", "99_fixture"
    master_path = source / assignment / f"{assignment}.ipynb"
    url = build.repository_url(ROOT)
    master = build.sync_master(build.read_notebook(master_path), assignment, url)
    submission = grading.correct_submission(master, build.student_version(master, assignment))

    print(f"{assignment}: {args.students} correct submissions; {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for i in range(args.students):
            path = tmp / "subs" / f"student{i}" / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(submission, path)
        for sandbox in (True, False):
            timings: dict[str, float] = {}
            out = tmp / f"out-{'sandbox' if sandbox else 'plain'}"
            start = time.monotonic()
            grading.grade(assignment, tmp / "subs", out, source_dir=source,
                          options=grading.GradeOptions(sandbox=sandbox), timings=timings)
            total = time.monotonic() - start
            rows = (out / "breakdown.csv").read_text().splitlines()[1:]
            lost = [r for r in rows if ",passed," not in r and ",manual," not in r]
            per = sorted(timings.values())
            print(f"sandbox={'on ' if sandbox else 'off'}: per notebook median {statistics.median(per):.1f} s "
                  f"(min {per[0]:.1f}, max {per[-1]:.1f}); batch of {len(per)} in {total:.1f} s "
                  f"(setup, export and feedback included); cells not passed: {len(lost)}")
            for r in lost:
                print("   ", r)


if __name__ == "__main__":
    main()
