"""Write the public student repository: ``python -m autograder release DEST [--force]``.

This repository is the private instructor one (``source/`` holds the masters with hidden
tests, ``solutions/`` the model answers). ``release`` writes, into DEST, only what students
get: the built student notebooks, the ``dlcourse`` package with its data samples, and a
``pyproject.toml``, ``README.md``, ``LICENSE``, ``Makefile`` and ``environment.yml`` made
for them. After writing, every text file of DEST is scanned for hidden-test, solution and
mark-scheme lines of the masters (:func:`leaks`); if one is found, the written files are
removed again and nothing is released.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import tomllib

import nbformat
import yaml

from . import PACKAGE_DIR, REPO_ROOT
from .build import BuildError, badge_line, find_masters, orphans, plan, repository_ref, repository_url, stale
from .notebook_format import (BEGIN_HIDDEN, BEGIN_MARK, BEGIN_SOLUTION, END_HIDDEN, END_MARK, END_SOLUTION,
                              region_lines)
from .feedback import hidden_lines_of

TEMPLATES = PACKAGE_DIR / "templates" / "student"
COPYRIGHT_HOLDER = "Deep Learning Fundamentals contributors"
# Optional extras of pyproject.toml that only instructors use (test tooling); students' don't get them.
INSTRUCTOR_EXTRAS = ("test",)
# The extra holding the course's pinned environment (make lab installs it).
COURSE_EXTRA = "course"
# Markers whose presence in a released notebook means the master itself slipped through.
FORBIDDEN_MARKERS = (BEGIN_HIDDEN, BEGIN_SOLUTION, BEGIN_MARK)
# Solution lines shorter than this are too generic (``return x``) to identify a solution.
MIN_SOLUTION_LINE = 12
JUNK_NAMES = {"__pycache__", ".ipynb_checkpoints", ".DS_Store"}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class ReleaseError(Exception):
    """The release cannot be written; the message says what was wrong and how to fix it."""


# --------------------------------------------------------------------------- what DEST holds

def _is_junk(path: pathlib.Path) -> bool:
    return any(part in JUNK_NAMES or part.startswith(".") for part in path.parts) or path.suffix == ".pyc"


def _fill(template: str, **values: str) -> str:
    """``template`` with every ``{{name}}`` replaced by ``values[name]`` (all must be given)."""
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise ReleaseError(f"template placeholders without a value: {missing}; fix autograder/templates/student")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _student_notebooks(root: pathlib.Path) -> list[pathlib.Path]:
    """The committed student notebooks, after checking that they equal a fresh build."""
    notebooks_dir = root / "notebooks"
    try:
        planned = [f for f in plan(root) if notebooks_dir in f.path.parents]
        extra = [p for p in orphans(root, root / "source", root) if notebooks_dir in p.parents]
    except BuildError as exc:
        raise ReleaseError(f"cannot build the student notebooks: {exc}") from exc
    out_of_date = stale(planned) + extra
    if out_of_date:
        names = ", ".join(str(p.relative_to(root)) for p in out_of_date)
        raise ReleaseError(f"notebooks/ is not up to date with source/ ({names}); "
                           "run python -m autograder build, commit, and release again")
    paths = [f.path for f in planned]
    others = [p for p in sorted(notebooks_dir.rglob("*"))
              if p.is_file() and p not in paths and not _is_junk(p.relative_to(notebooks_dir))]
    if others:
        names = ", ".join(str(p.relative_to(root)) for p in others)
        raise ReleaseError(f"notebooks/ holds files that are not built from source/ ({names}); "
                           "only built notebooks are released: move or delete them")
    return paths


def _package_files(root: pathlib.Path) -> list[pathlib.Path]:
    """The dlcourse package as shipped: sources and samples, no caches."""
    package = root / "dlcourse"
    if not (package / "__init__.py").is_file():
        raise ReleaseError(f"{package.relative_to(root)}/__init__.py is missing; restore dlcourse/ from git")
    return [p for p in sorted(package.rglob("*")) if p.is_file() and not _is_junk(p.relative_to(package))]


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ReleaseError(f"pyproject.toml: cannot write the value {value!r}; keep [project] to strings and lists")


def _toml_table(name: str, table: dict) -> str:
    lines = [f"[{name}]"]
    for key, value in table.items():
        if isinstance(value, list) and len(value) > 3:  # one requirement per line, like the original
            lines.append(f"{key} = [\n" + "".join(f"    {_toml_value(v)},\n" for v in value) + "]")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def student_pyproject(root: pathlib.Path) -> tuple[str, list[str]]:
    """The student repository's ``pyproject.toml`` and the requirements it left out.

    It keeps what ``pip install "dlcourse @ git+URL"`` needs (build system, [project] metadata
    and dependencies, urls, the package and its data) and drops instructor-only extras and
    tool settings (pytest)."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project = dict(config["project"])
    extras = dict(project.pop("optional-dependencies", {}))
    dropped = [req for name in INSTRUCTOR_EXTRAS for req in extras.pop(name, [])]
    urls = project.pop("urls", {})
    setuptools = dict(config.get("tool", {}).get("setuptools", {}))
    package_data = setuptools.pop("package-data", {})
    # Only the course package: the grader (autograder) stays in the instructors' repository.
    setuptools["packages"] = [p for p in setuptools.get("packages", []) if p.split(".")[0] == "dlcourse"]
    package_data = {k: v for k, v in package_data.items() if k.split(".")[0] == "dlcourse"}
    tables = [("build-system", config["build-system"]), ("project", project),
              ("project.optional-dependencies", extras), ("project.urls", urls),
              ("tool.setuptools", setuptools), ("tool.setuptools.package-data", package_data)]
    header = ("# The course package. The notebooks' setup cell installs it from [project.urls] Repository\n"
              "# with pip install \"dlcourse @ git+<Repository>\".\n")
    text = header + "\n".join(_toml_table(name, table) for name, table in tables if table)
    return text, dropped


