"""Under pytest -n, a test marked ``alone`` runs while no other test runs (tests/run_alone.py).

A small suite runs in a pytest subprocess with two xdist workers. Each of its tests writes
when it started and ended (``time.monotonic()``: on Linux and macOS one clock for every
process). With the lock, no ``alone`` test overlaps any other test, while the other tests do
overlap each other (the workers did run side by side); without it (the same suite, the hooks
left out), an ``alone`` test overlaps another.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent

SUITE = """
import json, os, time
from pathlib import Path

import pytest

LOG = Path(os.environ["RUN_ALONE_LOG"])


def record(name, work):
    start = time.monotonic()
    work()
    with open(LOG / f"{os.environ.get('RUN_ALONE_PREFIX', '')}{name}.json", "w") as f:
        json.dump([start, time.monotonic()], f)


def busy(seconds):
    return lambda: time.sleep(seconds)


@pytest.mark.parametrize("n", range(6))
def test_shared_one(n):
    record(f"shared-one-{n}", busy(0.1))


@pytest.mark.alone
@pytest.mark.parametrize("n", range(3))
def test_alone(n):
    record(f"alone-{n}", busy(0.15))


@pytest.mark.parametrize("n", range(6))
def test_shared_two(n):
    record(f"shared-two-{n}", busy(0.1))
"""

WITH_HOOKS = """
from run_alone import pytest_collection_modifyitems, pytest_configure, pytest_runtest_protocol
"""
WITHOUT_HOOKS = """
def pytest_configure(config):
    config.addinivalue_line("markers", "alone: (the hooks are left out)")
"""


def suite_env(path: Path, **variables: str) -> dict:
    """This environment without a lock folder of its own, ``path`` first on PYTHONPATH, and
    ``variables``."""
    env = {k: v for k, v in os.environ.items() if k != "NBIO_TEST_LOCK_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])
    return {**env, **variables}


def run_suite(
    folder: Path, conftest: str, files: dict[str, str] | None = None, options: list[str] = ()
) -> dict[str, tuple[float, float]]:
    """Run ``files`` (name -> text; default SUITE) with two workers and ``options``; each
    test's (start, end)."""
    (folder / "conftest.py").write_text(conftest)
    for name, text in (files or {"test_suite.py": SUITE}).items():
        (folder / name).write_text(text)
    (folder / "pytest.ini").write_text("[pytest]\n")  # not the project's configuration
    log = folder / "log"
    log.mkdir()
    env = suite_env(
        TESTS,
        RUN_ALONE_LOG=str(log),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",  # xdist only (-p xdist): quicker to start
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "xdist", "-p", "no:cacheprovider", "-n", "2"]
        + list(options),
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {p.stem: tuple(json.loads(p.read_text())) for p in log.glob("*.json")}


def overlaps(times: dict[str, tuple[float, float]], first: str) -> list[tuple[str, str]]:
    """Each (test whose name starts with ``first``, other test) pair whose runs overlapped."""
    return [
        (a, b)
        for a, (a0, a1) in times.items()
        if a.startswith(first)
        for b, (b0, b1) in times.items()
        if b != a and b0 < a1 and a0 < b1
    ]


def test_an_alone_test_overlaps_no_other(tmp_path):
    times = run_suite(tmp_path, WITH_HOOKS)
    assert len(times) == 15, sorted(times)
    assert overlaps(times, "shared"), "the workers never ran two tests side by side"
    assert overlaps(times, "alone") == []


def test_without_the_lock_they_would_overlap(tmp_path):
    times = run_suite(tmp_path, WITHOUT_HOOKS)
    assert len(times) == 15, sorted(times)
    assert overlaps(times, "alone"), "the suite cannot tell: its alone tests met no other"


