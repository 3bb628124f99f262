"""The course's pinned environment installs from binary wheels on the laptops students have.

For each platform and Python version, pip resolves every package of environment.yml (markers
evaluated for that platform) against PyPI with ``--only-binary=:all: --no-deps --dry-run``: it
reads the wheels' metadata and downloads no wheel body. Skipped when PyPI cannot be reached
(an offline machine); the supported list in README.md is what this test measured.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.request

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/simple/"


def _manylinux(machine: str) -> list[str]:
    """pip takes --platform tags literally: a glibc 2.35 Linux (Ubuntu 22.04) accepts all of these."""
    return [f"manylinux_2_{minor}_{machine}" for minor in range(35, 16, -1)] + [f"manylinux2014_{machine}"]


# name: (sys_platform, platform_machine, pip --platform tags)
PLATFORMS = {
    "Linux x86_64": ("linux", "x86_64", _manylinux("x86_64")),
    "Linux aarch64": ("linux", "aarch64", _manylinux("aarch64")),
    "macOS arm64": ("darwin", "arm64", ["macosx_14_0_arm64"]),
    "Windows x86_64": ("win32", "AMD64", ["win_amd64"]),
    "macOS x86_64": ("darwin", "x86_64", ["macosx_14_0_x86_64"]),
}
PYTHONS = ["3.11", "3.13"]
# Platforms the pins cannot serve, and the package that has no wheel there (README says so).
UNSUPPORTED = {"macOS x86_64": "torch"}  # PyTorch's last Intel-Mac wheels are 2.2.x

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _pinned_requirements() -> list[Requirement]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [Requirement(line) for line in pip if not line.startswith("-")]


def _for_platform(platform: str, python: str) -> list[str]:
    sys_platform, machine, _ = PLATFORMS[platform]
    system = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[sys_platform]
    environment = {"sys_platform": sys_platform, "platform_machine": machine, "platform_system": system,
                   "os_name": "nt" if sys_platform == "win32" else "posix", "python_version": python,
                   "python_full_version": f"{python}.0", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython"}
    return [f"{r.name}{r.specifier}" for r in _pinned_requirements()
            if r.marker is None or r.marker.evaluate(environment)]


def _resolve(platform: str, python: str) -> subprocess.CompletedProcess:
    tags = [arg for tag in PLATFORMS[platform][2] for arg in ("--platform", tag)]
    # Only PyPI: none of this machine's pip configuration (local wheel folders, constraints).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")}
    env["PIP_CONFIG_FILE"] = os.devnull
    with tempfile.TemporaryDirectory() as target:
        return subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--only-binary=:all:",
             "--ignore-installed", "--disable-pip-version-check", "--python-version", python, *tags,
             "--target", target, "--report", "-", "-q", *_for_platform(platform, python)],
            capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def resolutions() -> dict[tuple[str, str], subprocess.CompletedProcess]:
    try:
        urllib.request.urlopen(PYPI + "pip/", timeout=10).close()
    except OSError as exc:
        pytest.skip(f"PyPI cannot be reached ({exc}); the platform check needs the package registry")
    combos = [(platform, python) for platform in PLATFORMS for python in PYTHONS]
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:  # network-bound
        return dict(zip(combos, pool.map(lambda combo: _resolve(*combo), combos)))


def test_markers_pick_the_tensorflow_build_that_has_wheels():
    assert "tensorflow-cpu==2.21.*" in _for_platform("Linux x86_64", "3.11")
    assert "tensorflow==2.21.*" in _for_platform("macOS arm64", "3.11")
    assert not any(r.startswith("tensorflow-cpu") for r in _for_platform("macOS arm64", "3.11"))


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", [p for p in PLATFORMS if p not in UNSUPPORTED])
def test_every_pinned_package_has_a_wheel(resolutions, platform, python):
    proc = resolutions[platform, python]
    assert proc.returncode == 0, f"{platform}, Python {python}:\n{proc.stderr[-2000:]}"
    installed = {canonicalize_name(item["metadata"]["name"]) for item in json.loads(proc.stdout)["install"]}
    wanted = {canonicalize_name(Requirement(r).name) for r in _for_platform(platform, python)}
    assert wanted <= installed, wanted - installed
    wheels = [item["download_info"]["url"] for item in json.loads(proc.stdout)["install"]]
    assert all(url.endswith(".whl") for url in wheels), wheels


@pytest.mark.parametrize("platform", UNSUPPORTED)
def test_unsupported_platforms_are_still_unsupported(resolutions, platform):
    """When this fails, the platform gained wheels: move it to the supported list in README.md."""
    proc = resolutions[platform, PYTHONS[0]]
    assert proc.returncode != 0
    assert f"No matching distribution found for {UNSUPPORTED[platform]}" in proc.stderr, proc.stderr[-2000:]
