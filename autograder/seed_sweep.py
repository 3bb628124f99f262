"""Hidden tests under many grading seeds: ``python -m autograder seed-sweep ASSIGNMENT``.

Hidden tests draw their inputs from ``dlcourse.checks.grading_rng``, seeded per
student by the grader. A test that is right for most draws but fails a correct
solution for an unlucky one (a tolerance too tight for an ill-conditioned
input, a statistic at its edge, a random parameter at a boundary) costs some
students points they earned. This sweep finds such tests before students do.

It executes the master (solutions and all tests) once, top to bottom, from a
temporary copy of its folder, in a kernel in the ``ci`` profile with a fresh experiment cache; then, for each of
``--seeds`` grading seeds, sets ``DLCOURSE_GRADING_SEED`` in that kernel and
re-runs every graded test cell. Every failure is a defect of the test (the
solution is correct by construction): the report lists the grade id, how many
seeds failed, which ones, and the first error, and the exit status is 1.

Seeds are the strings ``"0"``, ``"1"``, ... (``--first-seed`` moves the
window); the grader's per-student seeds are HMAC-derived integers, and
``grading_rng`` hashes either form the same way, so any window is an
independent sample of what students get. A failure is reproduced by setting
``DLCOURSE_GRADING_SEED`` to the reported seed before running the test cell.

Cost: one ``ci`` execution of the notebook plus ``seeds x`` (time of its graded
cells); most notebooks need 1-3 s per seed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

import nbformat

from dlcourse.checks import GRADING_SEED_VAR as SEED_VAR

from .execution import NotebookRun, error_summary


@dataclasses.dataclass
class CellReport:
    grade_id: str
    runs: int = 0
    failed_seeds: list = dataclasses.field(default_factory=list)
    first_error: str = ""
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        return len(self.failed_seeds)


def graded_test_cells(nb) -> list[tuple[int, nbformat.NotebookNode]]:
    from .notebook_format import is_graded_code

    return [(i, c) for i, c in enumerate(nb.cells) if is_graded_code(c)]


def sweep(master: pathlib.Path, seeds: int, *, first_seed: int = 0, timeout: int = 300,
          profile: str = "ci", log=print) -> list[CellReport]:
    """Run the master once, then its graded test cells under ``seeds`` grading seeds."""
    return run_and_sweep(master, seeds, first_seed=first_seed, timeout=timeout, profile=profile, log=log)[1]


def run_and_sweep(master: pathlib.Path, seeds: int, *, first_seed: int = 0, timeout: int = 300,
                  profile: str = "ci", log=print) -> tuple[NotebookRun, list[CellReport]]:
    """Run the master once (raises RuntimeError naming the first cell that fails), then its graded
    test cells under ``seeds`` grading seeds (0: none) in the same kernel."""
    from nbclient.exceptions import CellExecutionError

    from .execution import CellFailed, execute_cells, notebook_client, notebook_env

    nb = nbformat.read(master, as_version=4)
    tests = graded_test_cells(nb)
    if not tests:
        raise ValueError(f"{master} has no graded test cells (nbgrader grade: true)")
    reports = {c.metadata["nbgrader"]["grade_id"]: CellReport(c.metadata["nbgrader"]["grade_id"]) for _, c in tests}

    with tempfile.TemporaryDirectory(prefix="seed-sweep-") as tmp:
        # Run in a copy of the topic folder: notebooks write figures, logs and checkpoints beside themselves.
        workdir = os.path.join(tmp, master.parent.name)
        shutil.copytree(master.parent, workdir)
        env = notebook_env(profile, cache_dir=os.path.join(tmp, "experiment-cache"), grading_seed=first_seed)
        client = notebook_client(nb, workdir, tmp, timeout=timeout)
        with client.setup_kernel(env=env):
            try:
                run = execute_cells(client, nb)
            except CellFailed as failed:
                raise RuntimeError(f"{master.name}: cell {failed.index} failed in the first, ordinary run, "
                                   f"before any seed was swept: {failed.summary}") from None
            log(f"{master.parent.name}: executed once in {run.seconds:.0f} s; "
                f"{len(tests)} graded cells x {seeds} seeds")
            sweep_start = time.perf_counter()
            for done, seed in enumerate(range(first_seed, first_seed + seeds)):
                if done and done % 25 == 0:
                    log(f"  {done} seeds in {time.perf_counter() - sweep_start:.0f} s, "
                        f"{sum(r.failures for r in reports.values())} failure(s) so far")
                setter = nbformat.v4.new_code_cell(f"import os; os.environ[{SEED_VAR!r}] = {str(seed)!r}")
                client.execute_cell(setter, 0)
                for index, cell in tests:
                    report = reports[cell.metadata["nbgrader"]["grade_id"]]
                    probe = nbformat.v4.new_code_cell(cell.source)   # a copy: the master's outputs stay as they were
                    t0 = time.perf_counter()
                    try:
                        client.execute_cell(probe, index)
                    except CellExecutionError as exc:
                        report.failed_seeds.append(seed)
                        report.first_error = report.first_error or error_summary(exc)
                        log(f"  FAIL {report.grade_id} seed {seed}: {error_summary(exc)}")
                    report.runs += 1
                    report.seconds += time.perf_counter() - t0
    return run, list(reports.values())


def table(reports: list[CellReport]) -> str:
    rows = ["| grade id | runs | failures | failed seeds | mean s per run | first error |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in reports:
        seeds = ", ".join(map(str, r.failed_seeds[:10])) + (" ..." if r.failures > 10 else "")
        mean = r.seconds / r.runs if r.runs else 0.0
        rows.append(f"| {r.grade_id} | {r.runs} | {r.failures} | {seeds} | {mean:.2f} | "
                    f"{r.first_error.replace('|', '/')} |")
    return "\n".join(rows)


def main(assignments: list[str], *, seeds: int, first_seed: int, timeout: int, source_dir: pathlib.Path,
         json_out: pathlib.Path | None) -> int:
    from .build import find_masters

    masters = {p.parent.name: p for p in find_masters(source_dir)}
    if not masters:
        print(f"error: no masters (NN_topic/NN_topic.ipynb) under {source_dir}", file=sys.stderr)
        return 2
    chosen = []
    for name in assignments:
        hits = [m for folder, m in masters.items() if folder == name or folder.startswith(name)]
        if len(hits) != 1:
            print(f"error: {name!r} matches {len(hits)} assignments of {source_dir}; "
                  f"choose one of: {', '.join(masters)}", file=sys.stderr)
            return 2
        chosen.append(hits[0])
    if seeds < 1:
        print(f"error: --seeds must be at least 1, got {seeds}", file=sys.stderr)
        return 2

    results, failed = {}, False
    for master in chosen:
        start = time.perf_counter()
        try:
            reports = sweep(master, seeds, first_seed=first_seed, timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(table(reports), flush=True)
        bad = [r for r in reports if r.failures]
        failed |= bool(bad)
        print(f"{master.parent.name}: {seeds} seeds ({first_seed}..{first_seed + seeds - 1}), "
              f"{'FLAKY: ' + ', '.join(r.grade_id for r in bad) if bad else 'no failure'}, "
              f"{time.perf_counter() - start:.0f} s\n", flush=True)
        results[master.parent.name] = {
            "seeds": seeds, "first_seed": first_seed, "seconds": round(time.perf_counter() - start, 1),
            "cells": [dataclasses.asdict(r) for r in reports]}
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0
