"""What feedback shows (autograder/feedback.py): no hidden tests, nothing a student's code
could use to smuggle them out after they ran, and no student HTML or JavaScript.

The unit tests run ``ScrubFeedback`` (and the feedback exporter) on hand-built notebooks shaped
like autograded ones: test cells with nbgrader metadata {grade, locked, points} and a hidden
region, solution cells, student cells without metadata. The last test grades fixture
submissions end to end, in the sandbox (slow)."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import pathlib
import re
import sys
import zlib

import nbformat
import pytest
from bs4 import BeautifulSoup

from autograder import grade as grading
from autograder.feedback import (REDACTED, WITHHELD, ScrubFeedback, page_problems, render, shown_hidden_lines,
                                 template_scripts, unsafe_html)
from autograder.preprocessors import hidden_lines_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "source"
MASTER = SOURCE / "99_fixture" / "99_fixture.ipynb"
sys.path.insert(0, str(FIXTURES))
import make_submissions  # noqa: E402

new_code, new_md, out = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell, nbformat.v4.new_output
SENTINEL = "_hidden_sentinel = 'HIDDEN-SENTINEL-unit-7f3a'"
COURSE_IMPORT = "torch = frameworks.import_torch()"
HIDDEN_IMPORT = "torch = frameworks.import_torch()  # used by the hidden test"
HIDDEN_ASSERT = "assert softmax([1000.0, 0.0])[0] > 0.99, 'softmax overflows on large inputs'"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png").decode()


def grade_meta(grade_id, points=1):
    return {"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                         "solution": False, "schema_version": 3, "task": False}}


def solution_meta(grade_id, *, grade=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": False, "solution": True, "schema_version": 3,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def locked_meta(grade_id):
    return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": True, "solution": False,
                         "schema_version": 3, "task": False}}


def with_hidden(visible, hidden_lines):
    return "\n".join([visible, "### BEGIN HIDDEN TESTS", *hidden_lines, "### END HIDDEN TESTS"])


def error(ename, evalue, traceback=None):
    return out("error", ename=ename, evalue=evalue, traceback=traceback or [f"{ename}: {evalue}"])


def stream(text, name="stdout"):
    return out("stream", name=name, text=text)


def display(data, kind="display_data"):
    if kind == "execute_result":
        return out("execute_result", data=data, execution_count=3)
    return out("display_data", data=data)


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def scrub(nb, tmp_path, hidden=None):
    """Run ScrubFeedback on ``nb`` with the hidden lines of ``nb`` itself (its test cells hold
    their hidden regions, as in an autograded notebook) or ``hidden``."""
    path = tmp_path / "hidden_lines.json"
    lines = hidden_lines_of(nb) if hidden is None else hidden
    path.write_text(json.dumps({"nbname": lines}))
    nb, _ = ScrubFeedback(hidden_lines_file=str(path)).preprocess(copy.deepcopy(nb), {"unique_key": "nbname"})
    return nb, lines


def texts(cell) -> str:
    """Everything a cell's outputs would show, as one string."""
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts += [o.ename, o.evalue, *o.traceback]
        else:
            parts += [v if isinstance(v, str) else json.dumps(v) for v in o.get("data", {}).values()]
    return "\n".join(parts)


def decoded_runs(text: str) -> str:
    """Every long base64 run of ``text`` decoded (and zlib-decompressed when it is), joined."""
    found = []
    for run in re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", text):
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            pass
        found.append(raw.decode("utf-8", "replace"))
    return "\n".join(found)


_TEMPLATE_SCRIPTS = None


