"""``python -m autograder release DEST``: the public student tree holds what students need and
nothing of the masters' hidden tests or solutions. Fast: no notebook is executed, nothing is
installed."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import tomllib

import pytest
import yaml

from autograder import build
from autograder import release as release_module
from autograder.__main__ import main
from autograder.release import ReleaseError, leaks, release, secret_lines

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOPICS = [p.parent.name for p in build.find_masters(ROOT / "source")]
URL = build.repository_url(ROOT)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """(DEST, files written) of one release of this repository."""
    dest = tmp_path_factory.mktemp("release") / "students"
    return dest, release(dest)


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def _files(dest: pathlib.Path) -> set[str]:
    return {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}


def test_the_tree_holds_the_student_files(released):
    dest, written = released
    samples = {f"dlcourse/samples/{p.name}" for p in (ROOT / "dlcourse" / "samples").iterdir() if p.is_file()}
    expected = {f"notebooks/{t}/{t}.ipynb" for t in TOPICS} | samples | {
        "dlcourse/__init__.py", "README.md", "LICENSE", "pyproject.toml", "Makefile", "environment.yml",
        "jupyter/student/labconfig/page_config.json"}
    files = _files(dest)
    assert len(TOPICS) == 11
    assert expected <= files, sorted(expected - files)
    assert "dlcourse/samples/LICENSES.md" in files
    assert {str(p.relative_to(dest)) for p in written} == files
    # The optional nbgrader settings travel only when their template exists.
    assert ("nbgrader_config.py" in files) == (release_module.TEMPLATES / "nbgrader_config.py").is_file()
    # Notebooks are copied byte for byte.
    for t in TOPICS:
        rel = f"notebooks/{t}/{t}.ipynb"
        assert (dest / rel).read_bytes() == (ROOT / rel).read_bytes()


def test_nothing_of_the_instructor_repository(released):
    dest, _ = released
    top = {p.name for p in dest.iterdir()}
    assert not top & {"source", "solutions", "autograder", "tests", "benchmarks", "scripts"}
    assert not [f for f in _files(dest) if "__pycache__" in f or f.endswith(".pyc")]


def test_leaks_finds_nothing_in_the_release(released):
    assert leaks(released[0], ROOT) == []


def test_leaks_finds_planted_hidden_lines_solutions_and_markers(released, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(released[0], dest)
    secrets = secret_lines(ROOT)
    hidden = max((s for s, origin in secrets.items() if origin == "hidden tests of source/02_dropout"), key=len)
    solution = max((s for s, origin in secrets.items() if origin == "solution of source/04_optimizers"), key=len)

    notebook = dest / "notebooks" / "02_dropout" / "02_dropout.ipynb"
    nb = json.loads(notebook.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "planted", "metadata": {},
                        "outputs": [], "source": ["x = 1\n", hidden + "\n"]})
    notebook.write_text(json.dumps(nb, indent=1))
    with (dest / "README.md").open("a") as f:
        f.write(f"\n    {solution}\n")
    marked = dest / "notebooks" / "03_weight_penalties" / "03_weight_penalties.ipynb"
    marked.write_text(marked.read_text().replace("# YOUR CODE HERE", "### BEGIN SOLUTION", 1))

    found = leaks(dest, ROOT)
    assert any(line.startswith("notebooks/02_dropout/02_dropout.ipynb: 1 lines of hidden tests of "
                               "source/02_dropout") for line in found), found
    assert any(line.startswith("README.md: 1 lines of solution of source/04_optimizers") for line in found), found
    assert any(line.startswith("notebooks/03_weight_penalties/03_weight_penalties.ipynb: contains ### BEGIN SOLUTION")
               for line in found), found
    assert len(found) == 3, found


def test_a_leak_removes_what_was_written(tmp_path, monkeypatch):
    hidden = max(secret_lines(ROOT), key=len)
    monkeypatch.setattr(release_module, "student_license", lambda root: "MIT License\n" + hidden + "\n")
    dest = tmp_path / "students"
    dest.mkdir()
    (dest / "kept.txt").write_text("a file of the public repository\n")
    with pytest.raises(ReleaseError, match="nothing was released") as raised:
        release(dest, force=True)
    assert "LICENSE: 1 lines of " in str(raised.value)
    assert _files(dest) == {"kept.txt"}
    assert [p.name for p in dest.iterdir()] == ["kept.txt"]  # no empty folders left behind


def test_a_non_empty_dest_needs_force(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ReleaseError, match="not empty.*--force"):
        release(tmp_path)
    assert _files(tmp_path) == {"old.txt"}


@pytest.mark.parametrize("where", [".", "release-here", "notebooks/new"])
def test_dest_inside_the_repository_is_refused(where):
    dest = ROOT / where
    existed = dest.exists()
    with pytest.raises(ReleaseError, match="inside the instructor repository"):
        release(dest, force=True)
    assert dest.exists() == existed


def test_stale_notebooks_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(release_module, "stale", lambda files: [files[0].path])
    with pytest.raises(ReleaseError, match="run python -m autograder build"):
        release(tmp_path / "students")
    assert not (tmp_path / "students").exists()


def test_pyproject_installs_the_package_from_the_public_repository(released):
    dest, _ = released
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())
    theirs = tomllib.loads((dest / "pyproject.toml").read_text())
    assert theirs["project"]["name"] == "dlcourse"
    for key in ("version", "dependencies", "urls", "license", "requires-python"):
        assert theirs["project"][key] == ours["project"][key], key
    assert "test" not in theirs["project"].get("optional-dependencies", {})
    assert theirs["build-system"] == ours["build-system"]
    # The course package only: the grader stays in the instructors' repository.
    assert theirs["tool"]["setuptools"]["packages"] == ["dlcourse"]
    assert theirs["tool"]["setuptools"]["package-data"] == {"dlcourse": ours["tool"]["setuptools"]["package-data"]["dlcourse"]}
    assert "autograder" in ours["tool"]["setuptools"]["packages"]
    assert "pytest" not in theirs.get("tool", {})


def test_environment_lists_only_what_students_need(released):
    dest, _ = released
    env = yaml.safe_load((dest / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    project = tomllib.loads((dest / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["course"]}
    assert pip[-1] == "-e ." and {_name(r) for r in pip[:-1]} == names
    assert {"pytest", "nbval"}.isdisjoint(names)


def test_readme_license_and_makefile(released):
    dest, _ = released
    readme = (dest / "README.md").read_text()
    assert "{{" not in readme and str(ROOT) not in readme
    for topic in TOPICS:
        assert build.badge_line(URL, "notebooks", topic) in readme
    assert f'pip install "dlcourse @ git+{URL}"' in readme
    assert "LICENSES.md" in readme and "CC BY-SA 3.0" in readme
    license_text = (dest / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and release_module.COPYRIGHT_HOLDER in license_text
    makefile = (dest / "Makefile").read_text()
    assert 'install -e ".[course]"' in makefile and "-m venv" in makefile
    assert "jupyter lab $(ROOT_FLAG) $(STUDENT_FLAGS) notebooks/ $(LAB_ARGS)" in makefile


def test_cli(tmp_path, capsys):
    assert main(["release", str(tmp_path / "students")]) == 0
    assert (tmp_path / "students" / "README.md").is_file()
    capsys.readouterr()
    assert main(["release", str(tmp_path / "students")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err
