"""The student notebooks in a real browser: JupyterLab on ``notebooks/`` (``ci`` profile) in
Debian's Chromium, driven by Playwright. Every code cell is run as a student runs it (Run All,
then, after the error an unfilled exercise raises, Run Selected Cell and All Below from the next
cell); the page must show a kernel back to idle, no error but those of the unfilled exercises,
no stderr box, every figure as an image, and nbgrader's Validate button. Screenshots go to a
temporary folder whose path is printed (``pytest -s``).

Also the feedback page (autograder/mathjax.py) in the same browser with the network cut off:
every equation of the course typesets, and the page requests nothing but itself.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and ``pip install playwright``
(``.ci/run`` installs both); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOKS = ["00_getting_started", "07_residual_connections"]  # the first one, and one that trains in both frameworks
STDERR_BOX = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
# What an unfilled exercise raises, and what its test cell then reports about it.
STUB_ERRORS = {"NotImplementedError"}

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the browser driver)")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: apt-get install chromium", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the student notebooks (its autosave must not touch notebooks/),
    with fresh settings (no virtual scrolling: every cell is in the page), on a free port."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    settings = base / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, DLCOURSE_PROFILE="ci", JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg: a student's kernel has the inline backend
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(base / "server.log", "w")
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start:\n{(base / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "log": base / "server.log"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 900})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


# The notebook in the page, through JupyterLab's own application object (exposed by
# --LabApp.expose_app_in_browser): what its cells hold after the browser ran them.
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => ({
    index, type: cell.model.type, source: cell.model.sharedModel.getSource(),
    count: cell.model.type === 'code' ? cell.model.executionCount : null,
    outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : []}));
}"""
BUSY_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const pending = Array.from(panel.node.querySelectorAll('.jp-InputPrompt')).some(p => p.textContent.includes('*'));
  return !kernel || kernel.status !== 'idle' || pending;
}"""


def wait_idle(page, timeout_s: float):
    deadline = time.time() + timeout_s
    time.sleep(1.0)  # the first execute request is on its way
    while page.evaluate(BUSY_JS):
        assert time.time() < deadline, f"the kernel did not come back to idle within {timeout_s:.0f} s"
        time.sleep(0.5)


def run_every_cell(page, timeout_s: float) -> list[dict]:
    """Run All Cells; when an error stops the run, Run Selected Cell and All Below from the
    cell after it, until every code cell has run (what a student does past an unfilled exercise)."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    wait_idle(page, timeout_s)
    for _ in range(200):
        cells = page.evaluate(CELLS_JS)
        code = [c for c in cells if c["type"] == "code" and c["source"].strip()]
        not_run = [c for c in code if c["count"] is None]
        if not not_run:
            return cells
        failed = [c for c in code if c["count"] is not None and c["index"] < not_run[0]["index"]
                  and any(o["output_type"] == "error" for o in c["outputs"])]
        assert failed, f"cell {not_run[0]['index']} was not run, and no error before it stopped the run"
        page.evaluate("(i) => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = i; "
                      "nb.deselectAll(); }", failed[-1]["index"] + 1)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-below')")
        wait_idle(page, timeout_s)
    raise AssertionError("the notebook never finished")


def take_screenshots(page, name, cells, shots):
    """The toolbar, the first and last figure and the first error, as the student sees them."""
    page.screenshot(path=str(shots / f"{name}-1-toolbar.png"))
    views = [("2-first-figure", ".jp-OutputArea-output img", 0), ("4-last-figure", ".jp-OutputArea-output img", -1)]
    errors = [c["index"] for c in cells if error_names(c)] if cells else []
    if errors:
        page.locator(".jp-Notebook .jp-Cell").nth(errors[0]).scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"{name}-3-first-error.png"))
    for label, selector, which in views:
        found = page.locator(selector)
        if found.count():
            (found.first if which == 0 else found.last).scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"{name}-{label}.png"))


