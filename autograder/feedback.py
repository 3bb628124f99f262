"""What a student's feedback file may show: ``ScrubFeedback``, the first preprocessor of
``nbgrader generate_feedback``, and ``FeedbackExporter``, its HTML exporter.

``ScrubFeedback`` works on the autograded notebook before it is rendered (the hidden-test
lines come from the master in the course's ``source/`` folder, or from
``c.ScrubFeedback.hidden_lines_file``):

- **Hidden tests.** The hidden regions (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN
  TESTS``) are removed from every cell's source. The outputs that the hidden part of a test
  cell produced (``cell.metadata["autograder"]["hidden_output_start"]``, written by the
  grader's execution: the index in ``cell.outputs`` of its first output) are removed; when the
  hidden part raised, one error output ``ename: evalue`` stays (evalue at most 300 characters,
  no traceback). Without that metadata, the quoted source lines of the hidden region are
  dropped from the test cell's own traceback frame instead.
- **Cells that ran after a hidden test.** Once the first hidden part has run, student code
  can read it (``In``, ``linecache``, the caller's frame) and print it in any encoding. So in
  every cell after the first test cell with a hidden region, the outputs of code cells that
  are not test cells (locked course cells included: they call student code) are replaced by
  one note, and the outputs of test cells are reduced to their error, as one line
  ``ename: evalue`` (at most 300 characters), plus the note when they printed anything.
  That line is still student-influenced (a failure message can quote a value the student's
  code returned): up to 300 characters per failing test are not defended.
- **Hidden-test lines.** In the outputs and in the sources of cells the student wrote, a line
  that is a hidden-test line (equal to it after removing ANSI colours and surrounding space,
  or a traceback context line ``----> 12 <line>`` quoting it) is replaced by
  ``[line of a hidden test removed]``; an error message that contains a hidden-test line is
  replaced whole. Sources of locked course cells (restored from the master) are not touched.
  Hidden-test lines are those of the master's hidden regions, 6 characters or longer, that
  are not part of any line outside them (:func:`hidden_lines_of`).
- **HTML and JavaScript.** Outputs keep only ``text/plain``, ``image/png`` and
  ``image/jpeg`` (base64 only, no file names); everything else (HTML, JavaScript, SVG,
  Markdown, LaTeX, widgets) is dropped, and an output left without ``text/plain`` gets the
  note :data:`RICH_NOTE`. Output types other than stream, display data, execute result and
  error are dropped.

``FeedbackExporter`` is nbconvert's ``HTMLExporter`` whose ``markdown2html`` filter (used for
markdown cells, which nbgrader's feedback template renders without nbconvert's own
sanitizer, and for grader comments) passes the rendered HTML through bleach with
:data:`MARKDOWN_TAGS`: any other tag is escaped (shown as text), attributes other than
``href``/``src``/``alt``/``title``/``class`` are removed, links keep only ``http``, ``https``,
``mailto`` and ``#anchor`` targets, images only ``data:image/`` (an image from the web, such as
the Colab badge, is replaced by its alt text: the page loads nothing from the network).

:func:`unsafe_html` and :func:`shown_hidden_lines` are the last check ``FeedbackExporter``
runs on each feedback page it renders: a page that still shows a hidden-test line or could
run script is replaced by a plain table of points and reasons (:func:`summary_html`).
"""

from __future__ import annotations

import copy
import html
import json
import os
import pathlib
import re
from html.parser import HTMLParser

import bleach
import nbformat
from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .mathjax import offline_mathjax
from .notebook_format import BEGIN_HIDDEN, END_HIDDEN, hidden_begin, is_test_cell, region_lines, strip_hidden_regions
from .notebook_format import ANSI_RE, nbgrader_meta as _nbg

HIDDEN_RESOURCE = "autograder_hidden_lines"  # resources key: ScrubFeedback -> FeedbackExporter

