"""`.ci/run`, the project's CI, run for real with stand-ins for pyenv, the Pythons and the
tools (nothing installed, nothing tested): which Python each run uses, what it installs,
under which descriptor limit it runs which commands, that the lint step runs before any test
and fails CI on a finding while the runs still go on, that the table at the end is true, and
that a missing Python stops it at once with a clear message."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci" / "run"
FAST = 'pytest -q -m "not slow and not browser" tests'

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        sys.platform == "win32"
        or shutil.which("bash") is None
        or subprocess.run(["bash", "-c", "declare -A a"], capture_output=True).returncode != 0,
        reason=".ci/run needs bash 4 or newer (macOS ships bash 3.2)",
    ),
]

# One stand-in for every program: its name ($0) says what it plays. It logs each call as
# "<venv or tool> <args> | limit=<soft descriptor limit> | lock=<$NBIO_TEST_LOCK_DIR>" and
# answers as the real one would.
STAND_IN = r"""#!/usr/bin/env bash
me=$(basename "$0")
venv=$(basename "$(dirname "$(dirname "$0")")")
log() {
    local line="$*"
    echo "${line% } | limit=$(ulimit -Sn) | lock=${NBIO_TEST_LOCK_DIR:-}" >> "$FAKE_LOG"
}
case $me in
    pyenv)
        case $1 in
            versions) printf '%s\n' $FAKE_PYTHONS ;;
            which) echo "$FAKE_BIN/python" ;;
            exec) shift; PYENV_VERSION=$PYENV_VERSION exec "$FAKE_BIN/$@" ;;
        esac ;;
    chromium|socat|nc) ;;
    python)
        if [[ $1 == -m && $2 == venv ]]; then
            mkdir -p "$3/bin"
            for tool in python ruff mypy; do ln -s "$FAKE_BIN/python" "$3/bin/$tool"; done
            log "venv $(basename "$3") python=$PYENV_VERSION"
        elif [[ $1 == -m && $2 == pip ]]; then
            log "$venv pip ${*:3}"
        elif [[ $1 == .ci/floors.py ]]; then
            echo "jupyterlab==4"
        elif [[ $1 == -m && $2 == pytest ]]; then
            log "$venv pytest ${*:3}"
            echo "3 passed in 0.01s"
        fi ;;
    ruff|mypy)
        log "$venv $me $*"
        if [[ " $FAKE_FINDINGS " == *" $me-$1 "* ]]; then echo "Found 2 errors."; exit 1; fi ;;
