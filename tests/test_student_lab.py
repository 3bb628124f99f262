"""`make lab` serves a student's JupyterLab: nbgrader's Validate button, none of its instructor parts.

The test starts the exact command `make lab` runs (taken from ``make -n``) headless on a free
localhost port and asks the server what it offers.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list",
                      "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                      "@jupyter/nbgrader:menu"]
# Routes of nbgrader's instructor server extensions (Formgrader, Assignments, Courses).
INSTRUCTOR_ROUTES = ["formgrader", "assignments", "formgraders"]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, ""


def _databases() -> dict[pathlib.Path, float]:
    return {p: p.stat().st_mtime for folder in (ROOT, ROOT / "notebooks") for p in folder.glob("*.db")}


def test_make_lab_serves_only_the_validate_button(tmp_path):
    for module in ("jupyterlab", "nbgrader"):
        pytest.importorskip(module, reason=f"{module} is not installed (the course extra installs it)")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port, token = _free_port(), secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VIRTUAL_ENV", "CONDA_PREFIX", "LAB_ARGS")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")  # no server files among the user's
    lab_args = f"--no-browser --ip 127.0.0.1 --port {port} --ServerApp.port_retries=0 --ServerApp.token={token}"
    dry = subprocess.run(["make", "--no-print-directory", "-n", "lab", f"PYTHON={sys.executable}",
                          f"LAB_ARGS={lab_args}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    command = [line for line in dry.stdout.splitlines() if " -m jupyter lab " in line]
    assert len(command) == 1, dry.stdout

    before = _databases()
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(["bash", "-c", command[0]], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{base}/api/status?token={token}")[0] != 200:
            assert server.poll() is None, "JupyterLab exited:\n" + log.read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s:\n" + log.read_text()[-3000:]
            time.sleep(0.5)

        status, page = _get(f"{base}/lab?token={token}")
        assert status == 200
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      page, re.S).group(1))
        disabled = config["disabledExtensions"]
        disabled = set(disabled) if isinstance(disabled, list) else {k for k, v in disabled.items() if v}
        assert set(INSTRUCTOR_PLUGINS) <= disabled, disabled
        # no "get notified about official Jupyter news?" pop-up (it also asks the network for news)
        assert "@jupyterlab/apputils-extension:announcements" in disabled, disabled
        assert "@jupyter/nbgrader:validate-assignment" not in disabled
        assert "@jupyter/nbgrader" in [e["name"] for e in config["federated_extensions"]]

        for route in INSTRUCTOR_ROUTES:
            assert _get(f"{base}/{route}?token={token}")[0] == 404, f"/{route} is served to students"
        # The Validate button's route exists (it only accepts POST).
        assert _get(f"{base}/assignments/validate?token={token}")[0] == 405
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    text = log.read_text()
    for complaint in ("No nbgrader_config.py file found", "exchange", "Traceback"):
        assert complaint not in text, f"the server log says {complaint!r}:\n{text[-3000:]}"
    assert _databases() == before, "the student's lab wrote a gradebook"