REDACTED = "[line of a hidden test removed]"
WITHHELD = "[output withheld in feedback: this cell ran after hidden tests]\n"
RICH_NOTE = "[HTML/JavaScript/SVG output not shown in feedback]"
SHOWN_MIMES = ("text/plain", "image/png", "image/jpeg")
IMAGE_MIMES = ("image/png", "image/jpeg")
EVALUE_LIMIT, ENAME_LIMIT = 300, 100
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_CONTEXT_LINE = re.compile(r"^\s*(?:-+>\s*)?(\d+)(?:\s|$)")


# --------------------------------------------------------------------------- hidden lines

def hidden_lines_of(nb) -> list[str]:
    """Lines inside hidden-test regions worth hiding: 6 characters or longer, and not part of
    any line outside them (``torch = frameworks.import_torch()`` also stands, with a comment,
    in the import cell the student sees, so showing it reveals nothing)."""
    hidden, visible = set(), set()
    for cell in nb.cells:
        for line, inside in region_lines(cell.source, BEGIN_HIDDEN, END_HIDDEN):
            (hidden if inside else visible).add(line.strip())
    visible_text = "\n".join(visible)
    return sorted(s for s in hidden - visible if len(s) >= 6 and s not in visible_text)


def quotes_hidden(line: str, hidden) -> bool:
    """Whether ``line`` is a hidden-test line: equal to one once ANSI colours and surrounding
    space are removed, or a traceback context line (``----> 12 <line>``, ``     3 <line>``)
    quoting one. Whole lines only: a longer line that contains a hidden line is not one."""
    plain = ANSI_RE.sub("", line).strip()
    if plain in hidden:
        return True
    m = _CONTEXT_LINE.match(plain)
    return bool(m) and plain[m.end():].strip() in hidden


def redact(text: str, hidden) -> str:
    """``text`` with every line that is a hidden-test line (:func:`quotes_hidden`) replaced."""
    if not hidden or not text:
        return text
    hidden = set(hidden)
    return "\n".join(REDACTED if quotes_hidden(line, hidden) else line for line in text.split("\n"))


def drop_hidden_context(entry: str, execution_count, begin: int) -> str:
    """In the traceback frame of a test cell itself, drop the quoted source lines from the
    hidden region on (line numbers above ``begin``, the 0-based index of its BEGIN marker)."""
    plain = ANSI_RE.sub("", entry).lstrip()
    header = f"Cell In[{execution_count}]" if execution_count is not None else "Cell In["
    if not plain.startswith(header):
        return entry
    kept = []
    for line in entry.split("\n"):
        m = _CONTEXT_LINE.match(ANSI_RE.sub("", line))
        if m and int(m.group(1)) > begin:
            continue
        kept.append(line)
    return "\n".join(kept)


def _one_line(text, limit: int, hidden) -> str:
    text = " ".join(ANSI_RE.sub("", str(text)).split())
    if any(h in text for h in hidden):
        return REDACTED
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line_error(out, hidden) -> nbformat.NotebookNode:
    """The error output ``out`` as one line ``ename: evalue``, without traceback frames."""
    ename = _one_line(out.get("ename") or "Error", ENAME_LIMIT, hidden)
    evalue = _one_line(out.get("evalue") or "", EVALUE_LIMIT, hidden)
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"{ename}: {evalue}" if evalue else ename])


def withheld() -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stdout", text=WITHHELD)


# --------------------------------------------------------------------------- outputs

def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def safe_output(out):
    """A copy of ``out`` that can only render as text or a base64 image; None to drop it."""
    kind = out.get("output_type")
    if kind == "stream":
        return nbformat.v4.new_output("stream", name="stderr" if out.get("name") == "stderr" else "stdout",
                                      text=_text(out.get("text", "")))
    if kind == "error":
        return nbformat.v4.new_output("error", ename=_text(out.get("ename", "")), evalue=_text(out.get("evalue", "")),
                                      traceback=[_text(t) for t in out.get("traceback") or []])
    if kind not in ("display_data", "execute_result"):
        return None
    given = out.get("data") or {}
    data, metadata = {}, {}
    for mime in SHOWN_MIMES:
        value = given.get(mime)
        if value is None:
            continue
        value = _text(value)
        if mime in IMAGE_MIMES:
            if not _BASE64.fullmatch(value):
                continue
            size = (out.get("metadata") or {}).get(mime) or {}
            size = {k: v for k, v in size.items() if k in ("width", "height") and isinstance(v, int)
                    and not isinstance(v, bool)} if isinstance(size, dict) else {}
            if size:
                metadata[mime] = size
        data[mime] = value
    if "text/plain" not in data and set(given) - set(data):
        data["text/plain"] = RICH_NOTE
    if kind == "execute_result":
        return nbformat.v4.new_output("execute_result", data=data, metadata=metadata,
                                      execution_count=out.get("execution_count"))
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata)


