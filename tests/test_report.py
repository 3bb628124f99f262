"""The class report (autograder/report.py): its numbers are breakdown.csv's, student text is
escaped, hidden-test lines are withheld, and the page needs no network."""

from __future__ import annotations

import csv
import re

import pytest

from autograder import report
from autograder.errors import GradeError
from autograder.results import BREAKDOWN_FIELDS


def row(student, cell, points, max_points, status, reason="", notebook="99_fixture"):
    return {"student_id": student, "notebook": notebook, "cell": cell, "points": points, "max_points": max_points,
            "status": status, "reason": reason}


ROWS = [
    row("alice", "test_a", "2", "2", "passed"),
    row("alice", "test_b", "0", "1", "failed", "AssertionError: expected shape (64, 10), got (10, 64)\nmore"),
    row("alice", "written", "", "3", "manual", "written answer: grade it by hand in the Formgrader"),
    row("bob", "test_a", "0", "2", "timeout", "the test did not finish within 10 s"),
    row("bob", "test_b", "0", "1", "failed", "AssertionError: expected shape (64, 10), got (10, 64)\nother detail"),
    row("bob", "written", "2", "3", "manual", "graded by hand"),
    row("carol", "test_a", "0", "2", "missing", "no notebook named 99_fixture.ipynb"),
    row("carol", "test_b", "0", "1", "missing", "no notebook named 99_fixture.ipynb"),
    row("carol", "written", "0", "3", "missing", "no notebook named 99_fixture.ipynb"),
]


def test_summary_counts_what_the_breakdown_says():
    summary = report.summarize(ROWS)
    assert summary["students"] == ["alice", "bob", "carol"]
    assert summary["scores"]["99_fixture"] == {"alice": 2.0, "bob": 2.0, "carol": 0.0}
    assert summary["max_points"]["99_fixture"] == 6.0
    cells = {c["cell"]: c for c in summary["cells"]}
    assert (cells["test_a"]["passed"], cells["test_a"]["students"]) == (1, 3)
    assert cells["test_a"]["pass_rate"] == pytest.approx(1 / 3)
    assert cells["test_b"]["pass_rate"] == 0
    # Reasons grouped by their first line: both shape errors are one group of 2.
    assert cells["test_b"]["reasons"].most_common(1) == [
        ("failed: AssertionError: expected shape (64, 10), got (10, 64)", 2)]
    # A written answer has no pass rate; carol's missing notebook counts against it all the same.
    assert cells["written"]["pass_rate"] is None and cells["written"]["manual"] == 2
    incidents = {(i["student_id"], i["cell"], i["status"]) for i in summary["incidents"]}
    assert incidents == {("bob", "test_a", "timeout"), ("carol", "test_a", "missing"), ("carol", "test_b", "missing"),
                         ("carol", "written", "missing")}


def test_page_escapes_student_text_and_withholds_hidden_lines(tmp_path):
    hidden = "assert np.allclose(softmax(big), reference_softmax(big))"
    rows = ROWS + [row("dave", "test_a", "0", "2", "failed", "ValueError: <script>alert('x')</script>"),
                   row("erin", "test_a", "0", "2", "failed", f"AssertionError: {hidden}")]
    page = report.render("99_fixture", report.summarize(rows, {hidden}), {"alice": 3.5, "bob": 12.0})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert hidden not in page and report.WITHHELD in page
    # Self-contained: figures are embedded, nothing is fetched.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.count('src="data:image/png;base64,') == 3  # scores, pass rate, grading time
    assert "median 7.8 s, slowest 12.0 s" in page


def test_report_of_a_folder_that_is_not_a_batch_is_a_clear_error(tmp_path):
    with pytest.raises(GradeError, match="no graded batch"):
        report.write_report(tmp_path)
    (tmp_path / "_nbgrader").mkdir()
    (tmp_path / "_nbgrader" / "assignment.txt").write_text("99_fixture\n")
    with pytest.raises(GradeError, match="no breakdown.csv"):
        report.write_report(tmp_path)
    with open(tmp_path / "breakdown.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=BREAKDOWN_FIELDS)
        writer.writeheader()
        writer.writerows(ROWS)
    path = report.write_report(tmp_path)
    assert path == tmp_path / "report.html" and "Grading report: 99_fixture" in path.read_text()
