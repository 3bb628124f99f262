"""``python -m autograder report OUT``: one self-contained HTML page about a graded batch
(``OUT/report.html``, also written at the end of every grade run).

Everything on the page comes from ``OUT/breakdown.csv`` (so its numbers are the CSV's) and
the students' outcome files (grading time); figures are PNGs embedded in the page, so it
opens offline. It shows: the score distribution per notebook, the pass rate per graded cell
(which exercises the class struggles with), the commonest failure reasons per cell grouped by
their first line, the students who lost points to timeouts, crashes, tampering or missing
notebooks, and the grading time per student.

The page is for the instructor, but it is still checked like feedback: every text is
escaped, and a reason that quotes a line of a hidden test is withheld.
"""

from __future__ import annotations

import base64
import collections
import csv
import datetime
import html
import io
import json
import pathlib
import statistics

from .errors import GradeError
from .status import Status

# What costs a student points without being a wrong answer: the instructor should look.
INCIDENT_STATUSES = (Status.TIMEOUT, Status.KERNEL_DIED, Status.TAMPERED, Status.CORRUPT, Status.MISSING,
                     Status.REFUSED, Status.ERROR)
WITHHELD = "(reason withheld: it quotes a hidden test)"
TOP_REASONS = 5


def _read_rows(out: pathlib.Path) -> list[dict]:
    path = out / "breakdown.csv"
    if not path.is_file():
        raise GradeError(f"{out} holds no breakdown.csv; give the --out of a grade run (or run "
                         f"`python -m autograder export {out}` first)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # undo csv_safe's quote: the page shows the text, escaped
        for key in ("reason", "student_id"):
            if row[key].startswith("'"):
                row[key] = row[key][1:]
    return rows


def _seconds(out: pathlib.Path) -> dict[str, float]:
    found = {}
    for path in sorted((out / "_nbgrader" / "outcomes").glob("*.json")):
        value = json.loads(path.read_text()).get("seconds")
        if value is not None:
            found[path.stem] = float(value)
    return found


def _float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def first_line(reason: str) -> str:
    return (reason.strip().splitlines() or [""])[0][:200]


def summarize(rows: list[dict], hidden_lines: set[str] = frozenset()) -> dict:
    """The numbers on the page (tests compare them with breakdown.csv)."""
    def visible(reason: str) -> str:
        return WITHHELD if any(h and h in reason for h in hidden_lines) else reason

    students = sorted({r["student_id"] for r in rows})
    notebooks = sorted({r["notebook"] for r in rows})
    scores = {nb: {} for nb in notebooks}
    max_points = collections.defaultdict(float)
    seen_cells = set()
    for r in rows:
        scores[r["notebook"]].setdefault(r["student_id"], 0.0)
        scores[r["notebook"]][r["student_id"]] += _float(r["points"]) or 0.0
        if (r["notebook"], r["cell"]) not in seen_cells:
            seen_cells.add((r["notebook"], r["cell"]))
            max_points[r["notebook"]] += _float(r["max_points"]) or 0.0
    cells = collections.OrderedDict()
    for r in rows:
        c = cells.setdefault((r["notebook"], r["cell"]), {"notebook": r["notebook"], "cell": r["cell"],
                                                          "max_points": _float(r["max_points"]) or 0.0,
                                                          "students": 0, "passed": 0, "manual": 0,
                                                          "reasons": collections.Counter()})
        c["students"] += 1
        if r["status"] == Status.PASSED.value:
            c["passed"] += 1
        elif r["status"] == Status.MANUAL.value:
            c["manual"] += 1
        else:
            c["reasons"][f"{r['status']}: {first_line(visible(r['reason']))}"] += 1
    for c in cells.values():  # a written answer (graded by hand) has no pass rate
        graded = c["students"] - c["manual"]
        c["pass_rate"] = c["passed"] / graded if graded and not c["manual"] else None
    incidents = [{"student_id": r["student_id"], "notebook": r["notebook"], "cell": r["cell"],
                  "points": r["points"], "max_points": r["max_points"], "status": r["status"],
                  "reason": first_line(visible(r["reason"]))}
                 for r in rows if r["status"] in {s.value for s in INCIDENT_STATUSES}]
    return {"students": students, "notebooks": notebooks, "scores": scores, "max_points": dict(max_points),
            "cells": list(cells.values()), "incidents": incidents}


def _figure(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _figures(summary: dict, seconds: dict[str, float]) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns
    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    figs = {}
    n = len(summary["notebooks"])
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.4), squeeze=False, layout="constrained")
    for ax, nb in zip(axes[0], summary["notebooks"]):
        values = list(summary["scores"][nb].values())
        top = summary["max_points"][nb]
        sns.histplot(values, bins=min(20, max(5, int(top) + 1)), binrange=(0, max(top, 1)), ax=ax, discrete=False)
        ax.set_xlabel(f"points (of {top:g})")
        ax.set_ylabel("students")
        ax.set_title(nb)
    figs["scores"] = _figure(fig)
    graded = [c for c in summary["cells"] if c["pass_rate"] is not None]
    if graded:
        fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(graded) + 1.2), layout="constrained")
        labels = [c["cell"] if n == 1 else f"{c['notebook']} / {c['cell']}" for c in graded]
        rates = [100 * c["pass_rate"] for c in graded]
        sns.barplot(x=rates, y=labels, ax=ax, color=sns.color_palette("deep")[0], orient="h")
        ax.set_xlim(0, 100)
        ax.set_xlabel("students who passed (%)")
        ax.set_ylabel("graded cell")
        figs["pass_rate"] = _figure(fig)
    if seconds:
        fig, ax = plt.subplots(figsize=(6.4, 3.2), layout="constrained")
        sns.histplot(list(seconds.values()), bins=min(30, max(5, len(seconds))), ax=ax)
        ax.set_xlabel("grading time per student (s)")
        ax.set_ylabel("students")
        figs["time"] = _figure(fig)
    return figs


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top;font-size:0.92em}th{background:#f3f3f3}img{max-width:100%}h2{margin-top:1.6em}
.muted{color:#666}"""


def render(assignment: str, summary: dict, seconds: dict[str, float]) -> str:
    figs = _figures(summary, seconds) if summary["students"] else {}
    parts = [f"<h1>Grading report: {html.escape(assignment)}</h1>",
             f"<p class='muted'>{len(summary['students'])} students; written "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC from breakdown.csv. Points "
             f"include grades entered by hand so far; written answers not yet graded count 0.</p>"]
    parts.append("<h2>Scores per notebook</h2>")
    rows = []
    for nb in summary["notebooks"]:
        values = list(summary["scores"][nb].values())
        rows.append([nb, len(values), f"{summary['max_points'][nb]:g}", f"{statistics.mean(values):.2f}",
                     f"{statistics.median(values):g}", f"{min(values):g}", f"{max(values):g}"])
    parts.append(_table(["notebook", "students", "max points", "mean", "median", "min", "max"], rows))
    parts.append(figs.get("scores", ""))
    parts.append("<h2>Pass rate per graded cell</h2>")
    parts.append(_table(["notebook", "cell", "points", "passed", "of", "pass rate"],
                        [[c["notebook"], c["cell"], f"{c['max_points']:g}", c["passed"], c["students"] - c["manual"],
                          "written answer" if c["pass_rate"] is None else f"{100 * c['pass_rate']:.0f} %"]
                         for c in summary["cells"]]))
    parts.append(figs.get("pass_rate", ""))
    parts.append("<h2>Commonest failure reasons</h2><p class='muted'>Grouped by the reason's first line; "
                 f"the {TOP_REASONS} most common per cell.</p>")
    reason_rows = [[c["notebook"], c["cell"], reason, count]
                   for c in summary["cells"] for reason, count in c["reasons"].most_common(TOP_REASONS)]
    parts.append(_table(["notebook", "cell", "status: reason", "students"], reason_rows) if reason_rows
                 else "<p>No graded cell failed.</p>")
    parts.append("<h2>Points lost to timeouts, crashes, tampering or missing notebooks</h2>")
    incidents = summary["incidents"]
    parts.append(_table(["student", "notebook", "cell", "points", "of", "status", "reason"],
                        [[i["student_id"], i["notebook"], i["cell"], i["points"], i["max_points"], i["status"],
                          i["reason"]] for i in incidents]) if incidents else "<p>None.</p>")
    parts.append("<h2>Grading time per student</h2>")
    if seconds:
        values = sorted(seconds.values())
        parts.append(f"<p>median {statistics.median(values):.1f} s, slowest {values[-1]:.1f} s, total "
                     f"{sum(values):.0f} s of grading processes (students graded side by side overlap).</p>")
        parts.append(figs.get("time", ""))
        slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:10]
        parts.append(_table(["student", "seconds"], [[s, f"{t:.1f}"] for s, t in slowest]))
    else:
        parts.append("<p>Not recorded.</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Grading report: "
            f"{html.escape(assignment)}</title><style>{STYLE}</style></head><body>" + "\n".join(parts)
            + "</body></html>\n")


def write_report(out: pathlib.Path) -> pathlib.Path:
    """Write ``OUT/report.html`` for the batch in ``out``; returns its path."""
    import nbformat

    from .feedback import hidden_lines_of
    out = pathlib.Path(out).resolve()
    marker = out / "_nbgrader" / "assignment.txt"
    if not marker.is_file():
        raise GradeError(f"{out} holds no graded batch (no _nbgrader/assignment.txt); give the --out of a grade run")
    assignment = marker.read_text().strip()
    rows = _read_rows(out)
    # The batch's copy of the master (the course's source/ may have moved on since).
    masters = sorted((out / "_nbgrader" / "source" / assignment).glob("*.ipynb"))
    hidden = {line for path in masters for line in hidden_lines_of(nbformat.read(path, as_version=4))}
    page = render(assignment, summarize(rows, hidden), _seconds(out))
    path = out / "report.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