def hidden_output_start(cell):
    value = (cell.get("metadata", {}).get("autograder") or {}).get("hidden_output_start")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class ScrubFeedback(NbGraderPreprocessor):
    """Remove hidden tests, and what could reproduce them or run script, from the feedback
    (see the module docstring for exactly what is shown)."""

    hidden_lines_file = Unicode("", help="JSON {notebook: [hidden lines]} written by the grade command").tag(config=True)

    def hidden_lines(self, resources) -> set[str]:
        """The hidden-test lines of this notebook's master: from ``hidden_lines_file`` when set,
        else read from the master in the course's source folder (nbgrader's CourseDirectory)."""
        name = resources.get("unique_key") or resources.get("metadata", {}).get("name")
        if self.hidden_lines_file:
            with open(self.hidden_lines_file) as fh:
                return set(json.load(fh).get(name, []))
        from nbgrader.coursedir import CourseDirectory
        info = resources.get("nbgrader", {})
        coursedir = CourseDirectory(config=self.config)
        folder = coursedir.format_path(coursedir.source_directory, ".", info.get("assignment", ""))
        master = os.path.join(folder, f"{info.get('notebook', name)}.ipynb")
        if not os.path.isfile(master):
            raise FileNotFoundError(f"feedback needs the master {master} to know its hidden tests; it is missing")
        return set(hidden_lines_of(nbformat.read(master, as_version=4)))

    def preprocess(self, nb, resources):
        hidden = self.hidden_lines(resources)
        resources[HIDDEN_RESOURCE] = sorted(hidden)  # for FeedbackExporter's last check
        first = next((i for i, c in enumerate(nb.cells) if is_test_cell(c)
                      and (hidden_begin(c) is not None or hidden_output_start(c) is not None)), len(nb.cells))
        for index, cell in enumerate(nb.cells):
            test, locked = is_test_cell(cell), bool(_nbg(cell).get("locked"))
            begin = hidden_begin(cell)
            if test or begin is not None:
                cell.source = strip_hidden_regions(cell.source)
            elif not locked:  # written by the student
                cell.source = redact(cell.source, hidden)
            if cell.cell_type != "code":
                continue
            outputs = [o for o in (safe_output(o) for o in cell.get("outputs", [])) if o is not None]
            if not test:
                if index > first:
                    cell.outputs = [withheld()] if outputs else []
                else:
                    cell.outputs = [self._redacted(o, hidden) for o in outputs]
                continue
            start = hidden_output_start(cell)
            visible, after = (outputs[:start], outputs[start:]) if start is not None else (outputs, [])
            if index > first:  # ran after a hidden part: the verdict only
                errors = [o for o in visible if o.output_type == "error"]
                shown = [one_line_error(errors[0], hidden)] if errors else []
                if len(errors) < len(visible):
                    shown.insert(0, withheld())
            else:
                if start is None and begin is not None:  # no split recorded: drop the quoted hidden code
                    for out in visible:
                        if out.output_type == "error":
                            out.traceback = [drop_hidden_context(t, cell.get("execution_count"), begin)
                                             for t in out.traceback]
                shown = [self._redacted(o, hidden) for o in visible]
            hidden_errors = [o for o in after if o.output_type == "error"]
            if hidden_errors:
                shown.append(one_line_error(hidden_errors[0], hidden))
            cell.outputs = shown
        paths = self.private_prefixes(resources)
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                without_paths(out, paths)
        return nb, resources

    def private_prefixes(self, resources) -> list[tuple[str, str]]:
        """The grader's folders as they appear in the kernel's messages, and what the student
        reads instead: their scratch folder (the kernel's home and working folder) is ``~``; the
        course folder, the grader's state folder and the repository are ``[grader folder]``; the
        data folder the kernels read is ``[course data]``."""
        from . import REPO_ROOT
        from .kernel import GradingSandbox
        student = resources.get("nbgrader", {}).get("student") or ""
        sandbox = GradingSandbox(config=self.config)
        root, state = sandbox.course_root(), sandbox.state_path()
        pairs = [(str(state / "scratch" / student), "~")] if student else []
        pairs += [(str(p), "[grader folder]") for p in (state, root, REPO_ROOT) if str(p) != "/"]
        try:
            data, _ = sandbox.data_source()
        except ValueError:  # a data folder that lacks files: no kernel read it
            data = None
        if data is not None and str(data) != "/":
            pairs.append((str(data), "[course data]"))
        return sorted(pairs, key=lambda pair: -len(pair[0]))

    @staticmethod
    def _redacted(out, hidden):
        if out.output_type == "stream":
            out.text = redact(out.text, hidden)
        elif out.output_type == "error":
            out.ename = _one_line(out.ename, ENAME_LIMIT, hidden)
            out.evalue = redact(out.evalue, hidden)
            out.traceback = [redact(t, hidden) for t in out.traceback]
        elif "text/plain" in out.get("data", {}):
            out.data["text/plain"] = redact(out.data["text/plain"], hidden)
        return out


