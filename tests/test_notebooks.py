"""Every notebook, executed in the ``ci`` profile, three times each:

- ``python -m autograder verify`` (``autograder/verify.py``), the command authors run: the master
  runs top to bottom without an error or a line on stderr, then, in the same kernel, its graded
  tests pass under CI_SEEDS more grading seeds (maintainers sweep 100+ seeds per notebook,
  recorded in benchmarks/RESULTS.md); and every graded test cell fails on the student version
  (``Validator(invert=True)``). The first three tests below read one verification per notebook;
- the solution version runs top to bottom under nbval (``pytest --nbval-lax``).

Budget: under 60 s per execution in ``ci``; the slowest executions are reported by
``pytest --durations`` (and ``verify`` prints each master's time and peak memory).
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
from autograder.verify import verify

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


_verified: dict = {}


def verified(master: pathlib.Path):
    """The notebook's verification, run once for the three tests that read it."""
    topic = master.parent.name
    if topic not in _verified:
        _verified[topic] = verify(topic, root=ROOT, seeds=CI_SEEDS, first_seed=CI_FIRST_SEED,
                                  timeout=CELL_TIMEOUT, log=lambda *a: None)
        print(_verified[topic].summary())
    return _verified[topic]


def graded_test_ids(path: pathlib.Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_graded_code(c)]


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_master_passes_its_own_tests(master, ci_profile):
    assert graded_test_ids(master), "a master without graded test cells"
    result = verified(master)
    assert not result.master_error, f"the master fails: {result.master_error}"
    assert not result.master.stderr_cells, f"cells of the master write to stderr: {result.master.stderr_cells}"


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_hidden_tests_pass_the_master_under_many_grading_seeds(master, ci_profile):
    result = verified(master)
    assert not result.master_error, f"the master fails before any seed is swept: {result.master_error}"
    flaky = [f"{r.grade_id}: fails for grading seeds {r.failed_seeds} ({r.first_error}); reproduce with "
             f"`python -m autograder seed-sweep {master.parent.name} --first-seed {r.failed_seeds[0]} --seeds 1`"
             for r in result.sweep if r.failures]
    assert not flaky, "hidden tests that fail a correct solution for some students:\n" + "\n".join(flaky)
    assert all(r.runs == CI_SEEDS for r in result.sweep)


@pytest.mark.parametrize("master", MASTERS, ids=IDS)
def test_every_graded_test_fails_on_the_student_version(master, ci_profile):
    topic = master.parent.name
    student = ROOT / "notebooks" / topic / f"{topic}.ipynb"
    assert student.is_file(), f"{student} is missing: run `python -m autograder build`"
    result = verified(master)
    assert not result.stub_error, result.stub_error
    assert not result.stub_passed, \
        "these test cells pass on the unsolved stubs (they test nothing):\n" + "\n\n".join(result.stub_passed)


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
