"""Print a constraints file pinning each dependency to its lowest allowed version.

    python .ci/floors.py > floors.txt        # then: pip install -e ".[test]" -c floors.txt

Every runtime dependency and every ``test`` extra in pyproject.toml with a ``>=`` bound is
pinned to that bound (``jupyterlab>=4`` -> ``jupyterlab==4.0``); pip picks the rest. .ci/run
installs this on the oldest supported Python and runs the fast tests and the notebooks, so
that the floors pyproject.toml states are floors that work.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def floors(pyproject: dict, extras=("test",)) -> list[str]:
    project = pyproject["project"]
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines += project.get("optional-dependencies", {}).get(extra, [])
    pins = []
    for line in lines:
        requirement = Requirement(line)
        lowest = [s.version for s in requirement.specifier if s.operator == ">="]
        if lowest:
            pins.append(f"{requirement.name}=={lowest[0]}")
    return pins


if __name__ == "__main__":
    import tomllib  # Python 3.11+; the function above also runs on 3.10 (the tests)

    with open(ROOT / "pyproject.toml", "rb") as f:
        print("\n".join(floors(tomllib.load(f))))
    sys.exit(0)