esac
"""


def run_ci(tmp_path, pythons="3.10.13 3.11.7 3.12.1 3.13.0", findings=""):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    stand_in = fake_bin / "python"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    for name in ("pyenv", "chromium", "socat", "nc"):
        (fake_bin / name).symlink_to(stand_in)
    log = tmp_path / "calls.log"
    log.touch()
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "FAKE_BIN": str(fake_bin),
        "FAKE_LOG": str(log),
        "FAKE_PYTHONS": pythons,
        "FAKE_FINDINGS": findings,
        "NBIO_CI_DIR": str(tmp_path / "ci"),
    }
    env.pop("PYENV_VERSION", None)
    env.pop("NBIO_TEST_LOCK_DIR", None)  # set when this test runs in .ci/run's side-by-side runs
    done = subprocess.run(
        ["bash", str(CI)], env=env, capture_output=True, text=True, timeout=50, cwd=tmp_path
    )
    return done, log.read_text().splitlines()


def calls_of(calls, venv):
    return [c.split(" | ")[0].split(" ", 1)[1] for c in calls if c.startswith(f"{venv} ")]


def limit_of(calls, venv):
    return {
        c.split(" | limit=")[1].split(" | ")[0] for c in calls if c.startswith(f"{venv} pytest")
    }


def lock_of(calls, venv):
    return {c.split(" | lock=")[1] for c in calls if c.startswith(f"{venv} pytest")}


def test_every_run_installs_its_python_and_runs_its_commands(tmp_path):
    done, calls = run_ci(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    created = {c.split(" | ")[0] for c in calls if c.startswith("venv ")}
    assert created == {
        "venv full python=3.11.7",
        "venv oldest python=3.10.13",
        "venv py312 python=3.12.1",
        "venv constraints python=3.13.0",
    }
    installs = {
        venv: [c for c in calls_of(calls, venv) if c.startswith("pip install -q --no-compile -e")]
        for venv in ("full", "oldest", "py312", "constraints")
    }
    assert installs["full"] == ["pip install -q --no-compile -e .[test,site,binder]"]
    assert installs["oldest"] == [
        f"pip install -q --no-compile -e .[test] -c {tmp_path}/ci/floors.txt"
    ]
    assert installs["py312"] == ["pip install -q --no-compile -e .[test]"]
    assert installs["constraints"] == ["pip install -q --no-compile -e .[test] -c constraints.txt"]

    # the full run: the lint step first, in its venv, then the README's `pytest -n auto`
    full = [c for c in calls_of(calls, "full") if not c.startswith("pip")]
    assert full == [
        "ruff check .",
        "ruff format --check .",
        "mypy",
        "pytest -p no:cacheprovider -n auto --durations=30",
    ]
    # every other Python: the fast tests, then the notebooks
    fast = FAST.replace("pytest ", "pytest -p no:cacheprovider ", 1).replace('"', "")
    for venv in ("oldest", "py312", "constraints"):
        assert [c for c in calls_of(calls, venv) if c.startswith("pytest")] == [
            fast,
            "pytest -p no:cacheprovider -q notebooks",
        ], venv
    # macOS's default descriptor limit where the issue asks for it, not elsewhere
    assert limit_of(calls, "oldest") == limit_of(calls, "py312") == {"256"}
    assert "256" not in limit_of(calls, "full") | limit_of(calls, "constraints")
    # lint before any test; the full run first, alone; then the other three side by side,
    # each with its commands in order (above), all sharing one lock folder
    order = [c.split(" | ")[0] for c in calls if " pip " not in c and not c.startswith("venv")]
    assert order.index("full mypy") < min(i for i, c in enumerate(order) if " pytest " in c)
    runs = [c.split()[0] for c in order if " pytest " in c]
    assert runs[0] == "full" and sorted(runs[1:]) == sorted(["oldest", "py312", "constraints"] * 2)
    assert lock_of(calls, "full") == {""}
    locks = lock_of(calls, "oldest") | lock_of(calls, "py312") | lock_of(calls, "constraints")
    assert len(locks) == 1 and locks.pop().endswith("/test-lock")

    table = done.stdout.split("==================== summary ====================")[1]
    for step, python in [
        ("lint", "3.11.7"),
        ("full", "3.11.7"),
        ("oldest", "3.10.13"),
        ("py312", "3.12.1"),
        ("constraints", "3.13.0"),
    ]:
        assert re.search(rf"^{step} +{re.escape(python)} +passed +\d+ ", table, re.M), table
    assert re.search(r"^oldest .*3 passed in 0.01s;3 passed in 0.01s$", table, re.M), table
    assert "CI passed" in done.stdout


def test_a_lint_finding_fails_ci_but_every_run_still_goes(tmp_path):
    done, calls = run_ci(tmp_path, findings="ruff-check mypy-")
    assert done.returncode == 1
    assert "CI FAILED" in done.stderr
    assert "Found 2 errors." in done.stdout  # the findings are printed
    table = done.stdout.split("==================== summary ====================")[1]
    lint = next(line for line in table.splitlines() if line.startswith("lint "))
    assert "FAILED" in lint
    assert "ruff check .: Found 2 errors." in lint and "ruff format --check .: clean" in lint
    assert "mypy: Found 2 errors." in lint
    for step in ("full", "oldest", "py312", "constraints"):
        assert re.search(rf"^{step} .* passed ", table, re.M), table
    assert len([c for c in calls if " pytest " in c]) == 7


def test_a_missing_python_stops_ci_at_once_and_names_it(tmp_path):
    done, calls = run_ci(tmp_path, pythons="3.11.7 3.12.1")
    assert done.returncode == 1
    assert "pyenv does not have: 3.10 (for the oldest run) 3.13 (for the constraints run)" in (
        done.stderr
    )
    assert calls == []  # nothing installed, nothing run
    assert not (tmp_path / "ci").exists()


def test_the_plan_names_what_each_step_runs():
    done = subprocess.run(["bash", str(CI), "--plan"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["lint", "full", "oldest", "py312", "constraints"]
    assert lines[0].endswith("ruff check .; ruff format --check .; mypy")
    for line in lines[2:]:
        assert line.endswith(f"{FAST}; pytest -q notebooks"), line
