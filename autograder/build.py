"""Generate the student and solution notebooks from the masters in ``source/``.

``python -m autograder build`` does, for every ``source/NN_topic/NN_topic.ipynb``:

1. rewrites, in the master itself, the Colab badge line of the first cell and the
   ``colab-setup`` code cell from the repository address and the branch or tag they follow
   (``[project.urls] Repository``, ``[tool.dlcourse] ref``) in ``pyproject.toml``;
2. writes ``notebooks/NN_topic/NN_topic.ipynb``: the student version, made by the
   preprocessors of nbgrader's ``generate_assignment`` (solutions replaced by stubs,
   hidden tests and mark schemes removed, outputs cleared, checksums computed);
3. writes ``solutions/NN_topic/NN_topic.ipynb``: the master with the solution markers
   removed (their content kept), hidden tests and mark schemes removed, outputs cleared.

Everything written is deterministic: cells keep the master's ids, JSON is written by
``nbformat.writes`` (sorted keys, indent 1) with a trailing newline, and the notebook
format is pinned to 4.5. ``--check`` writes nothing and lists what is stale.
"""

from __future__ import annotations

import copy
import hashlib
import pathlib
import re
import sys
import tomllib
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode

from . import REPO_ROOT
from .notebook_format import (BEGIN_HIDDEN, BEGIN_MARK, BEGIN_SOLUTION, END_HIDDEN, END_MARK,  # noqa: F401
                              END_SOLUTION, MARKERS, nbgrader_meta as _nbg, region_lines, remove_regions,
                              split_hidden)

NBFORMAT_MINOR = 5
TOPIC_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
SETUP_TAG = "colab-setup"
BADGE_PREFIX = "[![Open In Colab]"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
DEFAULT_REF = "main"  # what the badges and install cells follow unless [tool.dlcourse] ref says otherwise



class BuildError(Exception):
    """A master notebook or the project configuration is not usable; the message says how to fix it."""


# --------------------------------------------------------------------------- config

def repository_url(root: pathlib.Path = REPO_ROOT) -> str:
    """The repository address from ``pyproject.toml`` ``[project.urls] Repository``."""
    path = root / "pyproject.toml"
    try:
        url = tomllib.loads(path.read_text())["project"]["urls"]["Repository"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{path}: cannot read [project.urls] Repository ({exc!r}); "
                         "set it to https://github.com/<owner>/<repo>") from exc
    m = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", url)
    if not m:
        raise BuildError(f"{path}: Repository = {url!r} is not a GitHub address "
                         "like https://github.com/<owner>/<repo>; the Colab badge needs one")
    return f"https://github.com/{m.group(1)}/{m.group(2)}"


def repository_ref(root: pathlib.Path = REPO_ROOT) -> str:
    """The branch or tag the badges and install cells point at: ``pyproject.toml``
    ``[tool.dlcourse] ref``, ``"main"`` when absent. A term's release sets it to the term's tag
    (CONTRIBUTING.md, "Release"), so that students' links cannot move under them."""
    path = root / "pyproject.toml"
    try:
        ref = tomllib.loads(path.read_text()).get("tool", {}).get("dlcourse", {}).get("ref", DEFAULT_REF)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{path}: cannot read [tool.dlcourse] ref ({exc!r})") from exc
    if not isinstance(ref, str) or not re.fullmatch(r"[\w][\w.-]*(?:/[\w][\w.-]*)*", ref) or ref.endswith(".lock"):
        raise BuildError(f"{path}: [tool.dlcourse] ref = {ref!r} is not a branch or tag name "
                         "like \"main\" or \"2027-spring\"")
    return ref


def badge_line(url: str, folder: str, topic: str, ref: str = DEFAULT_REF) -> str:
    """The Colab badge markdown for ``folder/topic/topic.ipynb`` at branch or tag ``ref``."""
    slug = url.removeprefix("https://github.com/")
    target = f"https://colab.research.google.com/github/{slug}/blob/{ref}/{folder}/{topic}/{topic}.ipynb"
    return f"[![Open In Colab]({BADGE_IMAGE})]({target})"


