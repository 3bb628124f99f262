"""The Makefile: which Python `make lab` / `make test` use, when they install, and the lab's flags.

Dry runs (``make -n``) of the real Makefile in a scratch project check the choices under each
environment; one real run creates a .venv for a stand-in project (a tiny package whose
``jupyter`` module only prints how it was called, built by an in-tree backend, offline) and
checks that a second run reuses it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
AMBIENT = ("VIRTUAL_ENV", "CONDA_PREFIX", "CI", "PYTHON", "LAB_ARGS", "JUPYTER_CONFIG_PATH")
STUDENT_OFF = ["formgrader", "assignment_list", "course_list"]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _env(**extra: str) -> dict:
    """This process's environment without anything that selects a Python, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT and not k.startswith("PIP_")}
    env.update(extra)
    return env


def _make(project: pathlib.Path, *args: str, env: dict, dry: bool = True) -> list[str]:
    proc = subprocess.run(["make", "--no-print-directory", *(["-n"] if dry else []), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture
def project(tmp_path) -> pathlib.Path:
    """A scratch project holding the course's Makefile and pyproject.toml (dry runs touch nothing)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _line(lines: list[str], word: str) -> str:
    found = [line for line in lines if word in line]
    assert len(found) == 1, f"expected one command with {word!r} in {lines}"
    return found[0]


def test_fresh_machine_creates_a_project_venv_and_installs_the_course_there(project):
    lines = _make(project, "lab", env=_env())
    assert lines[0] == "python3 -m venv .venv"
    assert _line(lines, "pip install") == '.venv/bin/python -m pip install -e ".[course]"'
    assert ".venv/bin/python -m jupyter lab" in _line(lines, "jupyter lab")

    lines = _make(project, "test", env=_env())
    assert lines[0] == "python3 -m venv .venv"
    assert _line(lines, "pip install") == '.venv/bin/python -m pip install -e ".[course,test]"'
    assert lines[-1] == ".venv/bin/python -m pytest"


def test_an_up_to_date_venv_is_reused_and_a_newer_pyproject_reinstalls(project):
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-course").touch()
    past = (project / "pyproject.toml").stat().st_mtime - 60
    os.utime(project / "pyproject.toml", (past, past))
    lines = _make(project, "lab", env=_env())
    assert not [line for line in lines if "venv" in line.split()[:3] or "pip install" in line], lines
    assert len(lines) == 1 and "jupyter lab" in lines[0]
    assert any("pip install" in line for line in _make(project, "test", env=_env())), "test needs the test extra"

    future = (venv / ".installed-course").stat().st_mtime + 60
    os.utime(project / "pyproject.toml", (future, future))
    assert _line(_make(project, "lab", env=_env()), "pip install").startswith(".venv/bin/python -m pip")


@pytest.mark.parametrize("variable", ["VIRTUAL_ENV", "CONDA_PREFIX", "CI"])
def test_an_active_environment_or_ci_uses_its_own_python(project, variable):
    for target, extras in (("lab", "course"), ("test", "course,test")):
        lines = _make(project, target, env=_env(**{variable: "/somewhere" if variable != "CI" else "true"}))
        assert not any("venv" in line for line in lines), lines
        assert _line(lines, "pip install") == f'python3 -m pip install -e ".[{extras}]"'
    assert not (project / ".venv").exists()


def test_python_can_be_chosen_outright(project):
    lines = _make(project, "test", "PYTHON=/opt/py/bin/python", env=_env())
    assert lines == ['/opt/py/bin/python -m pip install -e ".[course,test]"', "/opt/py/bin/python -m pytest"]


def test_lab_args_root_flag_and_the_student_interface(project):
    command = _line(_make(project, "lab", "LAB_ARGS=--port 8899 --no-browser", env=_env(CI="true")), "jupyter lab")
    assert command.endswith("notebooks/ --port 8899 --no-browser")
    assert ("--allow-root" in command) == (os.geteuid() == 0)
    assert command.startswith(f'JUPYTER_CONFIG_PATH="{project}/jupyter/student" ')
    for extension in STUDENT_OFF:
        assert f"--ServerApp.jpserver_extensions=nbgrader.server_extensions.{extension}=False" in command

    instructor = _line(_make(project, "instructor-lab", "LAB_ARGS=--no-browser", env=_env(CI="true")), "jupyter lab")
    assert "JUPYTER_CONFIG_PATH" not in instructor and "jpserver_extensions" not in instructor
    assert instructor.endswith("--no-browser") and ("--allow-root" in instructor) == (os.geteuid() == 0)


def test_the_student_config_path_keeps_the_users_own(project):
    command = _line(_make(project, "lab", env=_env(CI="true", JUPYTER_CONFIG_PATH="/etc/mine")), "jupyter lab")
    assert command.startswith(f'JUPYTER_CONFIG_PATH="{project}/jupyter/student:/etc/mine" ')


# A PEP 517 backend in 30 lines: builds the stand-in's wheel with nothing to download.
STANDIN_BACKEND = '''
import base64, hashlib, pathlib, zipfile

NAME, VERSION = "standin", "0.0.1"
DIST = f"{NAME}-{VERSION}.dist-info"
FILES = {
    "jupyter.py": "import sys\\nprint('stand-in jupyter:', sys.executable, *sys.argv[1:])\\n",
    f"{DIST}/METADATA": f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
                        "Provides-Extra: course\\nProvides-Extra: test\\n",
    f"{DIST}/WHEEL": "Wheel-Version: 1.0\\nGenerator: standin\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}


def _digest(text):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    record = "".join(f"{path},{_digest(text)},{len(text.encode())}\\n" for path, text in FILES.items())
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w") as wheel:
        for path, text in FILES.items():
            wheel.writestr(path, text)
        wheel.writestr(f"{DIST}/RECORD", record + f"{DIST}/RECORD,,\\n")
    return name


build_editable = build_wheel
'''


def test_a_real_run_creates_the_venv_once_and_starts_lab_from_it(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "standin_backend.py").write_text(STANDIN_BACKEND)
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''\
        [build-system]
        requires = []
        build-backend = "standin_backend"
        backend-path = ["."]
        '''))
    env = _env(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    bootstrap = f"BOOTSTRAP_PYTHON={sys.executable}"
    first = _make(tmp_path, "lab", bootstrap, "LAB_ARGS=--no-browser", env=env, dry=False)
    venv_python = tmp_path / ".venv" / "bin" / "python"
    assert venv_python.exists() and (tmp_path / ".venv" / ".installed-course").exists()
    ran = _line(first, "stand-in jupyter:").split()
    assert ran[2] == str(venv_python) and ran[3] == "lab" and ran[-2:] == ["notebooks/", "--no-browser"], ran

    second = _make(tmp_path, "lab", bootstrap, env=env, dry=False)
    assert not any("pip install" in line or "-m venv" in line for line in second), second
    assert _line(second, "stand-in jupyter:").split()[2] == str(venv_python)