def student_script_or_handler(html_text: str) -> list[str]:
    """Script elements not of the feedback template, on* attributes, iframes/objects/embeds/
    forms and javascript: URLs of ``html_text``, found with BeautifulSoup (independently of
    autograder.feedback's own scanner)."""
    global _TEMPLATE_SCRIPTS
    if _TEMPLATE_SCRIPTS is None:
        soup = BeautifulSoup(render(nbformat.v4.new_notebook()), "html.parser")
        _TEMPLATE_SCRIPTS = {(s.get("src"), s.get("type"), s.string) for s in soup.find_all("script")}
    soup = BeautifulSoup(html_text, "html.parser")
    bad = [f"script {s}"[:120] for s in soup.find_all("script")
           if (s.get("src"), s.get("type"), s.string) not in _TEMPLATE_SCRIPTS]
    bad += [f"<{t.name}>" for t in soup.find_all(["iframe", "object", "embed", "form"])]
    for tag in soup.find_all(True):
        for key, value in tag.attrs.items():
            value = " ".join(value) if isinstance(value, list) else value
            if key.lower().startswith("on"):
                bad.append(f"<{tag.name} {key}>")
            elif re.sub(r"[\x00-\x20]+", "", value).lower().startswith("javascript:"):
                bad.append(f"<{tag.name} {key}={value[:40]}>")
    return bad


def graded_softmax_cells(test_outputs=(), test_metadata=None, hidden_lines=(SENTINEL, HIDDEN_IMPORT, HIDDEN_ASSERT)):
    """Markdown, a locked import cell, the exercise, its test cell with a hidden region."""
    imports = new_code(f"import numpy as np\n{COURSE_IMPORT}", metadata=locked_meta("imports"))
    exercise = new_code("def softmax(z):\n    return np.exp(z) / np.exp(z).sum()", metadata=solution_meta("ex_softmax"))
    test = new_code(with_hidden("got = softmax(np.array([1.0, 2.0]))\nassert abs(got.sum() - 1) < 1e-9, 'rows must sum to 1'",
                                list(hidden_lines)), metadata=grade_meta("test_softmax", 2))
    if test_metadata:
        test.metadata["autograder"] = test_metadata
    test.outputs = list(test_outputs)
    test.execution_count = 5
    return [new_md("# Softmax"), imports, exercise, test]


# --------------------------------------------------------------------------- HTML and JavaScript

def test_rich_outputs_are_reduced_to_text_and_images(tmp_path):
    """HTML, JavaScript, SVG, Markdown and widget outputs are dropped from every cell (text/plain
    and PNG/JPEG images stay, a note replaces an output left without text), so the rendered
    feedback holds no student script, handler or iframe."""
    student = new_code("from IPython.display import HTML, display\n...")
    student.outputs = [
        display({"text/html": "<script>window.PWNED = 1</script><b>hi</b>", "text/plain": "<IPython HTML object>"}),
        display({"text/html": "<img src=x onerror=\"window.PWNED = 2\"><iframe src='https://evil'></iframe>"}),
        display({"application/javascript": "window.PWNED = 3", "text/plain": "<IPython Javascript object>"},
                kind="execute_result"),
        display({"image/svg+xml": "<svg onload=\"window.PWNED = 4\"><script>window.PWNED = 5</script></svg>"}),
        display({"text/markdown": "<script>window.PWNED = 6</script>[x](javascript:alert(7))"}),
        display({"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
                 "text/plain": "IntSlider(value=3)"}),
        display({"image/png": PNG, "text/plain": "<Figure size 640x480>"}),
        display({"image/png": "\"><script>window.PWNED = 8</script>"}),
        display({"text/html": "<p>fine</p>"}, kind="execute_result"),
    ]
    student.outputs[6].metadata = {"image/png": {"width": 320, "filenames": "javascript:alert(9)"}}
    nb = notebook(*graded_softmax_cells()[:3], student, graded_softmax_cells()[3])
    nb, _ = scrub(nb, tmp_path)
    outs = nb.cells[3].outputs
    mimes = {m for o in outs for m in o.get("data", {})}
    assert mimes <= {"text/plain", "image/png", "image/jpeg"}, mimes
    plain = [o.data["text/plain"] for o in outs if "text/plain" in o.get("data", {})]
    assert "<IPython HTML object>" in plain and "IntSlider(value=3)" in plain and "<Figure size 640x480>" in plain
    assert sum("not shown in feedback" in p for p in plain) >= 4, plain  # html-only, svg, markdown, bad png, html
    pngs = [o for o in outs if "image/png" in o.get("data", {})]
    assert [o.data["image/png"] for o in pngs] == [PNG], "the valid image stays, the one that is not base64 goes"
    assert pngs[0].metadata == {"image/png": {"width": 320}}, "only the image size is kept"
    assert "PWNED" not in json.dumps([o.get("data", {}) for o in outs])
    html_text = render(nb)
    assert not student_script_or_handler(html_text), student_script_or_handler(html_text)
    assert "PWNED" not in html_text