def test_two_plain_runs_that_share_a_lock_folder_keep_alone_tests_alone(tmp_path):
    # .ci/run's runs on several Pythons at once: plain pytest processes, one lock folder.
    (tmp_path / "conftest.py").write_text(WITH_HOOKS)
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    log = tmp_path / "log"
    log.mkdir()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            env=suite_env(
                TESTS,
                RUN_ALONE_LOG=str(log),
                RUN_ALONE_PREFIX=prefix,
                NBIO_TEST_LOCK_DIR=str(tmp_path / "lock"),
                PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for prefix in ("a-", "b-")
    ]
    for run in runs:
        out, _ = run.communicate(timeout=100)
        assert run.returncode == 0, out
    times = {p.stem: tuple(json.loads(p.read_text())) for p in log.glob("*.json")}
    assert len(times) == 30, sorted(times)
    assert overlaps(times, "a-shared"), "the two runs never ran side by side"
    assert overlaps(times, "a-alone") == [] and overlaps(times, "b-alone") == []


PROBE_PLUGIN = """
import os, sys, pytest

@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item):
    lock = getattr(sys.modules.get("nbio_run_alone"), "_lock", None)
    with open(os.environ["LOCK_PROBE_LOG"], "a") as f:
        f.write(f"{item.path.suffix} {getattr(lock, 'held', None)}\\n")
"""


def test_notebook_cells_and_tests_hold_the_lock_in_this_project(tmp_path):
    # A conftest.py is asked only about the items below its folder: the hooks must reach the
    # notebooks' cells too (the top-level conftest.py registers them for every item).
    (tmp_path / "lock_probe.py").write_text(PROBE_PLUGIN)
    log = tmp_path / "held.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "lock_probe"]
        + ["notebooks/00_start_here.ipynb", "tests/test_stats.py"],
        cwd=TESTS.parent,
        env=suite_env(tmp_path, NBIO_TEST_LOCK_DIR=str(tmp_path / "lock"), LOCK_PROBE_LOG=str(log)),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    held = log.read_text().split("\n")
    assert {line for line in held if line.startswith(".ipynb")} == {".ipynb exclusive"}
    assert {line for line in held if line.startswith(".py")} == {".py shared"}


def xdist_options() -> list[str]:
    """The project's own xdist options, from pyproject.toml's ``addopts``."""
    addopts = re.search(r'^addopts = "(.*)"$', (PROJECT / "pyproject.toml").read_text(), re.M)
    words = shlex.split(addopts.group(1))
    options = [w for w in words if w in ("--dist", "--no-loadscope-reorder")]
    if "--dist" in options:
        options.insert(options.index("--dist") + 1, words[words.index("--dist") + 1])
    return options


ORDER_SUITE = {
    # Collected first and the largest file, as a file of measuring tests often is: xdist 3.8
    # sorts files by their number of tests unless told not to, and would hand it out first.
    "test_a_measures.py": """
import pytest
from test_b_waits import record

@pytest.mark.alone
@pytest.mark.parametrize("n", range(8))
def test_alone(n):
    record(f"alone-{n}")
""",
    "test_b_waits.py": """
import json, os, time
from pathlib import Path

import pytest

def record(name):
    start = time.monotonic()
    time.sleep(0.1)
    log = Path(os.environ["RUN_ALONE_LOG"]) / f"{name}.json"
    log.write_text(json.dumps([start, time.monotonic()]))

@pytest.mark.parametrize("n", range(2))
def test_shared_b(n):
    record(f"shared-b-{n}")
""",
    "test_c_waits.py": """
import pytest
from test_b_waits import record

@pytest.mark.parametrize("n", range(2))
def test_shared_c(n):
    record(f"shared-c-{n}")
""",
}


def test_with_the_projects_options_the_alone_files_go_out_last(tmp_path):
    # With every shared file handed out before the first alone one, the alone tests run at
    # the end, one after the other, instead of each waiting, idle, for the other worker.
    options = xdist_options()
    assert "--dist" in options
    times = run_suite(tmp_path, WITH_HOOKS, files=ORDER_SUITE, options=options)
    started = {name: start for name, (start, _) in times.items()}
    assert len(started) == 12, sorted(started)
    first_alone = min(t for name, t in started.items() if name.startswith("alone"))
    last_shared = max(t for name, t in started.items() if name.startswith("shared"))
    assert last_shared < first_alone, sorted(started, key=started.get)