def setup_source(url: str, ref: str = DEFAULT_REF) -> str:
    """The ``colab-setup`` cell: installs dlcourse once, with only what the environment lacks.

    dlcourse's own requirements are loose (pyproject.toml), so on Colab pip adds kornia and
    pooch, leaves the preinstalled frameworks alone and has no conflict to report. The package
    comes from ``ref``; for the default branch the address has no ``@ref`` (pip's default)."""
    source = f"git+{url}" if ref == DEFAULT_REF else f"git+{url}@{ref}"
    return (
        "# Setup for Colab or any machine without the course package: install dlcourse once.\n"
        "import importlib, importlib.util, subprocess, sys\n"
        'if importlib.util.find_spec("dlcourse") is None:\n'
        "    # Adds only what is missing (kornia, pooch); installed PyTorch/TensorFlow/Keras stay as they are.\n"
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "dlcourse @ {source}"], check=True)\n'
        "    importlib.invalidate_caches()  # let this running kernel see the new package"
    )


# --------------------------------------------------------------------------- discovery

def find_masters(source_dir: pathlib.Path) -> list[pathlib.Path]:
    """Every ``source/NN_topic/NN_topic.ipynb``, sorted. Stray notebooks are an error."""
    masters = []
    if not source_dir.is_dir():
        return masters
    for folder in sorted(p for p in source_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not TOPIC_RE.match(folder.name):
            raise BuildError(f"{folder}: topic folders are named NN_topic (two digits, lower-case, "
                             "underscores), e.g. 01_batch_normalization")
        nb_path = folder / f"{folder.name}.ipynb"
        others = sorted(p.name for p in folder.glob("*.ipynb") if p != nb_path)
        if others:
            raise BuildError(f"{folder}: only {nb_path.name} may live here, found {others}")
        if not nb_path.is_file():
            raise BuildError(f"{folder}: the master notebook {nb_path.name} is missing")
        masters.append(nb_path)
    return masters


# --------------------------------------------------------------------------- io

def read_notebook(path: pathlib.Path) -> NotebookNode:
    try:
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises several types for bad JSON / schema
        raise BuildError(f"{path}: not a readable notebook ({exc}); restore it from git") from exc


def dumps(nb: NotebookNode) -> str:
    """Canonical JSON for a notebook: format 4.5, sorted keys, indent 1, trailing newline."""
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, NBFORMAT_MINOR
    for i, cell in enumerate(nb.cells):
        if "id" not in cell:  # deterministic ids for cells written without one
            digest = hashlib.sha1(f"{i}:{cell.source}".encode()).hexdigest()[:8]
            cell["id"] = f"cell-{i:03d}-{digest}"
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


# --------------------------------------------------------------------------- transforms

def sync_master(nb: NotebookNode, topic: str, url: str, ref: str = DEFAULT_REF) -> NotebookNode:
    """Master with its badge line and ``colab-setup`` cell regenerated from ``url`` and ``ref``."""
    nb = copy.deepcopy(nb)
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise BuildError(f"{topic}: the first cell must be the markdown title cell (it carries the Colab badge)")
    first = nb.cells[0]
    lines = first.source.split("\n")
    badge = badge_line(url, "notebooks", topic, ref)
    if lines and lines[0].startswith(BADGE_PREFIX):
        lines[0] = badge
    else:
        lines = [badge, ""] + lines
    first.source = "\n".join(lines)

    setup = [c for c in nb.cells if SETUP_TAG in c.get("metadata", {}).get("tags", [])]
    if len(setup) > 1:
        raise BuildError(f"{topic}: {len(setup)} cells are tagged {SETUP_TAG!r}; keep exactly one")
    if setup and setup[0].cell_type != "code":
        raise BuildError(f"{topic}: the cell tagged {SETUP_TAG!r} must be a code cell")
    if not setup:
        cell = nbformat.v4.new_code_cell(metadata={"tags": [SETUP_TAG]})
        cell["id"] = "colab-setup"
        nb.cells.insert(1, cell)
        setup = [cell]
    setup[0].source = setup_source(url, ref)
    return nb


def solution_version(master: NotebookNode, topic: str, url: str, ref: str = DEFAULT_REF) -> NotebookNode:
    """The master with solution markers removed, hidden tests and mark schemes removed."""
    nb = copy.deepcopy(master)
    for cell in nb.cells:
        src = cell.source
        src = remove_regions(src, BEGIN_HIDDEN, END_HIDDEN, keep_inside=False)
        src = remove_regions(src, BEGIN_MARK, END_MARK, keep_inside=False)
        src = remove_regions(src, BEGIN_SOLUTION, END_SOLUTION, keep_inside=True)
        cell.source = src
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("nbgrader", None)  # a plain notebook: nothing here is graded
    first = nb.cells[0].source.split("\n")
    first[0] = badge_line(url, "solutions", topic, ref)
    nb.cells[0].source = "\n".join(first)
    return nb


def student_version(master: NotebookNode, topic: str) -> NotebookNode:
    """The student notebook, by the preprocessors of nbgrader's ``generate_assignment``
    (without its database step: ``--no-db``)."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme,
                                        ClearOutput, ClearSolutions, ComputeChecksums, LockCells)
    from nbgrader.converters import GenerateAssignment

    chain = [LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
             ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata]
    # Fail loudly if nbgrader's own chain changes under us (a version bump).
    names = [p.__name__ for p in GenerateAssignment.class_traits()["preprocessors"].default()]
    expected = ["IncludeHeaderFooter", "InstantiateTests", "LockCells", "ClearSolutions", "ClearOutput",
                "CheckCellMetadata", "ComputeChecksums", "SaveCells", "ClearHiddenTests",
                "ClearMarkScheme", "ComputeChecksums", "CheckCellMetadata"]
    if names != expected:
        raise BuildError(f"nbgrader's generate_assignment chain changed ({names}); update autograder/build.py")
    nb = copy.deepcopy(master)
    resources = {"unique_key": topic, "metadata": {"name": topic, "path": "."}, "nbgrader": {}}
    for cls in chain:
        pre = cls()
        try:
            nb, resources = pre.preprocess(nb, resources)
        except Exception as exc:
            raise BuildError(f"{topic}: nbgrader {cls.__name__} rejected the master: {exc}") from exc
    nb.metadata.pop("celltoolbar", None)
    return nb


# --------------------------------------------------------------------------- driver

@dataclass
class Planned:
    path: pathlib.Path
    text: str


def plan(root: pathlib.Path = REPO_ROOT, *, source_dir: pathlib.Path | None = None,
         out_root: pathlib.Path | None = None) -> list[Planned]:
    """Every file the build writes, with its content. ``out_root`` holds notebooks/ and
    solutions/ (default: ``root``); masters are rewritten in place."""
    source_dir = source_dir or root / "source"
    out_root = out_root or root
    url, ref = repository_url(root), repository_ref(root)
    files = []
    for master_path in find_masters(source_dir):
        topic = master_path.parent.name
        master = sync_master(read_notebook(master_path), topic, url, ref)
        files.append(Planned(master_path, dumps(master)))
        files.append(Planned(out_root / "notebooks" / topic / f"{topic}.ipynb", dumps(student_version(master, topic))))
        files.append(Planned(out_root / "solutions" / topic / f"{topic}.ipynb", dumps(solution_version(master, topic, url, ref))))
    return files


def stale(files: list[Planned]) -> list[pathlib.Path]:
    return [f.path for f in files if not f.path.is_file() or f.path.read_text(encoding="utf-8") != f.text]


def orphans(root: pathlib.Path, source_dir: pathlib.Path, out_root: pathlib.Path) -> list[pathlib.Path]:
    """Generated notebooks whose master no longer exists."""
    topics = {p.parent.name for p in find_masters(source_dir)}
    found = []
    for folder in ("notebooks", "solutions"):
        base = out_root / folder
        if base.is_dir():
            found += [p for p in sorted(base.glob("*/*.ipynb")) if p.parent.name not in topics]
    return found


def hidden_test_problems(source_dir: pathlib.Path) -> list[str]:
    """Hidden parts that would need the student's kernel on the trusted side (``autograder.hidden.lint``)."""
    from .hidden import lint
    problems = []
    for master in sorted(source_dir.glob("*/*.ipynb")):
        nb = nbformat.read(master, as_version=4)
        for index, cell in enumerate(nb.cells):
            parts = split_hidden(cell.source) if cell.cell_type == "code" else None
            if parts is None:
                continue
            where = f"{master.name} cell {index + 1} ({_nbg(cell).get('grade_id', '?')})"
            problems += [f"{where}: {problem}" for problem in lint(*parts)]
    return problems


def metadata_problems(master: pathlib.Path) -> list[str]:
    """What is wrong with a master's nbgrader metadata and storage (empty when nothing): valid
    nbformat, no outputs, schema 3, grade ids present and unique, points on graded cells, test
    cells locked, solution cells with their markers, markers only in nbgrader cells, at least one
    graded test cell and one written answer, unique cell ids."""
    nb = nbformat.read(master, as_version=4)
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        problems.append(f"{master.name}: not a valid notebook ({str(error).splitlines()[0]})")
    ids, tests, written = [], [], []
    for i, cell in enumerate(nb.cells):
        where = f"{master.name} cell {i}"
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"{where}: masters are stored without outputs (clear them)")
        meta = cell.metadata.get("nbgrader")
        if not meta:
            if any(m in cell.source for m in MARKERS):
                problems.append(f"{where}: markers in a cell without nbgrader metadata")
            continue
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: nbgrader schema_version must be 3")
        if not meta.get("grade_id"):
            problems.append(f"{where}: missing grade_id")
        else:
            ids.append(meta["grade_id"])
        if meta.get("grade") and not float(meta.get("points", 0)) > 0:
            problems.append(f"{where}: graded cell without points")
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            if not meta.get("locked"):
                problems.append(f"{where}: test cells must be locked")
            tests.append(meta.get("grade_id"))
        if meta.get("solution") and cell.cell_type == "code" and not (
                BEGIN_SOLUTION in cell.source and END_SOLUTION in cell.source):
            problems.append(f"{where}: solution cell without ### BEGIN/END SOLUTION")
        if meta.get("solution") and meta.get("grade") and cell.cell_type == "markdown":
            written.append(meta.get("grade_id"))
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"{master.name}: duplicate grade_ids: {duplicates}")
    if not tests:
        problems.append(f"{master.name}: no graded test cell")
    if not written:
        problems.append(f"{master.name}: no written (manually graded) answer cell")
    cell_ids = [c.get("id") for c in nb.cells]
    if None in cell_ids or len(cell_ids) != len(set(cell_ids)):
        problems.append(f"{master.name}: cell ids must exist and be unique")
    return problems