def test_markdown_answers_are_escaped_and_links_checked(tmp_path):
    """Raw HTML in written markdown (the written answer, or any markdown cell) is shown as text;
    markdown still renders (quotes, code, emphasis, http links, images); javascript: links and
    images do not survive."""
    answer = new_md("Because `exp` overflows: `a < b` and **bold**.\n\n> a quote\n\n"
                    "<script>window.PWNED = 1</script>\n\n<img src=x onerror=\"window.PWNED = 2\">\n\n"
                    "<iframe src=\"https://evil.example\"></iframe> <form action=\"https://evil\"><input></form>\n\n"
                    "[click](javascript:alert(3)) [tab](java&#09;script:alert(4)) "
                    "<a href=\"JaVaScRiPt:alert(5)\" onclick=\"x()\">raw</a>\n\n"
                    "[course](https://example.org/course) ![plot](data:image/png;base64,iVBORw0KGgo=) "
                    "![remote pixel](https://example.org/pixel.png)\n\n"
                    "<svg onload=\"window.PWNED = 6\"></svg> <b onmouseover=\"window.PWNED = 7\">b</b>",
                    metadata=solution_meta("written_softmax", grade=True, points=1))
    edited_course_text = new_md("## Exercise\n<script>window.PWNED = 8</script>")
    nb = notebook(edited_course_text, *graded_softmax_cells()[1:], answer)
    nb, _ = scrub(nb, tmp_path)
    html_text = render(nb)
    assert not student_script_or_handler(html_text), student_script_or_handler(html_text)
    soup = BeautifulSoup(html_text, "html.parser")
    text = soup.get_text()
    assert "<script>window.PWNED = 1</script>" in text, "raw HTML is shown as text"
    assert "<script>window.PWNED = 8</script>" in text
    assert soup.find("blockquote") and "a quote" in soup.find("blockquote").get_text(), "markdown still renders"
    assert "a < b" in text and soup.find("strong")
    assert soup.find("a", href="https://example.org/course"), "http links stay"
    assert soup.find("img", src="data:image/png;base64,iVBORw0KGgo="), "data:image images stay"
    assert "remote pixel" in text and not soup.find("img", src=re.compile("example.org")), \
        "an image from the web is its alt text: opening the page fetches nothing"


def test_last_check_finds_what_does_not_come_from_the_template():
    """unsafe_html: the feedback template's own scripts (MathJax) are allowed, nothing else."""
    clean = render(notebook(new_md("# Title"), new_code("print(1)")))
    allowed = template_scripts()
    assert len(allowed) >= 1 and unsafe_html(clean, allowed) == []
    injected = {
        "script": "<script>alert(1)</script>",
        "script src": '<script src="https://evil.example/x.js"></script>',
        "template script with other content": '<script type="text/x-mathjax-config">alert(1)</script>',
        "handler": '<img src="x" onerror="alert(1)">',
        "javascript url": '<a href=" java&#09;script:alert(1)">x</a>',
        "iframe": '<iframe src="https://evil.example"></iframe>',
        "object": '<object data="x.swf"></object>',
        "embed": '<embed src="x.swf">',
        "form": '<form action="https://evil.example"><input name="q"></form>',
        "unclosed script": "<script>alert(1)",
    }
    for what, snippet in injected.items():
        page = clean.replace("</body>", snippet + "</body>")
        assert unsafe_html(page, allowed), f"{what} was not found"


