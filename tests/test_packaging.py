"""environment.yml (conda / Binder) and pyproject.toml (pip) must list the same runtime
packages with the same version bounds, and the same Python.

YAML is read with PyYAML, which JupyterLab already depends on (through jupyter-events);
``packaging`` comes with pytest.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[1]

CONDA_ONLY = {"pip"}
"""conda packages that are tools of the environment itself, not dependencies of the project."""

CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def _spec(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pyproject_requirements(text: str) -> dict[str, str]:
    """``{name: version bounds}`` of the runtime dependencies, plus ``python``."""
    project = tomllib.loads(text)["project"]
    wanted = {"python": _spec(project.get("requires-python", ""))}
    for line in project.get("dependencies", []):
        requirement = Requirement(line)
        wanted[canonicalize_name(requirement.name)] = _spec(str(requirement.specifier))
    return wanted


def environment_requirements(text: str) -> tuple[dict[str, str], list[str]]:
    """``({name: version bounds}, pip lines)`` of an environment.yml."""
    environment = yaml.safe_load(text)
    conda: dict[str, str] = {}
    pip: list[str] = []
    for entry in environment.get("dependencies", []):
        if isinstance(entry, dict):
            pip += entry.get("pip", [])
            continue
        name, spec = CONDA_SPEC.match(str(entry)).groups()
        if name not in CONDA_ONLY:
            conda[canonicalize_name(name)] = _spec(spec)
    return conda, pip


def disagreements(pyproject_text: str, environment_text: str) -> list[str]:
    """Every way the two files disagree, as sentences (empty: they agree)."""
    wanted = pyproject_requirements(pyproject_text)
    conda, pip = environment_requirements(environment_text)
    problems = []
    for name in sorted(wanted.keys() | conda.keys()):
        if name not in conda:
            problems.append(f"{name}{wanted[name]} is in pyproject.toml but not in environment.yml")
        elif name not in wanted:
            problems.append(f"{name}{conda[name]} is in environment.yml but not in pyproject.toml")
        elif wanted[name] != conda[name]:
            problems.append(
                f"{name}: pyproject.toml says {wanted[name]!r}, "
                f"environment.yml says {conda[name]!r}"
            )
    if "-e ." not in pip:
        problems.append("environment.yml does not install this package (pip: -e .)")
    return problems


def test_environment_yml_agrees_with_pyproject_toml():
    problems = disagreements(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8"),
        (ROOT / "environment.yml").read_text(encoding="utf-8"),
    )
    assert not problems, "\n".join(problems)


PYPROJECT = """
[project]
name = "x"
requires-python = ">=3.10"
dependencies = ["jupyterlab>=4", "ipywidgets >= 8.1", "Py_Widgets"]
"""

ENVIRONMENT = """
dependencies:
  - python>=3.10
  - jupyterlab>=4
  - ipywidgets>=8.1
  - py-widgets
  - pip
  - pip:
      - -e .
"""


def test_the_check_accepts_equal_lists():
    assert disagreements(PYPROJECT, ENVIRONMENT) == []


@pytest.mark.parametrize(
    "environment, complaint",
    [
        (ENVIRONMENT.replace("  - py-widgets\n", ""), "not in environment.yml"),
        (ENVIRONMENT.replace("  - pip\n", "  - pip\n  - numpy\n"), "not in pyproject.toml"),
        (ENVIRONMENT.replace("ipywidgets>=8.1", "ipywidgets>=7"), "ipywidgets"),
        (ENVIRONMENT.replace("python>=3.10", "python>=3.9"), "python"),
        (ENVIRONMENT.replace("      - -e .\n", "      - nbio-helpers\n"), "-e ."),
    ],
    ids=["missing", "extra", "version", "python", "not-editable"],
)
def test_the_check_fails_on_disagreement(environment, complaint):
    problems = disagreements(PYPROJECT, environment)
    assert len(problems) == 1 and complaint in problems[0], problems
