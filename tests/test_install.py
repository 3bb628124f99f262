"""The notebooks' ``colab-setup`` cell installs quietly where the frameworks are already newer.

Colab preinstalls newer numpy/torch/tensorflow/keras than the course pins. The cell must add
dlcourse and what Colab lacks (kornia, pooch) without touching those and without pip printing
``ERROR`` or resolver complaints, which students read as failures. The test runs the cell's own
code in a fresh virtual environment holding metadata-only stand-ins for Colab's packages, with
pip reading a local wheel folder only (no index, none of this machine's pip configuration).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import build

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Colab's preinstalled packages, at versions newer than anything the course pins.
COLAB_PREINSTALLED = {"numpy": "2.9.0", "torch": "2.99.0", "tensorflow": "2.99.0", "keras": "3.99.0",
                      "matplotlib": "3.99.0", "seaborn": "0.99.0", "tqdm": "4.99.0", "requests": "2.99.0",
                      "packaging": "99.0", "platformdirs": "99.0"}
# What Colab lacks; real wheels, so that their real requirements take part in the resolution.
MISSING_ON_COLAB = ["kornia", "kornia-rs", "pooch"]


def _fake_wheel(folder: pathlib.Path, name: str, version: str) -> pathlib.Path:
    """A wheel holding only metadata: enough for pip to install it and resolve against it."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    files = {f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: fake\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(f"{dist}.dist-info/RECORD", record)
    return path


def _run(args: list[str], cwd: pathlib.Path, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    # cwd outside the checkout: `python -c` must not import this checkout's dlcourse from there.
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def _isolated_pip_env(wheels: pathlib.Path) -> dict:
    """pip offline on ``wheels`` only, ignoring every pip configuration file of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels),
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
    return env


@pytest.fixture(scope="module")
def dlcourse_wheel(tmp_path_factory) -> pathlib.Path:
    """A wheel of this checkout's dlcourse, built from a copy (the checkout gets no build/ folder)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("dlcourse", "autograder"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                 str(src)], cwd=out)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a dlcourse wheel here (setuptools and wheel needed): {proc.stderr[-500:]}")
    return next(out.glob("dlcourse-*.whl"))


@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_colab_setup_cell_installs_quietly_over_newer_frameworks(python, tmp_path, dlcourse_wheel):
    interpreter = shutil.which(f"python{python}")
    if interpreter is None or _run([interpreter, "-c", "pass"], cwd=tmp_path).returncode != 0:
        pytest.skip(f"python{python} is not installed here (or not on PATH)")
    venv = tmp_path / "colab"
    proc = _run([interpreter, "-m", "venv", str(venv)], cwd=tmp_path)
    if proc.returncode != 0:
        pytest.skip(f"python{python} cannot create a virtual environment with pip: {proc.stderr[-300:]}")
    vpython = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")

    # Real wheels of what Colab lacks, for this interpreter, from the registry pip is configured with.
    wheels = tmp_path / "wheels"
    proc = _run([vpython, "-m", "pip", "download", "-q", "--retries", "1", "--timeout", "15", "--no-deps",
                 "--only-binary=:all:", "-d", str(wheels), *MISSING_ON_COLAB], cwd=tmp_path)
    if proc.returncode != 0:
        pytest.skip(f"cannot fetch {MISSING_ON_COLAB} wheels (no package registry reachable?): "
                    f"{proc.stderr.strip()[-300:]}")
    for name, version in COLAB_PREINSTALLED.items():
        _fake_wheel(wheels, name, version)
    shutil.copy(dlcourse_wheel, wheels)

    env = _isolated_pip_env(wheels)
    proc = _run([vpython, "-m", "pip", "install", "-q", *(f"{n}=={v}" for n, v in COLAB_PREINSTALLED.items())],
                env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # The cell exactly as the notebooks carry it, with the git address replaced by the local wheel.
    url = build.repository_url(ROOT)
    cell = build.setup_source(url)
    requirement = f"dlcourse @ git+{url}"
    assert requirement in cell
    cell = cell.replace(requirement, f"dlcourse @ {(wheels / dlcourse_wheel.name).as_uri()}")
    proc = _run([vpython, "-c", cell], env=env, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    complaints = [line for line in output.splitlines()
                  if "ERROR" in line or "resolver" in line or "requires" in line or "incompatible" in line]
    assert not complaints, "the setup cell printed:\n" + output

    listed = _run([vpython, "-m", "pip", "list", "--format", "json"], env=env, cwd=tmp_path)
    installed = {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(listed.stdout)}
    for name, version in COLAB_PREINSTALLED.items():
        assert installed.get(name) == version, f"the setup cell replaced Colab's {name} {version}"
    assert {"dlcourse", "kornia", "pooch"} <= set(installed), sorted(installed)
    assert "tensorflow-cpu" not in installed and "nbgrader" not in installed
    check = _run([vpython, "-m", "pip", "check"], env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