def test_last_check_for_hidden_lines_is_whole_line():
    """feedback.shown_hidden_lines: a feedback line that is a hidden line (also HTML-escaped, in
    highlighting spans, or quoted as traceback context) counts; a longer ordinary line that
    merely contains one does not (no more summaries for `torch = frameworks.import_torch()  # ...`)."""
    hidden = {COURSE_IMPORT, HIDDEN_ASSERT}
    page = ("<pre>import numpy as np\n<span class='n'>torch</span> = frameworks.import_torch()  # the course's\n"
            "print('torch = frameworks.import_torch()')</pre>")
    assert shown_hidden_lines(page, hidden) == []
    assert shown_hidden_lines("<pre>  <span>torch</span> = frameworks.import_torch()\n</pre>", hidden)
    escaped = HIDDEN_ASSERT.replace("'", "&#x27;").replace(">", "&gt;")
    assert shown_hidden_lines(f"<pre>\x1b[0;32m----&gt; 6\x1b[0m {escaped}</pre>", hidden)


# --------------------------------------------------------------------------- hidden tests

def test_output_after_a_hidden_test_is_withheld(tmp_path):
    """A student cell after the first test with a hidden region printed the hidden lines,
    base64(zlib(...))-encoded and plainly; feedback withholds those outputs (also a later test
    cell's prints, whose error is reduced to one line). Cells before it still show theirs."""
    cells = graded_softmax_cells(test_outputs=[stream("visible part ran\n")])
    secret = "\n".join([SENTINEL, HIDDEN_IMPORT, HIDDEN_ASSERT])
    blob = base64.b64encode(zlib.compress(secret.encode())).decode()
    before = new_code("print('before the tests')")
    before.outputs = [stream("before the tests\n")]
    dump = new_code("import base64, zlib; print(base64.b64encode(zlib.compress('\\n'.join(In).encode())).decode())")
    dump.outputs = [stream(blob + "\n"), display({"text/plain": repr(secret)}, kind="execute_result")]
    plain = new_code("print(' | '.join(In))")
    plain.outputs = [stream(secret.replace("\n", " | ") + "\n")]
    later_test = new_code(with_hidden("assert accuracy() == 1, f'got {accuracy()}'", ["assert accuracy(2) == 1"]),
                          metadata=grade_meta("test_accuracy"))
    later_test.outputs = [stream(blob + "\n"),
                          error("AssertionError", "got 0.5",
                                ["Traceback", f"----> 1 assert accuracy() == 1, f'got {{accuracy()}}'",
                                 f"File <string>:1, in accuracy\n----> 1 {blob}", "AssertionError: got 0.5"])]
    quiet = new_code("def accuracy(x=None):\n    return 1")
    nb = notebook(before, *cells, dump, plain, later_test, quiet)
    nb, hidden = scrub(nb, tmp_path)
    assert nb.cells[8].outputs == [], "a cell without output gets no note"
    assert SENTINEL in hidden
    assert texts(nb.cells[0]) == "before the tests\n", "cells that ran before any hidden test keep their output"
    assert "visible part ran" in texts(nb.cells[4])
    for index in (5, 6):
        assert [o.output_type for o in nb.cells[index].outputs] == ["stream"]
        assert nb.cells[index].outputs[0].text == WITHHELD
    later = nb.cells[7].outputs
    assert [o.output_type for o in later] == ["stream", "error"] and later[0].text == WITHHELD
    assert later[1].traceback == ["AssertionError: got 0.5"], "a later test's error is one line, without frames"
    shown = "\n".join(texts(c) for c in nb.cells)
    decoded = decoded_runs(shown)
    assert "HIDDEN-SENTINEL" not in shown + decoded and not [h for h in hidden if h in shown + decoded]