def _requirement_name(requirement: str) -> str:
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", name.group(1)).lower() if name else requirement


def student_environment(root: pathlib.Path, dependencies: list[str], dropped: list[str]) -> str | None:
    """The repository's ``environment.yml`` with instructor-only packages removed (None if it has none).
    Every other pip entry must be a dependency of the package, so students install nothing extra."""
    path = root / "environment.yml"
    if not path.is_file():
        return None
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    allowed = {_requirement_name(r) for r in dependencies}
    dropped_names = {_requirement_name(r) for r in dropped}
    for entry in env.get("dependencies", []):
        if isinstance(entry, dict) and "pip" in entry:
            kept = []
            for req in entry["pip"]:
                name = _requirement_name(req)
                if req.strip() == "-e ." or name in allowed:
                    kept.append(req)
                elif name not in dropped_names:
                    raise ReleaseError(f"environment.yml installs {req!r}, which is not a dependency in "
                                       "pyproject.toml; add it to [project] dependencies or remove it")
            entry["pip"] = kept
    header = ("# conda env create -f environment.yml && conda activate " + str(env.get("name", "dlcourse")) + "\n"
              "# Python, and the course package with what it needs (pip install -e .).\n")
    return header + yaml.safe_dump(env, sort_keys=False, default_flow_style=False)


def _notebook_title(path: pathlib.Path) -> str:
    """The first ``# `` heading of the notebook's title cell (the topic folder name if none)."""
    first = nbformat.read(path, as_version=4).cells[0].source
    return next((line[2:].strip() for line in first.split("\n") if line.startswith("# ")), path.parent.name)


def student_readme(root: pathlib.Path, url: str, notebooks: list[pathlib.Path], *, conda: bool) -> str:
    """README.md from the template, with the notebook table and every link built from ``url``
    (the badges at the notebooks' own branch or tag, ``[tool.dlcourse] ref``)."""
    ref = repository_ref(root)
    rows = []
    for path in notebooks:
        topic = path.parent.name
        rows.append(f"| [{_notebook_title(path)}](notebooks/{topic}/{topic}.ipynb) "
                    f"| {badge_line(url, 'notebooks', topic, ref)} |")
    python = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"].get(
        "requires-python", "")
    conda_setup = ("\nOr, with conda: `conda env create -f environment.yml && conda activate dlcourse`, "
                   "then `make lab`.\n" if conda else "")
    return _fill((TEMPLATES / "README.md").read_text(encoding="utf-8"),
                 repository=url, folder=url.rsplit("/", 1)[1], notebook_table="\n".join(rows),
                 python=python.lstrip(">=~ ") or "3", conda_setup=conda_setup)


