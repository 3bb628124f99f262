"""The build: generated notebooks/ and solutions/ are in sync with source/, student versions
leak nothing, masters are valid nbgrader sources, badge/setup cells follow pyproject.

Fast: no notebook is executed here (see test_notebooks.py for that)."""

from __future__ import annotations

import io
import json
import pathlib
import shutil

import nbformat
import pytest

from autograder import build

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE_SOURCE = ROOT / "tests" / "fixtures" / "source"
MASTERS = build.find_masters(ROOT / "source")
ALL_MASTERS = MASTERS + build.find_masters(FIXTURE_SOURCE)
URL = build.repository_url(ROOT)
MARKERS = build.MARKERS


def _ids(paths):
    return [p.parent.name for p in paths]


@pytest.fixture(scope="module")
def fixture_build(tmp_path_factory):
    """The fixture master built into a temporary tree: {topic: (master, student, solution)}."""
    out = tmp_path_factory.mktemp("fixture-build")
    shutil.copytree(FIXTURE_SOURCE, out / "source")
    assert build.build(ROOT, source_dir=out / "source", out_root=out, out=io.StringIO()) == 0
    return out


def versions(master_path: pathlib.Path, fixture_out: pathlib.Path):
    """(master, student, solution) notebooks: committed ones for real masters, built ones for fixtures."""
    topic = master_path.parent.name
    base = ROOT if master_path in MASTERS else fixture_out
    master = build.read_notebook(master_path if master_path in MASTERS else base / "source" / topic / f"{topic}.ipynb")
    student = build.read_notebook(base / "notebooks" / topic / f"{topic}.ipynb")
    solution = build.read_notebook(base / "solutions" / topic / f"{topic}.ipynb")
    return master, student, solution


def region_lines(nb, begin, end):
    """Non-trivial stripped lines inside begin/end regions that never occur outside one."""
    inside_lines, outside_lines = set(), set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            s = line.strip()
            if s == begin:
                inside = True
            elif s == end:
                inside = False
            else:
                (inside_lines if inside else outside_lines).add(s)
    return {s for s in inside_lines - outside_lines if len(s) >= 6}


# ----------------------------------------------------------------------------- sync

def test_committed_generated_folders_equal_a_fresh_build(tmp_path):
    """notebooks/ and solutions/ as committed are byte-for-byte what a fresh build writes,
    and the masters already carry the badge/setup cells the build would write."""
    shutil.copytree(ROOT / "source", tmp_path / "source")
    assert build.build(ROOT, source_dir=tmp_path / "source", out_root=tmp_path, out=io.StringIO()) == 0
    for folder in ("notebooks", "solutions"):
        fresh = {p.relative_to(tmp_path / folder): p.read_bytes() for p in (tmp_path / folder).rglob("*.ipynb")}
        committed = {p.relative_to(ROOT / folder): p.read_bytes() for p in (ROOT / folder).rglob("*.ipynb")
                     if ".ipynb_checkpoints" not in p.parts}
        assert sorted(committed) == sorted(fresh), f"{folder}/ differs from source/: run `python -m autograder build`"
        stale = [str(k) for k in fresh if fresh[k] != committed[k]]
        assert not stale, f"stale in {folder}/: {stale}; run `python -m autograder build` and commit"
    for master in MASTERS:
        rebuilt = tmp_path / "source" / master.parent.name / master.name
        assert rebuilt.read_bytes() == master.read_bytes(), \
            f"{master}: badge/setup cells or formatting not as the build writes them; run `python -m autograder build`"


def test_build_is_deterministic_and_check_mode_writes_nothing(tmp_path, fixture_build):
    other = tmp_path / "again"
    shutil.copytree(FIXTURE_SOURCE, other / "source")
    assert build.build(ROOT, source_dir=other / "source", out_root=other, out=io.StringIO()) == 0
    files = sorted(p.relative_to(fixture_build) for p in fixture_build.rglob("*.ipynb"))
    assert files == sorted(p.relative_to(other) for p in other.rglob("*.ipynb"))
    for rel in files:
        assert (fixture_build / rel).read_bytes() == (other / rel).read_bytes(), f"{rel} differs between two builds"
        text = (other / rel).read_text()
        assert text.endswith("}\n") and json.loads(text)["nbformat_minor"] == build.NBFORMAT_MINOR

    out = io.StringIO()
    assert build.build(ROOT, source_dir=other / "source", out_root=other, check=True, out=out) == 0
    student = other / "notebooks" / "99_fixture" / "99_fixture.ipynb"
    student.write_text(student.read_text().replace("YOUR CODE HERE", "edited by hand"))
    orphan = other / "solutions" / "42_gone" / "42_gone.ipynb"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("{}")
    before = student.read_bytes()
    out = io.StringIO()
    assert build.build(ROOT, source_dir=other / "source", out_root=other, check=True, out=out) == 1
    report = out.getvalue()
    assert "notebooks/99_fixture/99_fixture.ipynb" in report and "42_gone" in report
    assert student.read_bytes() == before and orphan.exists(), "--check must not write"
    assert build.build(ROOT, source_dir=other / "source", out_root=other, out=io.StringIO()) == 0
    assert not orphan.exists() and student.read_bytes() != before