def test_hidden_part_outputs_are_dropped_and_its_error_is_one_line(tmp_path):
    """Outputs at index >= hidden_output_start are not shown; the hidden part's error is shown
    once, as `ename: evalue` (evalue at most 300 characters, no frames, hidden lines redacted)."""
    long_value = "softmax of large logits: expected [0.1 0.2 ...], got " + "9" * 400
    frames = ["\x1b[0;31mAssertionError\x1b[0m Traceback (most recent call last)",
              f"Cell In[5], line 6\n      4 {SENTINEL}\n      5 {HIDDEN_IMPORT}\n----> 6 {HIDDEN_ASSERT}",
              f"\x1b[0;31mAssertionError\x1b[0m: {long_value}"]
    outputs = [stream("visible: debug print\n"), stream(f"hidden part printed {SENTINEL}\n"),
               display({"text/plain": "array([0.5, 0.5])"}, kind="execute_result"),
               error("AssertionError", long_value, frames)]
    nb = notebook(*graded_softmax_cells(outputs, {"hidden_output_start": 1}))
    nb, _ = scrub(nb, tmp_path)
    shown = nb.cells[3].outputs
    assert [o.output_type for o in shown] == ["stream", "error"]
    assert shown[0].text == "visible: debug print\n"
    err = shown[1]
    assert err.ename == "AssertionError" and len(err.evalue) <= 300 and err.evalue.startswith("softmax of large")
    assert err.traceback == [f"AssertionError: {err.evalue}"]
    assert "HIDDEN-SENTINEL" not in texts(nb.cells[3]) + nb.cells[3].source
    assert "BEGIN HIDDEN" not in nb.cells[3].source and "rows must sum to 1" in nb.cells[3].source

    quoting = [error("AssertionError", f"failed at {HIDDEN_ASSERT}")]
    nb = notebook(*graded_softmax_cells(quoting, {"hidden_output_start": 0}))
    nb, _ = scrub(nb, tmp_path)
    assert nb.cells[3].outputs[0].evalue == REDACTED, "an error message quoting a hidden line is redacted"

    passed = [stream("visible\n"), stream("hidden print\n")]
    nb = notebook(*graded_softmax_cells(passed, {"hidden_output_start": 1}))
    nb, _ = scrub(nb, tmp_path)
    assert texts(nb.cells[3]) == "visible\n", "a hidden part that passed shows nothing"


def test_without_the_split_the_hidden_traceback_lines_are_dropped(tmp_path):
    """No hidden_output_start (older execution): the quoted lines of the hidden region are
    dropped from the test cell's own frame, the failure message stays."""
    frames = ["AssertionError Traceback (most recent call last)",
              f"Cell In[5], line 8\n      1 got = softmax(np.array([1.0, 2.0]))\n      6 {SENTINEL}\n"
              f"----> 8 {HIDDEN_ASSERT}",
              "AssertionError: softmax overflows on large inputs"]
    nb = notebook(*graded_softmax_cells([error("AssertionError", "softmax overflows on large inputs", frames)]))
    nb, _ = scrub(nb, tmp_path)
    shown = texts(nb.cells[3])
    assert "softmax overflows on large inputs" in shown and "got = softmax" in shown
    assert "HIDDEN-SENTINEL" not in shown and HIDDEN_ASSERT not in shown


@pytest.mark.parametrize("hidden_line, course_line", [
    (HIDDEN_IMPORT, COURSE_IMPORT),  # the hidden region's copy has a comment
    (COURSE_IMPORT, COURSE_IMPORT + "  # the course's import"),  # the course's copy has one
])
def test_ordinary_course_lines_are_not_redacted(tmp_path, hidden_line, course_line):
    """A course line that resembles a hidden line (same code, another comment) stays in the
    locked import cell's source and in outputs; only whole hidden lines are redacted."""
    cells = graded_softmax_cells(hidden_lines=(SENTINEL, hidden_line, HIDDEN_ASSERT))
    cells[1].source = f"import numpy as np\n{course_line}"
    cells[1].outputs = [stream(f"{course_line}\nloaded: {course_line}\n")]
    traceback = ["Traceback", f"Cell In[5], line 7\n----> 7 {hidden_line}", "NameError: name 'frameworks'"]
    student = new_code(f"print({course_line!r})")
    student.outputs = [stream(f"{course_line}\n"), error("NameError", "name 'frameworks' is not defined", traceback)]
    nb = notebook(*cells[:3], student, cells[3])
    nb, hidden = scrub(nb, tmp_path)
    assert course_line not in hidden
    assert nb.cells[1].source == f"import numpy as np\n{course_line}", "a locked course cell's source is untouched"
    assert texts(nb.cells[1]) == f"{course_line}\nloaded: {course_line}\n"
    assert nb.cells[3].source == f"print({course_line!r})"
    assert nb.cells[3].outputs[0].text == f"{course_line}\n"
    if hidden_line in course_line:
        # The hidden line is part of a line the student sees anyway: nothing to hide.
        assert hidden_line not in hidden
        assert REDACTED not in "\n".join(nb.cells[3].outputs[1].traceback)
    else:
        assert hidden_line in hidden
        assert REDACTED in nb.cells[3].outputs[1].traceback[1], "a traceback line quoting the hidden line is redacted"
        assert hidden_line not in "\n".join(nb.cells[3].outputs[1].traceback)