def student_license(root: pathlib.Path) -> str:
    """The repository's LICENSE, or the MIT text that pyproject.toml's license names."""
    if (root / "LICENSE").is_file():
        return (root / "LICENSE").read_text(encoding="utf-8")
    license_ = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"].get("license", {})
    name = license_.get("text", "") if isinstance(license_, dict) else str(license_)
    if name.strip().upper() != "MIT":
        raise ReleaseError(f"pyproject.toml's license is {name!r} and the repository has no LICENSE file; "
                           "add a LICENSE file with that license's text")
    return _fill((TEMPLATES / "LICENSE").read_text(encoding="utf-8"), copyright_holder=COPYRIGHT_HOLDER)


def release_files(root: pathlib.Path) -> dict[str, str | pathlib.Path]:
    """Everything DEST gets: relative path -> text to write, or the repository file to copy."""
    url = _repository(root)
    notebooks = _student_notebooks(root)
    files: dict[str, str | pathlib.Path] = {str(p.relative_to(root)): p for p in notebooks}
    files.update({str(p.relative_to(root)): p for p in _package_files(root)})
    pyproject, dropped = student_pyproject(root)
    project = tomllib.loads(pyproject)["project"]
    # What students install: the package and the course's pinned environment (frameworks, JupyterLab).
    dependencies = project.get("dependencies", []) + project.get("optional-dependencies", {}).get(COURSE_EXTRA, [])
    environment = student_environment(root, dependencies, dropped)
    files["pyproject.toml"] = pyproject
    if environment is not None:
        files["environment.yml"] = environment
    files["README.md"] = student_readme(root, url, notebooks, conda=environment is not None)
    files["LICENSE"] = student_license(root)
    files["Makefile"] = (TEMPLATES / "Makefile").read_text(encoding="utf-8")
    # The student lab's settings (make lab: nbgrader's Validate button only).
    files.update({str(p.relative_to(root)): p for p in sorted((root / "jupyter" / "student").rglob("*.json"))})
    config = TEMPLATES / "nbgrader_config.py"
    if config.is_file():  # optional: students' nbgrader settings, when the course has any
        files["nbgrader_config.py"] = config
    return files


def _repository(root: pathlib.Path) -> str:
    try:
        return repository_url(root)
    except BuildError as exc:
        raise ReleaseError(str(exc)) from exc


# --------------------------------------------------------------------------- leak scan

def secret_lines(root: pathlib.Path = REPO_ROOT) -> dict[str, str]:
    """Lines of the masters that must never be public -> where they come from.

    Hidden-test lines (:func:`autograder.feedback.hidden_lines_of`) that appear nowhere outside
    the hidden regions of any master, and solution and mark-scheme lines (stripped, at least
    ``MIN_SOLUTION_LINE`` characters) that the student notebooks do not contain. Lines of the
    ``dlcourse`` package are public by design (the notebooks install it), so they never count."""
    masters = [(p.parent.name, nbformat.read(p, as_version=4)) for p in find_masters(root / "source")]
    package_text = "\n".join(p.read_text(encoding="utf-8") for p in _package_files(root) if _is_text(p))
    outside_hidden = "\n".join(line for _, nb in masters for cell in nb.cells
                               for line, inside in region_lines(cell.source, BEGIN_HIDDEN, END_HIDDEN)
                               if not inside)
    student_text = "\n".join(cell.source for p in sorted((root / "notebooks").glob("*/*.ipynb"))
                             for cell in nbformat.read(p, as_version=4).cells)
    secrets: dict[str, str] = {}
    for topic, nb in masters:
        for line in hidden_lines_of(nb):
            if line not in outside_hidden and line not in package_text:
                secrets.setdefault(line, f"hidden tests of source/{topic}")
        for begin, end, kind in ((BEGIN_SOLUTION, END_SOLUTION, "solution"), (BEGIN_MARK, END_MARK, "mark scheme")):
            for cell in nb.cells:
                for line, inside in region_lines(cell.source, begin, end):
                    line = line.strip()
                    if (inside and len(line) >= MIN_SOLUTION_LINE and line not in student_text
                            and line not in package_text):
                        secrets.setdefault(line, f"{kind} of source/{topic}")
    return secrets