def without_paths(out, prefixes: list[tuple[str, str]]):
    """``out`` with every grader path replaced (``prefixes``: longest first)."""
    def clean(text: str) -> str:
        for prefix, replacement in prefixes:
            text = text.replace(prefix, replacement)
        return text
    if out.output_type == "stream":
        out.text = clean(out.text)
    elif out.output_type == "error":
        out.evalue = clean(out.evalue)
        out.traceback = [clean(t) for t in out.traceback]
    elif "text/plain" in out.get("data", {}):
        out.data["text/plain"] = clean(out.data["text/plain"])
    return out


# --------------------------------------------------------------------------- markdown

MARKDOWN_TAGS = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "b", "i", "del", "sup", "sub", "code", "pre",
    "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "blockquote", "br", "hr",
    "span", "div"})
_URL_JUNK = re.compile(r"[`\000-\040\177-\240\s]+")


def _url_starts(value: str, prefixes) -> bool:
    from bleach import html5lib_shim
    normal = _URL_JUNK.sub("", html5lib_shim.convert_entities(value)).lower()
    return normal.startswith(prefixes)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("title", "class") or (tag == "img" and name == "alt"):
        return True
    if tag == "a" and name == "href":
        return _url_starts(value, ("http:", "https:", "mailto:", "#"))
    if tag == "img" and name == "src":
        return _url_starts(value, ("data:image/",))
    return False


_IMG_TAG = re.compile(r"<img\b[^>]*>")
_ALT = re.compile(r'\salt="([^"]*)"')


def _image_or_alt_text(match) -> str:
    """An <img> bleach kept: itself when embedded (``data:image/``), else its alt text, so that
    opening the page fetches nothing (offline it would show a broken image)."""
    tag = match.group(0)
    if " src=" in tag:
        return tag
    alt = _ALT.search(tag)
    return html.escape(html.unescape(alt.group(1))) if alt and alt.group(1).strip() else "[image]"