# --------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_feedback_end_to_end_has_no_student_script_nor_encoded_hidden_tests(tmp_path):
    """Graded in the sandbox: an HTML/JS output cell, an <img onerror> display and a <script> in
    the written answer run nothing in the feedback; a last cell printing base64(zlib(In))
    shows nothing that decodes to a hidden-test line."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    rich = make_submissions.filled()
    rich.cells[make_submissions.cell_index(rich, "written_softmax")].source = make_submissions.WRITTEN + (
        "\n\n<script>window.PWNED = 'answer'</script> <img src=x onerror=\"window.PWNED = 'answer-img'\">"
        " [click](javascript:alert('answer-link'))")
    make_submissions.insert_after(rich, "ex_softmax", (
        "from IPython.display import HTML, Javascript, display\n"
        "display(HTML(\"<script>window.PWNED = 'html'</script><b>bold</b>\"))\n"
        "display(HTML('<img src=x onerror=\"window.PWNED = 1\">'))\n"
        "display(Javascript(\"window.PWNED = 'js'\"))"))
    exfil = make_submissions.filled()
    make_submissions.insert_after(exfil, "written_softmax", (
        "import base64, zlib; print(base64.b64encode(zlib.compress('\\n'.join(In).encode())).decode())"))
    for sid, nb in (("rich_html", rich), ("exfil", exfil)):
        (subs / sid).mkdir(parents=True)
        nbformat.write(nb, subs / sid / "99_fixture.ipynb")
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE,
                         options=grading.GradeOptions(timeout=10, memory_mb=2048, cpu_seconds=120,
                                                      student_timeout=300)) == 0
    log = (out / "grading.log").read_text()
    assert "replaced by a summary" not in log, "the feedback should be the notebook, not the fallback summary"
    hidden = hidden_lines_of(nbformat.read(MASTER, as_version=4))
    assert any("HIDDEN-SENTINEL" in h for h in hidden)

    autograded = nbformat.read(out / "_nbgrader" / "autograded" / "exfil" / "99_fixture" / "99_fixture.ipynb",
                               as_version=4)
    printed = "".join(o.get("text", "") for o in autograded.cells[-1].get("outputs", []))
    assert re.search(r"[A-Za-z0-9+/]{200,}", printed), "the printing cell ran"
    kept = zlib.decompress(base64.b64decode(re.search(r"[A-Za-z0-9+/=]{200,}", printed).group())).decode()
    assert "softmax" in kept, "In holds the student's cells"
    assert "HIDDEN-SENTINEL" not in kept and "__autograder" not in kept, \
        "hidden tests and the guard ran without history: In does not hold them"

    for sid in ("rich_html", "exfil"):
        page = (out / "feedback" / sid / "99_fixture.html").read_text()
        assert "Student's answer" in page and make_submissions.WRITTEN in page, f"{sid}: not the notebook feedback"
        bad = student_script_or_handler(page)
        assert not bad, f"{sid}: {bad}"
        text = BeautifulSoup(page, "html.parser").get_text()
        decoded = decoded_runs(page) + decoded_runs(text)
        assert "HIDDEN-SENTINEL" not in page + decoded, f"{sid}: hidden test shown"
        leaked = [h for h in hidden if h in text or h in decoded]
        assert not leaked, f"{sid}: shows hidden-test lines {leaked[:2]}"
    rich_page = (out / "feedback" / "rich_html" / "99_fixture.html").read_text()
    assert "window.PWNED = 'answer'" in BeautifulSoup(rich_page, "html.parser").get_text(), \
        "the written answer's raw HTML is shown as text"
    assert "IPython.core.display.HTML object" in rich_page, "text/plain of the HTML display stays"


def test_test_cells_split_at_the_hidden_marker_or_run_whole_as_hidden():
    """The hidden part runs as its own execution; a marker inside a block cannot be split
    there, so the whole cell runs as hidden (its outputs are then all withheld)."""
    from autograder.preprocessors import split_hidden
    assert split_hidden("x = 1\n") is None
    assert split_hidden("x = 1\n### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS\n") == \
        ("x = 1\n", "### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS\n")
    inside = "for i in range(3):\n    x = i\n    ### BEGIN HIDDEN TESTS\n    assert x >= 0\n"
    assert split_hidden(inside) == ("", inside)
    open_bracket = "x = (1,\n### BEGIN HIDDEN TESTS\n2)\n"
    assert split_hidden(open_bracket) == ("", open_bracket)


def test_page_problems_names_what_a_page_must_not_show():
    """The last check shared by nbgrader's feedback exporter and the batch command."""
    allowed = template_scripts()
    hidden = {"assert hidden_check(x) == 42"}
    clean = render(nbformat.v4.new_notebook())
    assert page_problems(clean, hidden, allowed) == ""
    bad = clean.replace("</body>", "<pre>\nassert hidden_check(x) == 42\n</pre>\n<script>steal()</script></body>", 1)
    why = page_problems(bad, hidden, allowed)
    assert "1 hidden-test lines" in why and "student HTML/JS" in why, why