def _is_text(path: pathlib.Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _strings(value) -> list[str]:
    """Every string inside a parsed JSON value (a notebook's sources, outputs and metadata)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _scanned_text(path: pathlib.Path) -> str | None:
    """The text a leak could hide in: a notebook's decoded JSON strings (its raw JSON escapes
    quotes and newlines) plus the raw text; None for binary files such as the xz samples."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    if path.suffix == ".ipynb":
        try:
            text += "\n" + "\n".join(_strings(json.loads(text)))
        except json.JSONDecodeError:
            pass
    return text


def leaks(dest: pathlib.Path, root: pathlib.Path = REPO_ROOT) -> list[str]:
    """One line per file of ``dest`` that holds a hidden-test, solution or mark-scheme line of
    the masters in ``root``, or a notebook that holds a master's region marker. Empty: no leak."""
    secrets = secret_lines(root)
    found = []
    for path in sorted(dest.rglob("*")):
        rel = path.relative_to(dest)
        if ".git" in rel.parts or not path.is_file() or path.is_symlink():
            continue  # the public repository's own history is not written by the release
        text = _scanned_text(path)
        if text is None:
            continue
        if path.suffix == ".ipynb":
            markers = [m for m in FORBIDDEN_MARKERS if m in text]
            if markers:
                found.append(f"{rel}: contains {', '.join(markers)}")
        hits = [line for line in secrets if line in text]
        if hits:
            origins = sorted({secrets[line] for line in hits})
            found.append(f"{rel}: {len(hits)} lines of {'; '.join(origins)} (first: {hits[0][:60]!r})")
    return found


# --------------------------------------------------------------------------- driver

def _check_destination(dest: pathlib.Path, root: pathlib.Path, force: bool) -> None:
    dest, root = dest.resolve(), root.resolve()
    if dest == root or root in dest.parents:
        raise ReleaseError(f"DEST {dest} is inside the instructor repository; the release is a separate "
                           "repository: choose a folder outside it, e.g. ../dlcourse-students")
    if dest in root.parents:
        raise ReleaseError(f"DEST {dest} contains the instructor repository; choose a folder outside it")
    if dest.exists() and not dest.is_dir():
        raise ReleaseError(f"DEST {dest} is a file; give a folder")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ReleaseError(f"DEST {dest} is not empty; give an empty or new folder, or pass --force to "
                           "overwrite the released files in it (e.g. a clone of the public repository)")


def release(dest: pathlib.Path, *, root: pathlib.Path = REPO_ROOT, force: bool = False) -> list[pathlib.Path]:
    """Write the student repository into ``dest``; returns the files written.

    Raises :class:`ReleaseError` without writing when ``dest`` is not usable or notebooks/ is
    stale, and after removing what it wrote when :func:`leaks` finds anything."""
    dest = pathlib.Path(dest)
    _check_destination(dest, root, force)
    files = release_files(root)  # everything is prepared before DEST is touched
    written: list[pathlib.Path] = []
    created: list[pathlib.Path] = []
    try:
        for rel, content in files.items():
            target = dest / rel
            for folder in reversed(target.parents):
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            if root.resolve() in target.resolve().parents:  # a symlink in DEST pointing back here
                raise ReleaseError(f"{target} leads into the instructor repository; remove that link from DEST")
            if isinstance(content, pathlib.Path):
                shutil.copyfile(content, target)
            else:
                target.write_text(content, encoding="utf-8")
            written.append(target)
        found = leaks(dest, root)
        if found:
            raise ReleaseError("hidden tests or solutions would be published; nothing was released:\n  "
                               + "\n  ".join(found)
                               + "\nremove those lines from the files named (or from the master), rebuild, "
                                 "and release again")
    except BaseException:
        _remove(written, created)
        raise
    return written


def _remove(written: list[pathlib.Path], created: list[pathlib.Path]) -> None:
    """Undo a failed release: the files written and the folders made for them (if left empty)."""
    for path in written:
        path.unlink(missing_ok=True)
    for folder in reversed(created):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
