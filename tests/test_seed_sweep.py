"""``python -m autograder seed-sweep``: hidden tests re-run under many grading seeds.

Fixture masters with a stable and a deliberately seed-dependent test; the sweep
must report exactly the seeds on which the flaky test fails (recomputed here
from ``dlcourse.checks.grading_rng``), and exit 1 only when something failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT
from dlcourse import checks


def _master(source, name, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text, grade_id in cells:
        cell = nbformat.v4.new_code_cell(text) if kind == "code" else nbformat.v4.new_markdown_cell(text)
        if grade_id:
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 1, "locked": True,
                                         "solution": False, "schema_version": 3}
        nb.cells.append(cell)
    path = source / name / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, str(path))
    return path


SETUP = ("code", "import os\nfrom dlcourse.checks import grading_rng\nruns = 0", None)
STABLE = ("code", "runs += 1\nassert 0.0 <= grading_rng('stable').random() < 1.0", "test_stable")
FLAKY = ("code", "assert grading_rng('flaky').random() < 0.7, 'unlucky draw'", "test_flaky")


def _sweep(source, *args, env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, "-m", "autograder", "seed-sweep", *args, "--source", str(source)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _expected_failures(seeds, monkeypatch):
    failing = []
    for seed in seeds:
        monkeypatch.setenv(checks.GRADING_SEED_VAR, str(seed))
        if not checks.grading_rng("flaky").random() < 0.7:
            failing.append(seed)
    return failing


def test_sweep_reports_the_seeds_a_flaky_test_fails_on(tmp_path, monkeypatch):
    source = tmp_path / "source"
    _master(source, "01_fixture", [SETUP, ("markdown", "Some prose.", None), STABLE, FLAKY])
    out = tmp_path / "sweep.json"
    proc = _sweep(source, "01", "--seeds", "20", "--first-seed", "5", "--json", str(out))
    assert proc.returncode == 1, f"a failing seed must give exit 1, got {proc.returncode}\n{proc.stdout}{proc.stderr}"

    expected = _expected_failures(range(5, 25), monkeypatch)
    assert 0 < len(expected) < 20, "fixture: the flaky test should fail on some of these seeds, not all"
    cells = {c["grade_id"]: c for c in json.loads(out.read_text())["01_fixture"]["cells"]}
    assert cells["test_flaky"]["failed_seeds"] == expected
    assert cells["test_flaky"]["runs"] == 20 and "unlucky draw" in cells["test_flaky"]["first_error"]
    assert cells["test_stable"]["failed_seeds"] == [] and cells["test_stable"]["runs"] == 20
    assert "FLAKY: test_flaky" in proc.stdout
    assert f"| test_flaky | 20 | {len(expected)} |" in proc.stdout


def test_sweep_of_a_sound_master_exits_0_and_sets_each_seed(tmp_path):
    source = tmp_path / "source"
    seen = tmp_path / "seen.txt"
    record = ("code", "with open(os.environ['SEEN_FILE'], 'a') as f:\n"
                      "    f.write(os.environ['DLCOURSE_GRADING_SEED'] + ' ' + os.getcwd() + '\\n')", "test_record")
    master = _master(source, "02_sound", [SETUP, STABLE, record])
    proc = _sweep(source, "02_sound", "--seeds", "3", "--first-seed", "7", env={"SEEN_FILE": str(seen)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| test_stable | 3 | 0 |" in proc.stdout and "| test_record | 3 | 0 |" in proc.stdout
    assert "no failure" in proc.stdout
    lines = [line.split(" ", 1) for line in seen.read_text().splitlines()]
    assert [seed for seed, _ in lines] == ["7", "7", "8", "9"], "the ordinary run, then one run per seed"
    assert all(cwd != str(master.parent) for _, cwd in lines), "must run in a copy, not in source/"
    assert sorted(p.name for p in master.parent.iterdir()) == ["02_sound.ipynb"], "source/ was written to"


def test_sweep_refuses_a_master_that_fails_before_any_seed(tmp_path):
    source = tmp_path / "source"
    _master(source, "03_broken", [("code", "raise RuntimeError('the solution is broken')", None), STABLE])
    proc = _sweep(source, "03", "--seeds", "2")
    assert proc.returncode == 2
    assert "failed in the first, ordinary run" in proc.stderr and "the solution is broken" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["99", "--seeds", "2"], "matches 0 assignments"),
    (["01", "--seeds", "0"], "--seeds must be at least 1"),
])
def test_sweep_rejects_bad_arguments(tmp_path, args, message):
    source = tmp_path / "source"
    _master(source, "01_fixture", [SETUP, STABLE])
    proc = _sweep(source, *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