def build(root: pathlib.Path = REPO_ROOT, *, check: bool = False, source_dir: pathlib.Path | None = None,
          out_root: pathlib.Path | None = None, out=sys.stdout) -> int:
    source_dir = source_dir or root / "source"
    out_root = out_root or root
    metadata = [p for master in sorted(source_dir.glob("*/*.ipynb")) for p in metadata_problems(master)]
    for problem in metadata:
        print(f"master: {problem}", file=out)
    problems = hidden_test_problems(source_dir)
    for problem in problems:
        print(f"hidden test: {problem}", file=out)
    if problems:
        print("hidden tests run outside the student's kernel: fix the lines above (autograder/README.md, "
              "section 1)", file=out)
    if metadata:
        print("fix the masters above (CONTRIBUTING.md, \"Add or change a notebook\")", file=out)
    if problems or metadata:
        return 1
    files = plan(root, source_dir=source_dir, out_root=out_root)
    todo = stale(files)
    extra = orphans(root, source_dir, out_root)
    if check:
        for p in todo:
            print(f"stale: {_rel(p, root)}", file=out)
        for p in extra:
            print(f"orphan (no master in source/): {_rel(p, root)}", file=out)
        if todo or extra:
            print("run `python -m autograder build` and commit the result", file=out)
            return 1
        print(f"up to date: {len(files)} files from {len(files) // 3} masters", file=out)
        return 0
    for f in files:
        if f.path in todo:
            f.path.parent.mkdir(parents=True, exist_ok=True)
            f.path.write_text(f.text, encoding="utf-8")
            print(f"wrote {_rel(f.path, root)}", file=out)
    for p in extra:
        p.unlink()
        print(f"removed orphan {_rel(p, root)}", file=out)
    print(f"built {len(files) // 3} notebooks ({len(todo)} files changed)", file=out)
    return 0


def _rel(p: pathlib.Path, root: pathlib.Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)
