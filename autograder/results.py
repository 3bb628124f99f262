"""Results: what each graded cell scored and why, from the gradebook and the autograded notebooks.

Everything here is rebuilt from what persists in the course folder, so it can be rerun at any
time (``python -m autograder export OUT``), and it includes the grades entered by hand in the
Formgrader:

- the gradebook: points (nbgrader's ``score``: a manual grade where one was given, else the
  automatic one);
- the autograded notebooks: each graded cell's status and reason (``metadata.autograder``,
  written by ``GradingExecute``);
- ``outcomes/STUDENT.json``: what the batch found before or around nbgrader (a missing,
  corrupt or refused notebook; a failed nbgrader run), per notebook.

:func:`export` writes ``grades.csv`` (``nbgrader export``, fields made spreadsheet-safe) and
``breakdown.csv``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib

import nbformat

from .course import CourseFolder
from .errors import GradeError
from .preprocessors import outcome_of
from .status import Status

BREAKDOWN_FIELDS = ["student_id", "notebook", "cell", "points", "max_points", "status", "reason"]
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets run as a formula (OWASP)
MANUAL_TODO = "written answer: grade it by hand in the Formgrader"


@dataclasses.dataclass
class Outcome:
    """What the batch found for one student, around nbgrader: notebooks not graded (status,
    reason), a failure of the nbgrader run itself, and how long it took."""

    problems: dict[str, tuple[Status, str]] = dataclasses.field(default_factory=dict)
    failure: str | None = None
    seconds: float | None = None  # wall time of the student's autograde (the class report shows it)

    def save(self, path: pathlib.Path) -> None:
        data = {"problems": {k: [s.value, r] for k, (s, r) in self.problems.items()}, "failure": self.failure,
                "seconds": self.seconds}
        path.write_text(json.dumps(data, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: pathlib.Path) -> "Outcome":
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls({k: (Status(s), r) for k, (s, r) in data.get("problems", {}).items()}, data.get("failure"),
                   data.get("seconds"))


def outcome_path(course: CourseFolder, student_id: str) -> pathlib.Path:
    return course.root / "outcomes" / f"{student_id}.json"


def csv_safe(value):
    """``value``, or ``'value`` when a spreadsheet would run it as a formula (it starts with
    = + - @ tab or CR; OWASP's advice). Numbers are returned unchanged unless negative."""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_START) else value


def neutralise_csv(path: pathlib.Path) -> None:
    """Rewrite a CSV file in place (same rows and columns) with every field made ``csv_safe``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([csv_safe(f) for f in row] for row in rows)
    os.replace(tmp, path)


def _num(x):
    if x is None:
        return ""
    return int(x) if float(x).is_integer() else round(float(x), 4)


def _recorded(path: pathlib.Path) -> dict[str, tuple[Status, str]]:
    """grade_id -> (status, reason) stored in an autograded notebook; {} when there is none."""
    if not path.is_file():
        return {}
    nb = nbformat.read(path, as_version=4)
    found = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        outcome = outcome_of(cell)
        if gid and outcome:
            found[gid] = outcome
    rebuilt = (nb.metadata.get("autograder") or {}).get("metadata_rebuilt")
    if rebuilt:  # say so on every row of the notebook: the instructor may want to look
        note = rebuilt.get("reason") or "metadata rebuilt from the master"
        found = {gid: (s, f"{r}; {note}" if r else note) for gid, (s, r) in found.items()}
    return found


def student_rows(course: CourseFolder, gb, student_id: str) -> list[dict]:
    """One breakdown row per graded cell of every notebook of the assignment, for one student."""
    from nbgrader.api import MissingEntry

    outcome = Outcome.load(outcome_path(course, student_id))
    rows = []
    assignment = gb.find_assignment(course.assignment)
    for notebook in sorted(assignment.notebooks, key=lambda n: n.name):
        name = notebook.name
        recorded = _recorded(course.autograded(student_id, name))
        for cell in sorted(notebook.grade_cells, key=lambda c: c.name):
            row = {"student_id": student_id, "notebook": name, "cell": cell.name, "max_points": _num(cell.max_score),
                   "points": 0, "status": "", "reason": ""}
            rows.append(row)
            if name in outcome.problems:
                status, reason = outcome.problems[name]
                row["status"], row["reason"] = status.value, reason
                continue
            try:
                grade = gb.find_grade(cell.name, name, course.assignment, student_id)
            except MissingEntry:
                grade = None
            if grade is None:
                row["status"] = Status.ERROR.value
                row["reason"] = outcome.failure or "no grade was recorded; see grading.log"
                continue
            by_hand = grade.manual_score is not None
            if cell.cell_type == "markdown":
                row["status"] = Status.MANUAL.value
                if by_hand:
                    row["points"], row["reason"] = _num(grade.score), "graded by hand"
                elif grade.needs_manual_grade:
                    row["points"], row["reason"] = "", MANUAL_TODO
                else:
                    row["points"], row["reason"] = _num(grade.score), "unchanged answer: 0"
                continue
            row["points"] = _num(grade.score)
            if cell.name in recorded:
                status, reason = recorded[cell.name]
                row["status"], row["reason"] = status.value, reason
            else:
                row["status"] = Status.ERROR.value
                row["reason"] = outcome.failure or "no execution record; see grading.log"
            if by_hand and grade.manual_score != grade.auto_score:
                note = f"points set by hand (automatic: {_num(grade.auto_score)})"
                row["reason"] = f"{row['reason']}; {note}" if row["reason"] else note
    return rows


def breakdown(course: CourseFolder) -> list[dict]:
    """Rows of every student graded into this course folder (a submission in the gradebook, or an
    outcome: a hand-in with no gradable notebook), sorted by id."""
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url) as gb:
        students = {s.student.id for s in gb.find_assignment(course.assignment).submissions}
        students |= {p.stem for p in (course.root / "outcomes").glob("*.json")}
        students = sorted(students)
        return [row for sid in students for row in student_rows(course, gb, sid)]


def export(course: CourseFolder, out: pathlib.Path) -> list[dict]:
    """Write ``out/grades.csv`` (nbgrader's export) and ``out/breakdown.csv``; return the rows."""
    rc, text = course.nbgrader(["export", "--to", str(out / "grades.csv")], "export")
    if rc != 0:
        raise GradeError(f"nbgrader export failed:\n{text[-2000:]}")
    neutralise_csv(out / "grades.csv")  # no field may start like a spreadsheet formula
    rows = breakdown(course)
    with open(out / "breakdown.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=BREAKDOWN_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)
    return rows
