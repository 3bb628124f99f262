"""The API reference builds from the docstrings with pdoc, without a single pdoc warning."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_api_docs.py"
KEY_PAGES = ["index.html", "dlcourse.html", "dlcourse/data.html", "dlcourse/train.html",
             "dlcourse/callbacks.html", "dlcourse/checks.html", "dlcourse/profiles.html",
             "dlcourse/experiments.html", "dlcourse/plots.html", "dlcourse/frameworks.html",
             "autograder/build.html", "autograder/verify.html"]


def _build(out: pathlib.Path, *modules: str, pythonpath: str = str(ROOT)) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": pythonpath, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *modules], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path):
    result = _build(tmp_path)
    assert result.returncode == 0, f"pdoc warned or failed:\n{result.stderr}"
    assert "pdoc:" not in result.stderr
    missing = [page for page in KEY_PAGES if not (tmp_path / page).is_file()]
    assert not missing, f"pages missing from the API reference: {missing}"
    data_page = (tmp_path / "dlcourse" / "data.html").read_text(encoding="utf-8")
    for name in ("load_mnist", "make_splits", "torch_loader"):  # re-exported from the data modules
        assert f'id="{name}"' in data_page, f"dlcourse.data page lacks {name}"
    assert 'id="fit"' in (tmp_path / "dlcourse" / "train.html").read_text(encoding="utf-8")


def test_a_pdoc_warning_fails_the_build(tmp_path):
    (tmp_path / "broken_docs.py").write_text('"""Names a function that does not exist."""\n'
                                             '__all__ = ["missing"]\n')
    result = _build(tmp_path / "out", "broken_docs", pythonpath=f"{tmp_path}{os.pathsep}{ROOT}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pdoc: UserWarning: Found 'missing' in broken_docs.__all__" in result.stderr