# --------------------------------------------------------------------------- offline, no grader paths, data

MATH_CELL = ("## Softmax, in symbols\n\n$\\sigma(z)_i = \\frac{e^{z_i}}{\\sum_j e^{z_j}}$, and a cosine schedule\n\n"
             "$$\\eta(t) = \\begin{cases} \\eta_0 \\tfrac{t}{W} & t < W \\\\ \\eta_{\\min} & \\text{otherwise} \\end{cases}$$")
DATA_CELL = ("import os\nfrom dlcourse import data\n(x_train, _), _ = data.load_mnist()\n"
             "print('training images:', len(x_train))\nprint('working folder:', os.getcwd())\n"
             "print('data folder:', os.environ.get('DLCOURSE_DATA'))")
URL_ATTRIBUTES = ("src", "href", "data", "poster", "srcset", "action", "background")


def network_references(page: str) -> list[str]:
    """Everything in ``page`` a browser would fetch from the network when it opens it: a URL
    attribute of any element (script, link, img, iframe, ...) that is absolute (http:, https:,
    protocol-relative //), and url(...) or @import in its CSS. Plain hyperlinks (<a href>) are
    followed only when clicked: not counted."""
    soup = BeautifulSoup(page, "html.parser")
    found = []
    for tag in soup.find_all(True):
        for key in URL_ATTRIBUTES:
            value = tag.get(key)
            if tag.name == "a" or not isinstance(value, str):
                continue
            if re.match(r"\s*(https?:|//)", value, re.I):
                found.append(f"<{tag.name} {key}={value[:80]}>")
    for style in soup.find_all("style"):
        found += [m.group(0)[:80] for m in re.finditer(r"(url\(\s*['\"]?\s*(https?:|//)|@import)[^;)]*", style.get_text(), re.I)]
    return found


def grade_math_and_data(tmp_path, name):
    """One submission with a markdown cell of equations and a cell that loads MNIST and prints
    its working folder and data folder, before the first hidden test (its outputs are shown)."""
    subs, out = tmp_path / f"subs-{name}", tmp_path / f"out-{name}"
    nb = make_submissions.filled()
    make_submissions.insert_after(nb, "ex_softmax", DATA_CELL)
    nb.cells.insert(make_submissions.cell_index(nb, "ex_softmax"), new_md(MATH_CELL))
    nb.cells[make_submissions.cell_index(nb, "written_softmax")].source = make_submissions.WRITTEN + (
        " In symbols: $\\max_j z_j$ is subtracted, $e^{z_i - \\max_j z_j} \\le 1$.")
    (subs / "mathdata").mkdir(parents=True)
    nbformat.write(nb, subs / "mathdata" / "99_fixture.ipynb")
    assert grading.grade("99_fixture", subs, out, source_dir=SOURCE,
                         options=grading.GradeOptions(timeout=60, memory_mb=3072, cpu_seconds=300,
                                                      student_timeout=600)) == 0
    log = (out / "grading.log").read_text()
    page = (out / "feedback" / "mathdata" / "99_fixture.html").read_text()
    assert "Student's answer" in page, "not the notebook feedback: " + log[-2000:]
    return out, log, page