def clean_markdown_html(html_text: str) -> str:
    """Rendered markdown with every tag outside :data:`MARKDOWN_TAGS` escaped (shown as text),
    only safe attributes and URLs kept, and images from the web replaced by their alt text."""
    cleaned = bleach.clean(html_text, tags=MARKDOWN_TAGS, attributes=_allowed_attribute,
                           protocols={"http", "https", "mailto", "data"}, strip=False, strip_comments=True)
    return _IMG_TAG.sub(_image_or_alt_text, cleaned)


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTMLExporter with the markdown it renders passed through
    :func:`clean_markdown_html` (nbgrader's feedback template renders markdown cells without
    nbconvert's ``sanitize_html``), and a last check of every page that ``ScrubFeedback``
    prepared: one that still shows a hidden-test line, or holds anything that could run script
    besides the template's own MathJax, is replaced by :func:`summary_html` (and logged)."""

    _template_scripts: dict[str, set] = {}

    @pass_context
    def markdown2html(self, context, source):
        return clean_markdown_html(HTMLExporter.markdown2html(self, context, source))

    def _create_environment(self):
        environment = super()._create_environment()
        environment.globals["offline_mathjax"] = offline_mathjax  # the template's mathjax() macro
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        if HIDDEN_RESOURCE not in resources:  # not a feedback page (e.g. template_scripts' empty notebook)
            return output, resources
        key = repr(sorted(self.config.items())) if self.config else ""
        if key not in self._template_scripts:
            try:
                FeedbackExporter._template_scripts[key] = template_scripts(self.config)
            except Exception as exc:  # then every page with a script is replaced: safe, and logged
                self.log.error("could not render the feedback template's own scripts (%r)", exc)
                FeedbackExporter._template_scripts[key] = set()
        why = page_problems(output, resources[HIDDEN_RESOURCE], self._template_scripts[key])
        if why:
            info = resources.get("nbgrader", {})
            self.log.error("%s/%s: feedback would show %s; replaced by a summary", info.get("student", "?"),
                           info.get("notebook", "?"), why)
            output = summary_html(info.get("student", ""), info.get("notebook", ""), outcome_rows(nb))
            resources.setdefault("autograder", {})["feedback_replaced"] = why
        return output, resources


def page_problems(page: str, hidden, template_scripts) -> str:
    """What a feedback page must not show, in words ("3 hidden-test lines and student HTML/JS
    (...)"), or "" when it is safe: the last check of every page."""
    leaked = shown_hidden_lines(page, hidden)
    unsafe = unsafe_html(page, template_scripts)
    why = [f"{len(leaked)} hidden-test lines"] if leaked else []
    why += [f"student HTML/JS ({', '.join(unsafe[:3])})"] if unsafe else []
    return " and ".join(why)


def outcome_rows(nb) -> list[dict]:
    """cell, points, max_points, status, reason of every graded cell, from the metadata the
    grader's execution stored (``metadata.autograder``) and nbgrader's own (score, points)."""
    rows = []
    for cell in nb.cells:
        nbg = _nbg(cell)
        if not nbg.get("grade"):
            continue
        found = cell.get("metadata", {}).get("autograder") or {}
        status = found.get("status") or ("manual" if cell.cell_type == "markdown" else "")
        rows.append({"cell": nbg.get("grade_id", ""), "points": nbg.get("score", ""),
                     "max_points": nbg.get("points", ""), "status": status, "reason": found.get("reason", "")})
    return rows


def summary_html(student_id: str, notebook: str, rows: list[dict]) -> str:
    """A plain page: one table row per graded cell (points, status, reason), nothing else."""
    body = "".join(f"<tr><td>{html.escape(str(r['cell']))}</td><td>{html.escape(str(r['points']))}</td>"
                   f"<td>{html.escape(str(r['max_points']))}</td><td>{html.escape(str(r['status']))}</td>"
                   f"<td>{html.escape(str(r['reason']))}</td></tr>" for r in rows)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Feedback</title></head><body>"
            f"<h1>Feedback: {html.escape(notebook)} ({html.escape(student_id)})</h1>"
            "<table border=\"1\"><tr><th>cell</th><th>points</th><th>max</th><th>status</th><th>reason</th></tr>"
            f"{body}</table></body></html>\n")


TAG_RE = re.compile(r"<[^>]+>")