def error_names(cell) -> list[str]:
    return [o["ename"] for o in cell["outputs"] if o["output_type"] == "error"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_notebook_runs_in_a_real_browser(name, lab, browser, shots):
    page = browser.new_page()
    console_errors = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    started = time.time()
    # A workspace of its own, reset: the notebook of an earlier test is not reopened beside it.
    page.goto(f"{lab['url']}/lab/workspaces/{name}/tree/{name}/{name}.ipynb?reset&token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           f"&& window.jupyterapp.shell.currentWidget.context.path === '{name}/{name}.ipynb' "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=90_000)
    page.screenshot(path=str(shots / f"{name}-0-opened.png"))

    cells = run_every_cell(page, timeout_s=240)
    elapsed = time.time() - started
    assert not page.evaluate(BUSY_JS), "the kernel is back to idle"
    code = [c for c in cells if c["type"] == "code"]
    print(f"{name}: {len(code)} code cells run in the browser in {elapsed:.0f} s")
    take_screenshots(page, name, cells, shots)

    # Errors: only those of the unfilled exercises. Each exercise cell defines stubs; a test
    # cell (or a demo calling the student's function) raises NotImplementedError from them.
    master = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    # A later demo cell that uses what an unfilled exercise did not compute fails too (07: a
    # KeyError in a plot of results never recorded): allowed after the first stub error only,
    # and printed (the solutions run without any error: tests/test_notebooks.py).
    errors = {c["index"]: error_names(c) for c in code if error_names(c)}
    first_stub = min((i for i, names in errors.items() if set(names) & STUB_ERRORS), default=None)
    assert first_stub is not None, "the unfilled exercises raise NotImplementedError"
    unexpected = {i: names for i, names in errors.items() if not set(names) <= STUB_ERRORS and i < first_stub}
    assert not unexpected, {i: (names, cells[i]["source"][:200]) for i, names in unexpected.items()}
    following = {i: names for i, names in errors.items() if not set(names) <= STUB_ERRORS}
    if following:
        print(f"{name}: errors that follow from unfilled exercises: "
              f"{ {i: (names, cells[i]['source'][:60]) for i, names in following.items()} }")
    tests = sum(1 for c in master.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                and c.cell_type == "code")
    assert errors, "the unfilled exercises raise NotImplementedError"
    assert len(errors) >= tests, f"{len(errors)} cells raised, but there are {tests} test cells"

    # No stderr from any cell (the model), and no red box in the page but the errors' own
    # (JupyterLab renders a stream on stderr and an error's traceback alike: STDERR_BOX).
    stderr = [(c["index"], "".join(o["text"])[:200]) for c in code for o in c["outputs"]
              if o["output_type"] == "stream" and o.get("name") == "stderr"]
    assert not stderr, stderr
    error_outputs = sum(len(names) for names in errors.values())
    assert page.locator(STDERR_BOX).count() == error_outputs, (page.locator(STDERR_BOX).count(), error_outputs)

    # Every figure an image that loaded, one per image output of the cells.
    image_outputs = sum(1 for c in code for o in c["outputs"] if "image/png" in o.get("data", {}))
    shows = sum(1 for c in code if "plt.show()" in c["source"] or "show_" in c["source"] or "plot" in c["source"])
    images = page.locator(".jp-OutputArea-output img")
    assert image_outputs > 0 and images.count() == image_outputs, (images.count(), image_outputs)
    assert image_outputs >= min(shows, 1)
    broken = page.evaluate("() => Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
                           ".filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0, f"{broken} figures did not load"

    # nbgrader's Validate button in the notebook's toolbar.
    validate = page.locator(".jp-NotebookPanel-toolbar .validate-button")
    assert validate.count() == 1 and validate.first.is_visible(), "no Validate button in the toolbar"
    assert validate.first.inner_text().strip() == "Validate"
    if console_errors:  # not shown to the student; reported for whoever reads the log
        print(f"{name}: uncaught errors in the page's JavaScript: {console_errors[:3]}")

    page.close()


def test_feedback_typesets_every_equation_of_the_course_offline(browser, shots, tmp_path):
    """Every markdown cell of every master, rendered as feedback (autograder.feedback.render),
    opened from a file with every request but the file itself refused: MathJax (in the page)
    typesets each $...$ and $$...$$ of the course, none as a TeX error."""
    from autograder.feedback import render
    cells = [c for path in sorted((ROOT / "source").glob("*/*.ipynb"))
             for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(c.source) for c in cells]
    page_file = tmp_path / "feedback.html"
    page_file.write_text(render(nb))
    text = "\n".join(c.source for c in cells)
    expected = len(re.findall(r"\$\$.+?\$\$|\$[^$\n]+?\$", text, re.S))
    assert expected > 100

    page = browser.new_page()
    requests = []
    page.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()
                                      if route.request.url.startswith("file://") else route.abort()))
    page.goto(page_file.as_uri())
    page.wait_for_function(f"() => document.querySelectorAll('mjx-container').length >= {expected}", timeout=60_000)
    errors = page.evaluate("() => Array.from(document.querySelectorAll('[data-mjx-error], mjx-merror, "
                           "[data-mml-node=merror]')).map(e => e.getAttribute('data-mjx-error') || e.textContent)")
    assert not errors, errors[:5]
    assert requests == [page_file.as_uri()], requests
    page.screenshot(path=str(shots / "feedback-equations.png"))
    page.close()
