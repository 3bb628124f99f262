"""Intake: from a folder or zip of hand-ins to one folder of notebooks per valid student id.

Nothing here runs student code. A zip is checked before anything is written (sizes, ratios,
paths) and counted again while extracting; links are never followed; a notebook is read only
when it is small enough and parses. :func:`stage` copies one student's notebooks into the
nbgrader course folder and says, per notebook, why one was not taken (a
:class:`~autograder.status.Status` and a reason)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import zipfile
import zlib

import nbformat

from .errors import GradeError
from .files import human_size
from .status import Status

STUDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MB = 1024 * 1024
RATIO_MIN_BYTES = MB  # the compression-ratio limit applies to zip members larger than this


def _limit_mb(n_bytes: int) -> str:
    return f"{n_bytes / MB:g} MB"


def _is_link_member(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def safe_extract(archive: pathlib.Path, dest: pathlib.Path, *, max_member_bytes: int, max_total_bytes: int,
                  max_ratio: float) -> dict:
    """Extract the notebooks (``*.ipynb``) of ``archive`` into ``dest``, folders implied; skip
    every other member (links included). Sizes are checked against the zip directory before
    anything is written, and again while streaming (a directory can lie). Any refusal raises
    GradeError and removes ``dest``. Returns {"extracted": n, "skipped": n, "skipped_names": [...]}."""
    root = dest.resolve()
    per_member = f"the limit of {_limit_mb(max_member_bytes)} per notebook"
    try:
        with zipfile.ZipFile(archive) as zf:
            take, skipped, declared = [], [], 0
            for info in zf.infolist():
                target = (root / info.filename).resolve()
                if root not in target.parents and target != root:
                    raise GradeError(f"{archive}: entry {info.filename!r} points outside the archive; refusing it")
                if info.is_dir():
                    continue
                if _is_link_member(info) or not info.filename.lower().endswith(".ipynb"):
                    skipped.append(info.filename)
                    continue
                if info.file_size > max_member_bytes:
                    raise GradeError(
                        f"{archive}: {info.filename} is {human_size(info.file_size)} uncompressed, over {per_member}; "
                        "refusing the archive (if that notebook is genuine, raise the limit with --max-notebook-mb)")
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > RATIO_MIN_BYTES and ratio > max_ratio:
                    raise GradeError(
                        f"{archive}: {info.filename} has a compression ratio of {ratio:.0f}:1 "
                        f"({human_size(info.file_size)} from {human_size(info.compress_size)}), over the limit of "
                        f"{max_ratio:g}:1 for members over 1 MB (a zip bomb?); refusing the archive (if it is "
                        "genuine, raise GradeOptions.max_zip_ratio)")
                declared += info.file_size
                if declared > max_total_bytes:
                    raise GradeError(
                        f"{archive}: its notebooks add up to more than {_limit_mb(max_total_bytes)} uncompressed "
                        f"(reached at {info.filename}); refusing the archive (raise the limit with --max-total-mb)")
                take.append((info, target))
            written_total = 0
            for info, target in take:
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                try:
                    with zf.open(info) as src, open(target, "wb") as dst:
                        while chunk := src.read(MB):
                            written += len(chunk)
                            written_total += len(chunk)
                            if written > min(info.file_size, max_member_bytes) or written_total > max_total_bytes:
                                raise GradeError(
                                    f"{archive}: {info.filename} holds more data than its zip directory declares "
                                    f"({info.file_size} bytes) or than {per_member} / "
                                    f"{_limit_mb(max_total_bytes)} in all; refusing the archive")
                            dst.write(chunk)
                except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
                    raise GradeError(f"{archive}: {info.filename} could not be read ({exc}); refusing the archive") \
                        from exc
    except zipfile.BadZipFile as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise GradeError(f"{archive}: not a readable zip file ({exc})") from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing partial is left behind
        raise
    return {"extracted": len(take), "skipped": len(skipped), "skipped_names": skipped}


def first_symlink(folder: pathlib.Path) -> str | None:
    """'path -> target' of the first symbolic link at or under ``folder`` (links are never
    followed), or None."""
    if folder.is_symlink():
        return f"{folder.name} -> {os.readlink(folder)}"
    for base, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            if os.path.islink(path):
                return f"{os.path.relpath(path, folder.parent)} -> {os.readlink(path)}"
    return None


def read_notebook_bytes(path: pathlib.Path, limit: int) -> bytes | int:
    """The file's bytes, or its size when it is larger than ``limit`` (then it is not read).
    Opened without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            return size
        data = fh.read(limit + 1)
    return len(data) if len(data) > limit else data


def discover(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """STUDENT_ID -> folder, for every folder of ``root`` that holds notebooks.
    A single wrapping folder (a zip of a folder) is looked through. Links are not followed:
    a link to a folder is listed as that student (``stage`` refuses it), other links are skipped."""
    def student_dirs(base):
        found = []
        for d in sorted(base.iterdir()):
            if d.name.startswith((".", "__MACOSX")):
                continue
            if d.is_symlink():
                if d.is_dir():  # poses as a student folder: listed, so that it is refused with a reason
                    found.append(d)
            elif d.is_dir():
                found.append(d)
        return found
    dirs = student_dirs(root)
    if len(dirs) == 1 and not dirs[0].is_symlink() and not any(dirs[0].glob("*.ipynb")) and student_dirs(dirs[0]):
        dirs = student_dirs(dirs[0])
    return {d.name: d for d in dirs}


def stage(folder: pathlib.Path, notebooks: list[str], dest: pathlib.Path, *,
          max_notebook_bytes: int) -> dict[str, tuple[Status, str]]:
    """Copy the readable notebooks of one student's ``folder`` into ``dest`` (replacing what a
    previous grading left there); return ``{notebook: (status, reason)}`` for the ones not
    taken. A submission holding a symbolic link anywhere is refused as a whole."""
    link = first_symlink(folder)
    if link:
        why = f"the submission contains a symbolic link ({link}); hand in plain files"
        return {name: (Status.REFUSED, why) for name in notebooks}
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    given = {p.stem: p for p in sorted(folder.glob("*.ipynb")) if p.is_file() and not p.is_symlink()}
    if len(notebooks) == 1 and len(given) == 1 and not set(given) & set(notebooks):
        # One notebook, renamed by the student ("00_getting_started (1).ipynb"): accept it.
        given = {notebooks[0]: next(iter(given.values()))}
    problems = {}
    for name in notebooks:
        path = given.get(name)
        if path is None:
            problems[name] = (Status.MISSING,
                              f"no {name}.ipynb in the submission (found {sorted(given) or 'no notebooks'})")
            continue
        try:
            data = read_notebook_bytes(path, max_notebook_bytes)
            if isinstance(data, int):
                problems[name] = (Status.REFUSED, f"{path.name} is {human_size(data)}, over the limit of "
                                  f"{_limit_mb(max_notebook_bytes)} per notebook; not read (the instructor can "
                                  "raise it with --max-notebook-mb)")
                continue
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            if not isinstance(nb.get("cells"), list):
                raise ValueError("no cell list")
        except Exception as exc:
            problems[name] = (Status.CORRUPT, f"{name}.ipynb is not a readable notebook "
                              f"({type(exc).__name__}: {str(exc)[:200]})")
            continue
        (dest / f"{name}.ipynb").write_bytes(data)
    return problems
