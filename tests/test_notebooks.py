"""Every notebook, executed in the ``ci`` profile, exactly four times each:

- the master passes its own tests (``nbgrader.validator.Validator``, result dict read);
- the master's graded tests pass under CI_SEEDS more grading seeds (``python -m autograder
  seeds``; maintainers sweep 100+ seeds per notebook, recorded in benchmarks/RESULTS.md);
- every graded test cell fails on the student version (``Validator(invert=True)``);
- the solution version runs top to bottom under nbval (``pytest --nbval-lax``).

Budget: under 60 s per execution in ``ci``; the slowest executions are reported by
``pytest --durations``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import nbformat
import pytest

from autograder import build
from autograder.notebook_format import is_graded_code

ROOT = pathlib.Path(__file__).resolve().parents[1]
MASTERS = build.find_masters(ROOT / "source")
IDS = [p.parent.name for p in MASTERS]
CELL_TIMEOUT = 300  # a hung cell fails the test instead of the whole CI run
# Grading seeds per master in CI: a window of its own (10000...), disjoint from the maintainers'
# sweeps (0...), so every CI run adds evidence that no student's draw fails a correct solution.
CI_SEEDS, CI_FIRST_SEED = 20, 10_000

pytestmark = pytest.mark.slow


@pytest.fixture
def ci_profile(monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROFILE", "ci")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")


def validator(*, invert: bool):
    from nbgrader.validator import Validator
    from traitlets.config import Config

    config = Config()
    config.Execute.timeout = CELL_TIMEOUT
    config.Validator.invert = invert
    return Validator(config=config)


def graded_test_ids(path: pathlib.Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_graded_code(c)]


def _short(items, key):
    return "\n\n".join(f"--- {it['source'][:300]}\n{it.get(key, '')[-1500:]}" for it in items)


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_master_passes_its_own_tests(master, ci_profile):
    assert graded_test_ids(master), "a master without graded test cells"
    results = validator(invert=False).validate(str(master))
    assert "type_changed" not in results and "changed" not in results, results
    assert not results.get("failed"), f"test cells fail on the master:\n{_short(results['failed'], 'raw_error')}"


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_hidden_tests_pass_the_master_under_many_grading_seeds(master, ci_profile):
    from autograder.seed_sweep import sweep

    reports = sweep(master, CI_SEEDS, first_seed=CI_FIRST_SEED, timeout=CELL_TIMEOUT, log=lambda *a: None)
    flaky = [f"{r.grade_id}: fails for grading seeds {r.failed_seeds} ({r.first_error}); reproduce with "
             f"`python -m autograder seed-sweep {master.parent.name} --first-seed {r.failed_seeds[0]} --seeds 1`"
             for r in reports if r.failures]
    assert not flaky, "hidden tests that fail a correct solution for some students:\n" + "\n".join(flaky)
    assert all(r.runs == CI_SEEDS for r in reports)


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_every_graded_test_fails_on_the_student_version(master, ci_profile):
    topic = master.parent.name
    student = ROOT / "notebooks" / topic / f"{topic}.ipynb"
    assert student.is_file(), f"{student} is missing: run `python -m autograder build`"
    results = validator(invert=True).validate(str(student))
    assert "type_changed" not in results and "changed" not in results, results
    assert not results.get("passed"), \
        f"these test cells pass on the unsolved stubs (they test nothing):\n{_short(results['passed'], 'source')}"


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_solution_runs_under_nbval(master, ci_profile):
    topic = master.parent.name
    solution = ROOT / "solutions" / topic / f"{topic}.ipynb"
    assert solution.is_file(), f"{solution} is missing: run `python -m autograder build`"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", f"--nbval-cell-timeout={CELL_TIMEOUT}", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "-o", "testpaths=", str(solution)],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ), timeout=20 * CELL_TIMEOUT)
    assert proc.returncode == 0, f"nbval failed on {solution.relative_to(ROOT)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
