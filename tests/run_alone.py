"""Tests that measure run alone, when pytest-xdist runs the others side by side.

``pytest -n auto`` (the README's test command) runs tests in several worker processes at
once. Most tests only wait: for a checker's time limit, a kernel, a subprocess. But a test
that asserts a measured CPU share, latency or rate needs the cores to itself, as the
notebooks' own measurements do: a second test spinning next to it would change the figure
it checks. Those tests are marked ``alone``, and each runs only while no other test runs:

* every test marked ``@pytest.mark.alone`` (or in a module whose ``pytestmark`` has it);
* every notebook cell (nbval): the notebooks assert what they measure;
* every test that uses the ``nbgrader_course`` fixture (nbgrader executes the notebooks).

How: a readers-writer lock on files shared by the workers of one run. A test that is not
``alone`` holds it shared; an ``alone`` test holds it exclusively, so it waits for the
running tests to end and the others wait for it. A turnstile in front of the lock lets an
``alone`` test waiting for it go before tests that arrive after it (without one, a worker
that keeps starting shared tests would keep the other waiting). The lock is taken around
the test's whole protocol (setup, call, teardown), outside pytest-timeout's timer, so
time spent waiting does not count against a test's timeout. A worker whose next test is
``alone`` too keeps the exclusive lock (a notebook's cells, a file of measuring tests run
as one block); a shared hold is given back after every test, so an ``alone`` test waits
for one test at the most in each other worker.

pyproject.toml asks for ``--dist loadfile``: each file's tests run in one worker, in order;
and for ``--no-loadscope-reorder``: the files go out in the order of ``_in_running_order``
(pytest-xdist 3.8 otherwise sorts them by their number of tests, which put the measuring
files among the first: found in a profile of the full run, where one worker sat idle for
half of it).
A notebook's cells need that (they share its kernel), and so do the tests that share a
fixture of module or session scope, which is made once per worker: JupyterLab, the website,
and the nbgrader courses, each used by one file only (``nbgrader_course`` by
test_student_edition.py, ``nbgrader_graded`` by test_nbgrader_roundtrip.py). With pytest 9.2
and xdist 3.8, ``--dist loadgroup`` did not keep an ``xdist_group`` together (tried: xdist
renames the test ids through an attribute that this pytest no longer reads).

Without xdist (plain ``pytest``, one process) nothing is locked: tests run one at a time;
unless ``NBIO_TEST_LOCK_DIR`` names a folder: then every pytest process that has it shares
one lock there, so that runs on several Pythons can go side by side (.ci/run does that).
Windows has no shared file locks (``msvcrt.locking`` only locks exclusively), so there every
test holds the lock exclusively: the workers take turns, and the run is as fair as a plain
``pytest``, though no faster.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_protocol",
    "pytest_xdist_auto_num_workers",
]

MARKER = "alone"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}: asserts a measured CPU share, latency or rate; under pytest -n it runs "
        "while no other test runs (tests/run_alone.py)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or "nbgrader_course" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)
    items[:] = _in_running_order(items)


def _in_running_order(items) -> list:
    """The files in the order that keeps the workers busy: first the files with no
    ``alone`` test, the one that grades with nbgrader first (one fixture of about two
    minutes) and then the others, most slow tests first; then the files with ``alone``
    tests, and the notebooks last. An ``alone`` test started next to a long shared one
    would wait for it, idle; at the end, with every shared test done, the alone ones run one
    after the other. Each file's tests keep their order. (``--dist loadfile
    --no-loadscope-reorder`` hands the files out in this order; every worker collects, so
    the order must not be random.)"""
    files: dict = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def rank(path):
        tests = files[path]
        if path.suffix == ".ipynb":
            return (3, 0)
        if any(_alone(t) for t in tests):
            return (2, 0)
        if any("nbgrader_graded" in getattr(t, "fixturenames", ()) for t in tests):
            return (0, 0)
        return (1, -sum(t.get_closest_marker("slow") is not None for t in tests))

    ordered = sorted(files, key=rank)  # sorted() is stable: ties keep collection order
    return [item for path in ordered for item in files[path]]


def pytest_xdist_auto_num_workers(config) -> int:
    """How many workers ``-n auto`` starts: twice the usable cores, up to 8 (and never fewer
    than the cores). pytest-xdist's own choice is one per core, but most tests here only
    wait (for a kernel, a subprocess, a checker's time limit), and the ``alone`` ones get
    the machine to themselves whatever the number: on 2 cores, one worker per core left
    the cores idle for much of the full run (vmstat: 40-97% idle while the shared tests
    ran)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return max(cores, min(2 * cores, 8))


LOCK_DIR_VARIABLE = "NBIO_TEST_LOCK_DIR"
"""A folder named in this environment variable holds the lock of every pytest process that
has it, with or without xdist: .ci/run sets it for the runs it runs side by side."""


def _lock_dir() -> Path | None:
    """The folder of the lock files: ``$NBIO_TEST_LOCK_DIR``, or one for this run's xdist
    workers; None for a plain pytest run (nothing to share the machine with)."""
    shared = os.environ.get(LOCK_DIR_VARIABLE)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if shared:
        folder = Path(shared)
    elif run and os.environ.get("PYTEST_XDIST_WORKER"):
        folder = Path(tempfile.gettempdir()) / f"nbio-pytest-{run}"
    else:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _RunLock:
    """This worker's hold on the run's lock: ``hold(exclusive)``, ``release()``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.held: str | None = None  # None, "shared" or "exclusive"
        self.turnstile = open(folder / "turnstile", "a")  # noqa: SIM115 - the worker's life
        self.tests = open(folder / "tests", "a+b")  # noqa: SIM115

    def hold(self, exclusive: bool) -> None:
        wanted = "exclusive" if exclusive else "shared"
        if self.held == wanted:
            return
        self.release()
        if os.name == "posix":
            import fcntl

            fcntl.flock(self.turnstile, fcntl.LOCK_EX)
            try:
                fcntl.flock(self.tests, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            finally:
                fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        else:  # Windows: msvcrt.locking has exclusive locks only
            import msvcrt

            self.tests.seek(0)  # it locks bytes from the current position
            while True:
                try:  # LK_LOCK retries for 10 s, then raises OSError: try again
                    msvcrt.locking(self.tests.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
        self.held = wanted

    def release(self) -> None:
        if self.held is None:
            return
        if os.name == "posix":
            import fcntl

            fcntl.flock(self.tests, fcntl.LOCK_UN)
        else:
            import msvcrt

            self.tests.seek(0)
            msvcrt.locking(self.tests.fileno(), msvcrt.LK_UNLCK, 1)
        self.held = None


_lock: _RunLock | None = None


def _alone(item) -> bool:
    return item is not None and item.get_closest_marker(MARKER) is not None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    global _lock
    folder = _lock_dir()
    if folder is None:  # a plain pytest run: one test at a time anyway
        yield
        return
    if _lock is None:
        _lock = _RunLock(folder)
    _lock.hold(exclusive=_alone(item))
    yield
    # An alone test followed by another (a notebook's next cell, the next measuring test of
    # its file) keeps the lock: handing it over between them would make each wait for a
    # test of the other worker's to end. A shared hold is given back after every test: kept,
    # it would leave a worker whose next test is alone idle until the other had no shared
    # test left (tried: the full run took 972 s instead of 815).
    if not (_alone(item) and _alone(nextitem)):
        _lock.release()