# ----------------------------------------------------------------------------- leaks

@pytest.mark.parametrize("master_path", ALL_MASTERS, ids=_ids(ALL_MASTERS))
def test_student_version_contains_no_solution_or_hidden_test(master_path, fixture_build):
    master, student, solution = versions(master_path, fixture_build)
    student_text = "\n".join(c.source for c in student.cells)
    for marker in MARKERS:
        assert marker not in student_text, f"student version still contains {marker!r}"
    solution_lines = region_lines(master, build.BEGIN_SOLUTION, build.END_SOLUTION)
    hidden_lines = region_lines(master, build.BEGIN_HIDDEN, build.END_HIDDEN)
    assert hidden_lines, "the master has no hidden tests"
    student_lines = {line.strip() for line in student_text.split("\n")}
    assert not solution_lines & student_lines, f"solution code in the student version: {sorted(solution_lines & student_lines)[:3]}"
    assert not hidden_lines & student_lines, f"hidden tests in the student version: {sorted(hidden_lines & student_lines)[:3]}"
    written = [c for c in master.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]
    for cell in written:  # model answers of written questions are replaced too
        gid = cell.metadata["nbgrader"]["grade_id"]
        twin = next(c for c in student.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
        assert twin.source != cell.source

    solution_text = "\n".join(c.source for c in solution.cells)
    for marker in MARKERS:
        assert marker not in solution_text
    solution_lines_in_solution = {line.strip() for line in solution_text.split("\n")}
    assert solution_lines <= solution_lines_in_solution, "the solution version lost solution code"
    assert not hidden_lines & solution_lines_in_solution, "the solution version shows hidden tests"


def test_stray_topic_folders_and_bad_addresses_are_clear_errors(tmp_path):
    (tmp_path / "source" / "Intro").mkdir(parents=True)
    with pytest.raises(build.BuildError, match="NN_topic"):
        build.find_masters(tmp_path / "source")
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\n[project.urls]\nRepository = "https://gitlab.com/a/b"\n')
    with pytest.raises(build.BuildError, match="GitHub"):
        build.repository_url(tmp_path)


def test_build_refuses_a_hidden_part_that_needs_the_students_kernel(tmp_path):
    """Hidden parts run in the grader's process: one that calls a student's function by its bare
    name, or reads a variable of the visible part, is refused by build and build --check."""
    shutil.copytree(FIXTURE_SOURCE, tmp_path / "source")
    master = tmp_path / "source" / "99_fixture" / "99_fixture.ipynb"
    nb = nbformat.read(master, as_version=4)
    cell = next(c for c in nb.cells if "student.clip(" in c.source)
    cell.source = cell.source.replace("student.clip(", "clip(") + "\nprint(got)"
    nbformat.write(nb, master)
    for check in (True, False):
        log = io.StringIO()
        assert build.build(ROOT, check=check, source_dir=tmp_path / "source", out_root=tmp_path, out=log) == 1
        text = log.getvalue()
        assert "99_fixture.ipynb cell" in text and "reads 'clip'" in text and "student.clip" in text, text
        assert "reads 'got'" in text, text
    assert not (tmp_path / "notebooks").exists(), "nothing is written for a refused master"


# ----------------------------------------------------------------------------- masters

@pytest.mark.parametrize("master_path", ALL_MASTERS, ids=_ids(ALL_MASTERS))
def test_master_has_valid_nbgrader_metadata(master_path):
    """The checks live in ``build.metadata_problems``, which ``build`` and ``build --check`` run."""
    assert build.metadata_problems(master_path) == []


def test_build_refuses_a_master_with_bad_metadata(tmp_path):
    shutil.copytree(FIXTURE_SOURCE, tmp_path / "source")
    master = tmp_path / "source" / "99_fixture" / "99_fixture.ipynb"
    nb = nbformat.read(master, as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_clip")
    test.metadata["nbgrader"]["locked"] = False
    test.outputs = [nbformat.v4.new_output("stream", name="stdout", text="left over\n")]
    nb.cells.append(nbformat.v4.new_code_cell("x = 1  ### BEGIN SOLUTION"))
    nbformat.write(nb, master)
    problems = build.metadata_problems(master)
    assert any("test cells must be locked" in p for p in problems), problems
    assert any("without outputs" in p for p in problems), problems
    assert any("markers in a cell without nbgrader metadata" in p for p in problems), problems
    for check in (True, False):
        log = io.StringIO()
        assert build.build(ROOT, check=check, source_dir=tmp_path / "source", out_root=tmp_path, out=log) == 1
        assert "master: 99_fixture.ipynb cell" in log.getvalue() and "must be locked" in log.getvalue()
    assert not (tmp_path / "notebooks").exists(), "nothing is written for a refused master"


@pytest.mark.parametrize("master_path", ALL_MASTERS, ids=_ids(ALL_MASTERS))
def test_badge_and_setup_cells_follow_pyproject(master_path, fixture_build):
    topic = master_path.parent.name
    master, student, solution = versions(master_path, fixture_build)
    for nb, folder in ((master, "notebooks"), (student, "notebooks"), (solution, "solutions")):
        first = nb.cells[0]
        assert first.cell_type == "markdown"
        assert first.source.split("\n")[0] == build.badge_line(URL, folder, topic)
        assert URL.removeprefix("https://github.com/") in first.source.split("\n")[0]
        setup = [c for c in nb.cells if build.SETUP_TAG in c.metadata.get("tags", [])]
        assert len(setup) == 1 and setup[0].cell_type == "code"
        assert setup[0].source == build.setup_source(URL)
        assert f"dlcourse @ git+{URL}" in setup[0].source


def test_badge_follows_a_changed_repository_address(tmp_path):
    shutil.copytree(FIXTURE_SOURCE, tmp_path / "source")
    text = (ROOT / "pyproject.toml").read_text().replace(URL, "https://github.com/someone/fork")
    (tmp_path / "pyproject.toml").write_text(text)
    assert build.build(tmp_path, out=io.StringIO()) == 0
    master = build.read_notebook(tmp_path / "source" / "99_fixture" / "99_fixture.ipynb")
    assert "github/someone/fork/blob/main/notebooks/99_fixture/99_fixture.ipynb" in master.cells[0].source
    assert "git+https://github.com/someone/fork" in master.cells[1].source
    assert build.build(tmp_path, check=True, out=io.StringIO()) == 0


def test_a_release_ref_moves_the_badges_and_install_cells_to_the_tag(tmp_path):
    shutil.copytree(FIXTURE_SOURCE, tmp_path / "source")
    text = (ROOT / "pyproject.toml").read_text()
    assert 'ref = "main"' in text
    (tmp_path / "pyproject.toml").write_text(text.replace('ref = "main"', 'ref = "2027-spring"'))
    assert build.build(tmp_path, out=io.StringIO()) == 0
    slug = URL.removeprefix("https://github.com/")
    for folder in ("notebooks", "solutions"):
        nb = build.read_notebook(tmp_path / folder / "99_fixture" / "99_fixture.ipynb")
        assert nb.cells[0].source.split("\n")[0] == (
            f"[![Open In Colab]({build.BADGE_IMAGE})](https://colab.research.google.com/github/"
            f"{slug}/blob/2027-spring/{folder}/99_fixture/99_fixture.ipynb)")
        setup = [c for c in nb.cells if build.SETUP_TAG in c.metadata.get("tags", [])]
        assert f'"dlcourse @ git+{URL}@2027-spring"' in setup[0].source
        assert "blob/main" not in build.dumps(nb)
    master = build.read_notebook(tmp_path / "source" / "99_fixture" / "99_fixture.ipynb")
    assert "/blob/2027-spring/notebooks/99_fixture/" in master.cells[0].source
    assert build.build(tmp_path, check=True, out=io.StringIO()) == 0


def test_the_default_ref_leaves_the_install_address_bare():
    assert build.repository_ref(ROOT) == "main"
    assert f'"dlcourse @ git+{URL}"' in build.setup_source(URL)
    assert f'"dlcourse @ git+{URL}@v1"' in build.setup_source(URL, "v1")


@pytest.mark.parametrize("toml_value", ['""', '"two words"', '"-x"', "'a\"b'", "3"])
def test_a_bad_ref_is_refused_with_what_to_write(tmp_path, toml_value):
    text = (ROOT / "pyproject.toml").read_text().replace('ref = "main"', f"ref = {toml_value}")
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(build.BuildError, match="is not a branch or tag name"):
        build.repository_ref(tmp_path)