def assert_offline_and_private(out, page):
    from autograder.mathjax import mathjax_source
    assert network_references(page) == [], network_references(page)
    soup = BeautifulSoup(page, "html.parser")
    scripts = soup.find_all("script")
    assert [s.get("src") for s in scripts] == [None, None], "two inline scripts: MathJax's configuration, MathJax"
    assert scripts[1].string.strip() == mathjax_source(), "MathJax itself is in the page"
    text = soup.get_text()
    assert "\\frac{e^{z_i}}{\\sum_j e^{z_j}}" in text and "\\begin{cases}" in text, "the course's TeX is there"
    assert "\\max_j z_j" in text, "the written answer's TeX is there"
    for private in (str(out), str(ROOT), "_nbgrader/scratch", "/tmp/", str(pathlib.Path.home()) + "/"):
        assert private not in page, private
    assert "working folder: ~\n" in text, "the kernel's own folder reads ~"


@pytest.mark.slow
def test_feedback_renders_offline_and_names_the_configured_data(tmp_path, monkeypatch):
    """Graded with DLCOURSE_DATA set: the kernel reads the full IDX files (60,000 training
    images), the log says so, and the feedback needs no network (MathJax is in the page),
    names no grader or data folder and no download URL."""
    data_dir = pathlib.Path(os.environ.get("DLCOURSE_DATA") or "/nonexistent")
    if not (data_dir / "mnist").is_dir():
        pytest.skip("DLCOURSE_DATA (the full MNIST IDX files) is not set")
    out, log, page = grade_math_and_data(tmp_path, "full")
    assert f"data: the full IDX files in {data_dir.resolve()} (DLCOURSE_DATA)" in log
    assert_offline_and_private(out, page)
    text = BeautifulSoup(page, "html.parser").get_text()
    assert "training images: 60000" in text and "bundled" not in text
    assert "data folder: [course data]" in text and str(data_dir.resolve()) not in page


@pytest.mark.slow
def test_feedback_without_data_folder_uses_the_sample_quietly(tmp_path, monkeypatch):
    """No DLCOURSE_DATA and an empty dlcourse cache: the kernels read the bundled sample with
    downloads off; the log says so, and every student's feedback has one short notice, without
    the failed download URLs a kernel without network would otherwise print."""
    from dlcourse import data
    monkeypatch.delenv("DLCOURSE_DATA", raising=False)
    monkeypatch.setenv("DLCOURSE_DATA_CACHE", str(tmp_path / "empty-cache"))
    out, log, page = grade_math_and_data(tmp_path, "sample")
    assert "data: the sample bundled with dlcourse" in log
    assert_offline_and_private(out, page)
    text = BeautifulSoup(page, "html.parser").get_text()
    assert "training images: 10000" in text and "sample bundled with dlcourse" in text
    assert "Downloads are off here" in text
    assert "could not download" not in text and "Looked in the user cache" not in text
    for urls in data.MIRRORS.values():
        for url in urls:
            assert url.split("//")[1].split("/")[0] not in page, url


def test_a_data_folder_without_the_files_stops_grading_before_any_student(tmp_path, monkeypatch):
    """DLCOURSE_DATA pointing at a folder without the IDX files: a clear error naming what is
    missing, before the sandbox is probed or a student graded."""
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "data"))
    subs = tmp_path / "subs" / "alice"
    subs.mkdir(parents=True)
    nbformat.write(make_submissions.filled(), subs / "99_fixture.ipynb")
    with pytest.raises(grading.GradeError, match=r"lacks mnist/train-images-idx3-ubyte.gz.*Fix: point DLCOURSE_DATA"):
        grading.grade("99_fixture", subs.parent, tmp_path / "out", source_dir=SOURCE)
    assert "grading 99_fixture" in (tmp_path / "out" / "grading.log").read_text()
    assert not (tmp_path / "out" / "_nbgrader" / "autograded").exists()
