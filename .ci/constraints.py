"""Write constraints.txt from ``pip freeze`` of one fresh environment per Python version.

    python .ci/constraints.py 3.10=freeze310.txt 3.11=freeze311.txt ... > constraints.txt

Each environment is a fresh venv with ``pip install -e ".[test]"`` on that Python, tested by
.ci/run. A package pinned to the same version everywhere gets one line; otherwise one line per
Python version, with an environment marker (numpy 2.3+ needs Python 3.11, for example).
"""

from __future__ import annotations

import sys
from collections import defaultdict

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# Every package of the nbio series pinned to versions tested together by .ci/run, on
# Python 3.10 to 3.13 (a line with a marker applies to one Python version only).
# Install with:  pip install -e ".[test]" -c constraints.txt
# or, for students, with the wheel:  pip install nbio_helpers-*.whl -c constraints.txt
# Regenerate: python .ci/constraints.py 3.10=FREEZE ... (see .ci/run)
"""


def main(args: list[str]) -> int:
    versions: dict[str, dict[str, str]] = defaultdict(dict)  # name -> python -> version
    pythons = []
    for arg in args:
        python, _, path = arg.partition("=")
        pythons.append(python)
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(("#", "-e")):
                    continue
                requirement = Requirement(line)
                pinned = str(requirement.specifier).removeprefix("==")
                versions[canonicalize_name(requirement.name)][python] = pinned
    out = [HEADER]
    for name in sorted(versions):
        by_python = versions[name]
        if len(set(by_python.values())) == 1 and len(by_python) == len(pythons):
            out.append(f"{name}=={next(iter(by_python.values()))}")
            continue
        for python in pythons:
            if python in by_python:
                out.append(f'{name}=={by_python[python]}; python_version == "{python}"')
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
