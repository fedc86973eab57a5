"""The project's files for people who reuse it: licences (in the wheel too), CITATION.cff,
CHANGELOG.md, the class constraints file, the dependency floors CI installs, and the GitHub
Actions workflow for forks."""

from __future__ import annotations

import datetime
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
pytestmark = pytest.mark.timeout(120)


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------- licences, credit
def test_the_code_licence_is_mit_as_pyproject_says():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert read("LICENSE").startswith("MIT License")
    assert "LICENSE" in PYPROJECT["project"]["license-files"]


def test_the_notebooks_licence_is_cc_by_4():
    text = read("LICENSE-notebooks")
    assert "Creative Commons Attribution 4.0 International" in text and "CC-BY-4.0" in text
    assert "Python concurrent programming: non-blocking IO" in text


@pytest.mark.slow
def test_the_wheel_carries_both_licences(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = tmp_path.glob("nbio_helpers-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for licence in ("LICENSE", "LICENSE-notebooks"):
        assert any(n.endswith(f".dist-info/licenses/{licence}") for n in names), names


def test_citation_cff_has_the_shape_of_cff_1_2():
    cff = yaml.safe_load(read("CITATION.cff"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title"):
        assert isinstance(cff[key], str) and cff[key].strip()
    assert cff["authors"] and all(
        isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in cff["authors"]
    )
    assert cff["type"] in ("software", "dataset")
    assert cff["license"] == PYPROJECT["project"]["license"]
    assert str(cff["version"]) == PYPROJECT["project"]["version"]
    datetime.date.fromisoformat(str(cff["date-released"]))
    for reference in cff["references"]:
        assert {"type", "title", "authors"} <= set(reference)
    assert any(
        r["title"] == "Python concurrent programming: non-blocking IO" for r in cff["references"]
    )


def test_the_changelog_has_the_current_version_and_unreleased_changes():
    text = read("CHANGELOG.md")
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    assert f"## [{PYPROJECT['project']['version']}]" in text


# ---------------------------------------------------------------- constraints and floors
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def pins_for(python: str) -> dict[str, str]:
    environment = {
        **default_environment(),
        "python_version": python,
        "python_full_version": f"{python}.0",
    }
    pins = {}
    for line in read("constraints.txt").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        assert str(requirement.specifier).startswith("=="), line
        if requirement.marker is None or requirement.marker.evaluate(environment):
            name = canonicalize_name(requirement.name)
            assert name not in pins, f"{name} pinned twice for Python {python}"
            pins[name] = str(requirement.specifier)[2:]
    return pins


@pytest.mark.parametrize("python", PYTHONS)
def test_constraints_pin_every_dependency_within_its_bounds(python):
    pins = pins_for(python)
    project = PYPROJECT["project"]
    for line in project["dependencies"] + project["optional-dependencies"]["test"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if requirement.marker and not requirement.marker.evaluate(
            {"python_version": python, "extra": "test"}
        ):
            assert name not in pins, f"{name} is pinned for Python {python}, which skips it"
            continue
        assert name in pins, f"{name} is not pinned for Python {python}"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
    assert len(pins) > 80  # and everything they depend on


def test_the_floors_ci_installs_are_the_lower_bounds():
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        from floors import floors
    finally:
        sys.path.pop(0)
    pins = floors(PYPROJECT)
    assert "matplotlib==3.8" in pins and "jupyterlab==4" in pins
    assert len(pins) == len(
        [
            r
            for r in PYPROJECT["project"]["dependencies"]
            + PYPROJECT["project"]["optional-dependencies"]["test"]
            if ">=" in r
        ]
    )


# ---------------------------------------------------------------- the workflow for forks
def workflow():
    [path] = (ROOT / ".github" / "workflows").glob("*.yml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_workflow_parses_and_covers_three_oses_and_the_pythons():
    jobs = workflow()["jobs"]
    assert set(jobs) == {"lint", "tests"}
    matrix = jobs["tests"]["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    # the oldest and the newest Python (issue 11), and 3.12; .ci/run runs all four
    assert matrix["python"] == ["3.10", "3.12", "3.13"]


def test_the_workflow_runs_the_readmes_commands():
    job = workflow()["jobs"]["tests"]
    commands = [step["run"] for step in job["steps"] if "run" in step]
    readme = read("README.md")
    install = 'pip install -e ".[test]"'
    assert install in readme and any(install in c for c in commands)
    for command in ("pytest notebooks", "pytest -m browser"):
        assert command in readme, command
        assert any(c.strip().endswith(command) for c in commands), command
    fast = 'pytest -m "not slow and not browser" tests'
    assert fast in readme and fast in commands
    ci = read(".ci/run")  # the same sets as the project's CI
    assert """FAST='pytest -q -m "not slow and not browser" tests'""" in ci
    assert "NOTEBOOKS='pytest -q notebooks'" in ci


def test_the_workflow_lints_as_ci_does_and_every_check_runs():
    job = workflow()["jobs"]["lint"]
    steps = [step for step in job["steps"] if "run" in step]
    assert 'pip install -e ".[test]"' in steps[0]["run"]  # ruff and mypy are in the test extra
    checks = [step["run"] for step in steps[1:]]
    assert checks == ["ruff check .", "ruff format --check .", "mypy"]
    assert "LINT=('ruff check .' 'ruff format --check .' 'mypy')" in read(".ci/run")
    # a finding in one check does not hide the others' findings
    assert all(step.get("if") == "always()" for step in steps[2:])


def test_ci_runs_the_readmes_test_command():
    readme = read("README.md")
    command = readme.split("Run the tests", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert command.strip() == "pytest -n auto"
    assert f"[full]='{command.strip()} --durations=30'" in read(".ci/run")