def shown_hidden_lines(page: str, hidden) -> list[str]:
    """The lines of the HTML ``page``'s text (tags removed, entities decoded) that are
    hidden-test lines: equal to one, or a traceback context line quoting one
    (:func:`quotes_hidden`). Whole lines: a longer line containing one is not counted."""
    hidden = set(hidden)
    return [line.strip() for line in html.unescape(TAG_RE.sub("", page)).split("\n")
            if quotes_hidden(line, hidden)]


# --------------------------------------------------------------------------- last check

FORBIDDEN_TAGS = frozenset({"iframe", "frame", "frameset", "object", "embed", "applet", "form", "base"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
                            "cite", "srcset", "lowsrc", "dynsrc", "ping"})
_SCRIPT_URL = re.compile(r"^(?:javascript|vbscript|livescript):")


class _Scan(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple] = []
        self.problems: list[str] = []
        self._script = None

    def handle_starttag(self, tag, attrs):
        self._check(tag, attrs)
        if tag == "script":
            self._script = [tuple(sorted((k, v or "") for k, v in attrs)), ""]

    def handle_startendtag(self, tag, attrs):
        self._check(tag, attrs)
        if tag == "script":
            self.scripts.append((tuple(sorted((k, v or "") for k, v in attrs)), ""))

    def handle_data(self, data):
        if self._script is not None:
            self._script[1] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append(tuple(self._script))
            self._script = None

    def close(self):
        super().close()
        if self._script is not None:  # an unclosed script runs to the end of the file
            self.scripts.append(tuple(self._script))
            self._script = None

    def _check(self, tag, attrs):
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for key, value in attrs:
            if key.startswith("on"):
                self.problems.append(f"<{tag} {key}=...>")
            elif key in URL_ATTRIBUTES and _SCRIPT_URL.match(_URL_JUNK.sub("", value or "").lower()):
                self.problems.append(f"<{tag} {key}={(value or '')[:40]!r}>")
            elif tag == "meta" and key == "http-equiv" and (value or "").strip().lower() == "refresh":
                self.problems.append("<meta http-equiv=refresh>")


def scan_html(text: str) -> tuple[list[tuple], list[str]]:
    """(every <script> element as (sorted attributes, content), problems found outside scripts)."""
    scan = _Scan()
    scan.feed(text)
    scan.close()
    return scan.scripts, scan.problems


def unsafe_html(text: str, template_scripts) -> list[str]:
    """What in the feedback file ``text`` could run script: a <script> element that is not
    exactly (attributes and content) one of ``template_scripts`` (those of the feedback
    template itself, :func:`template_scripts`), an ``on*`` attribute, an
    iframe/frame/object/embed/applet/form/base element, a ``javascript:`` (or ``vbscript:``)
    URL, or a meta refresh. Empty when the file is safe."""
    scripts, problems = scan_html(text)
    allowed = set(template_scripts)
    extra = [s for s in scripts if s not in allowed]
    return problems + [f"<script> not from the template ({(s[1].strip() or str(s[0]))[:60]!r})" for s in extra]


def render(nb, config=None) -> str:
    """``nb`` rendered as ``nbgrader generate_feedback`` renders a feedback file (its template
    and exporter, configured as :mod:`autograder.nbgrader_config` does; no preprocessors, no
    scores). ``config``: a traitlets Config to render with instead."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from .nbgrader_config import configure_feedback_exporter

    if config is None:
        config = Config()
        configure_feedback_exporter(config)
    converter = GenerateFeedback(coursedir=CourseDirectory(), config=config)
    exporter = converter.exporter_class(parent=converter, config=converter.config)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # what nbgrader's GetGrades adds
        nbg = cell.get("metadata", {}).get("nbgrader")
        if nbg and nbg.get("grade"):
            nbg.setdefault("score", 0)
            nbg.setdefault("points", 0)
    resources = {"nbgrader": {"notebook": "feedback", "score": 0, "max_score": 0, "late_penalty": 0}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def template_scripts(config=None) -> set[tuple]:
    """The <script> elements of the feedback template itself: those of the feedback rendered
    (:func:`render`) for an empty notebook."""
    return set(scan_html(render(nbformat.v4.new_notebook(), config))[0])
