"""Packaging: pyproject.toml and environment.yml agree; light modules stay framework-free."""

import pathlib
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Modules a notebook imports before it chooses a framework: they must not import one.
LIGHT_MODULES = ["dlcourse", "dlcourse.profiles", "dlcourse.checks", "dlcourse.experiments", "dlcourse.plots",
                 "dlcourse.data"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement(text: str) -> tuple[str, str]:
    """(normalized name, specifier without spaces) of a PEP 508 requirement like 'keras>=3.6,<4'."""
    text = text.split(";")[0].strip()  # environment markers are not used here
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$", text)
    assert match, f"cannot parse requirement {text!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    specifier = ",".join(sorted(part.strip() for part in match.group(3).replace(" ", "").split(",") if part.strip()))
    return name, specifier


def test_environment_yml_and_pyproject_name_the_same_packages():
    project = _pyproject()["project"]
    declared = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("test", []))
    from_pyproject = dict(_requirement(r) for r in declared)
    assert len(from_pyproject) == len(declared), "pyproject.toml names a package twice"

    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    pip_lines = [line for line in pip_sections[0] if not line.startswith("-")]  # skip "-e ." and options
    assert "-e ." in pip_sections[0], "environment.yml's pip section must install this repository (-e .)"
    from_environment = dict(_requirement(r) for r in pip_lines)
    assert len(from_environment) == len(pip_lines), "environment.yml names a package twice"

    problems = []
    for name in sorted(set(from_pyproject) | set(from_environment)):
        if name not in from_environment:
            problems.append(f"{name}: in pyproject.toml ({from_pyproject[name] or 'any'}) but not in environment.yml")
        elif name not in from_pyproject:
            problems.append(f"{name}: in environment.yml ({from_environment[name] or 'any'}) but not in pyproject.toml")
        elif from_pyproject[name] != from_environment[name]:
            problems.append(
                f"{name}: pyproject.toml says {from_pyproject[name]!r}, environment.yml says {from_environment[name]!r}"
            )
    assert not problems, "pyproject.toml and environment.yml disagree:\n  " + "\n  ".join(problems)


def test_requirement_parser_normalizes_names_and_specifier_order():
    assert _requirement("Tensorflow_CPU == 2.21.*") == ("tensorflow-cpu", "==2.21.*")
    assert _requirement("keras<4, >=3.6") == _requirement("keras>=3.6,<4")
    assert _requirement("numpy") == ("numpy", "")


def test_python_and_torch_pins():
    project = _pyproject()["project"]
    assert project["requires-python"].replace(" ", "") == ">=3.11"
    requirements = dict(_requirement(r) for r in project["dependencies"])
    assert requirements.get("torch") == "==2.13.0", f"torch must be pinned to ==2.13.0, got {requirements.get('torch')!r}"
    assert "torchvision" not in requirements, "torchvision does not work with the CPU torch build"


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_modules_do_not_import_frameworks(module):
    relative = module.replace(".", "/")
    if module != "dlcourse" and not (ROOT / f"{relative}.py").exists():
        pytest.skip(f"{relative}.py does not exist yet")
    code = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing {module} also imported {result.stdout.strip()}"
