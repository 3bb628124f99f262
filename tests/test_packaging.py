"""Packaging: the package's requirements stay loose, the course's pins live in its extras and
environment.yml (which agree), each platform gets one TensorFlow build; light modules stay framework-free."""

import pathlib
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The extras that make up the course's own environment (make test installs both).
COURSE_EXTRAS = ("course", "test")

# Modules a notebook imports before it chooses a framework: they must not import one.
LIGHT_MODULES = ["dlcourse", "dlcourse.profiles", "dlcourse.checks", "dlcourse.experiments", "dlcourse.plots",
                 "dlcourse.data"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement(text: str) -> tuple[str, str, str]:
    """(normalized name, sorted specifier, normalized marker) of a PEP 508 requirement."""
    requirement = Requirement(text)
    specifier = ",".join(sorted(str(s) for s in requirement.specifier))
    return canonicalize_name(requirement.name), specifier, str(requirement.marker or "")


def _requirements(texts: list[str]) -> dict[str, tuple[str, str]]:
    parsed = [_requirement(t) for t in texts]
    by_name = {name: (specifier, marker) for name, specifier, marker in parsed}
    assert len(by_name) == len(parsed), f"a package is named twice in {texts}"
    return by_name


def _environment_pip_lines() -> list[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    assert "-e ." in pip_sections[0], "environment.yml's pip section must install this repository (-e .)"
    return [line for line in pip_sections[0] if not line.startswith("-")]  # skip "-e ." and options


def _example_version(specifier: str) -> str:
    """The version an exact pin stands for: '==2.21.*' -> '2.21.0'."""
    return specifier.removeprefix("==").replace(".*", ".0")


def test_environment_yml_is_the_course_extras_over_the_package_dependencies():
    project = _pyproject()["project"]
    extras = project.get("optional-dependencies", {})
    expected = _requirements(project["dependencies"])
    for extra in COURSE_EXTRAS:
        expected.update(_requirements(extras[extra]))  # an extra's pin replaces the package's range
    from_environment = _requirements(_environment_pip_lines())

    problems = []
    for name in sorted(set(expected) | set(from_environment)):
        if name not in from_environment:
            problems.append(f"{name}: in pyproject.toml ({expected[name]}) but not in environment.yml")
        elif name not in expected:
            problems.append(f"{name}: in environment.yml ({from_environment[name]}) but not in pyproject.toml")
        elif expected[name] != from_environment[name]:
            problems.append(f"{name}: pyproject.toml says {expected[name]!r}, environment.yml says "
                            f"{from_environment[name]!r}")
    assert not problems, "pyproject.toml and environment.yml disagree:\n  " + "\n  ".join(problems)


def test_the_package_requirements_stay_loose_and_the_course_pins_satisfy_them():
    """Colab holds newer frameworks than the course pins: dlcourse itself must accept them."""
    project = _pyproject()["project"]
    package = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for requirement in package.values():
        assert not any(s.operator in ("==", "===", "~=") for s in requirement.specifier), (
            f"{requirement}: exact pins belong to the 'course' extra and environment.yml, "
            "not to the package's own requirements")
        assert not any(s.operator in ("<", "<=") and s.version.split(".")[0] == "0" for s in requirement.specifier)
    for name in ("tensorflow", "tensorflow-cpu", "nbgrader", "jupyterlab", "notebook"):
        assert name not in package, f"{name} must not be a requirement of the package (Colab lacks or replaces it)"
    for requirement in map(Requirement, project["optional-dependencies"]["course"]):
        pinned = [s for s in requirement.specifier if s.operator == "=="]
        if requirement.name in package and pinned:
            version = _example_version(str(pinned[0]))
            assert package[requirement.name].specifier.contains(version), (
                f"the course pins {requirement} but the package requires {package[requirement.name]}")


def test_requirement_parser_normalizes_names_specifiers_and_markers():
    assert _requirement("Tensorflow_CPU == 2.21.*") == ("tensorflow-cpu", "==2.21.*", "")
    assert _requirement("keras<4, >=3.6") == _requirement("keras>=3.6,<4")
    assert _requirement("numpy") == ("numpy", "", "")
    assert _requirement("a; sys_platform=='linux'")[2] == _requirement('a ; sys_platform == "linux"')[2]


# (sys_platform, platform_machine) of the laptops and servers students use.
PLATFORMS = {"Linux x86_64": ("linux", "x86_64"), "Linux aarch64": ("linux", "aarch64"),
             "macOS arm64": ("darwin", "arm64"), "macOS x86_64": ("darwin", "x86_64"),
             "Windows x86_64": ("win32", "AMD64"), "Windows arm64": ("win32", "ARM64")}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_exactly_one_tensorflow_build_per_platform(platform):
    sys_platform, machine = PLATFORMS[platform]
    environment = {"sys_platform": sys_platform, "platform_machine": machine}
    course = [Requirement(r) for r in _pyproject()["project"]["optional-dependencies"]["course"]]
    builds = [r.name for r in course if r.name.startswith("tensorflow") and r.name != "tensorboard"
              and (r.marker is None or r.marker.evaluate(environment))]
    expected = ["tensorflow-cpu"] if machine in ("x86_64", "AMD64") and sys_platform != "darwin" else ["tensorflow"]
    assert builds == expected, f"{platform}: the course installs {builds}"


def test_python_and_torch_pins():
    project = _pyproject()["project"]
    assert project["requires-python"].replace(" ", "") == ">=3.11"
    course = _requirements(project["optional-dependencies"]["course"])
    assert course.get("torch") == ("==2.13.0", ""), f"torch must be pinned to ==2.13.0, got {course.get('torch')!r}"
    assert "torchvision" not in _requirements(project["dependencies"]) | course, \
        "torchvision does not work with the CPU torch build"


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
