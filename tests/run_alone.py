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
time spent waiting does not count against a test's timeout.

Under ``--dist loadgroup``, the tests that must share a worker are grouped too: a notebook's
cells (they share its kernel), and the tests that share a fixture of module or session scope
(made once per worker: the nbgrader courses, JupyterLab, the website).

Without xdist (plain ``pytest``, one process) nothing is locked: tests run one at a time.
Windows has no shared file locks (``msvcrt.locking`` only locks exclusively), so there every
test holds the lock exclusively: the workers take turns, and the run is as fair as a plain
``pytest``, though no faster.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

__all__ = ["pytest_collection_modifyitems", "pytest_configure", "pytest_runtest_protocol"]

MARKER = "alone"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}: asserts a measured CPU share, latency or rate; under pytest -n it runs "
        "while no other test runs (tests/run_alone.py)",
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or "nbgrader_course" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)
    for item, group in _groups(items).items():
        item.add_marker(pytest.mark.xdist_group(group))


def _groups(items) -> dict:
    """Which tests must run in the same worker (``--dist loadgroup``), one after another:
    the cells of one notebook (they share its kernel), and the tests that share a fixture
    of module or session scope (it is made once per worker: the nbgrader courses, the
    browser's JupyterLab, the website). Returns ``{item: group name}`` for those."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    keys = {}
    for item in items:
        if item.path.suffix == ".ipynb":
            keys[item] = [f"notebook {item.path.name}"]
            continue
        info = getattr(item, "_fixtureinfo", None)  # pytest's: what the test requests
        shared = []
        for name, defs in info.name2fixturedefs.items() if info else ():
            fixture = defs[-1]
            if fixture.scope != "function" and _defined_in_tests(fixture.func):
                where = "" if fixture.scope == "session" else item.path.name + " "
                shared.append(f"fixture {where}{name}")
        if shared:
            keys[item] = shared
            for other in shared[1:]:
                parent[root(other)] = root(shared[0])
    return {item: root(names[0]) for item, names in keys.items()}


def _defined_in_tests(func) -> bool:
    """A fixture of this project's tests (not one of pytest's or a plugin's)."""
    return Path(func.__code__.co_filename).resolve().parent == Path(__file__).resolve().parent


def _lock_dir() -> Path | None:
    """The folder of this run's lock files, shared by its workers; None without xdist."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run or not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    folder = Path(tempfile.gettempdir()) / f"nbio-pytest-{run}"
    folder.mkdir(exist_ok=True)
    return folder


@contextlib.contextmanager
def _held(folder: Path, exclusive: bool):
    """Hold this run's lock, exclusively or shared, for the duration of the ``with``."""
    if os.name != "posix":
        with _held_on_windows(folder):
            yield
        return
    import fcntl

    with open(folder / "turnstile", "a") as turnstile, open(folder / "tests", "a") as tests:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(tests, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(tests, fcntl.LOCK_UN)


@contextlib.contextmanager
def _held_on_windows(folder: Path):
    import msvcrt

    with open(folder / "tests", "a+b") as tests:
        tests.seek(0)  # msvcrt.locking locks bytes from the current position
        while True:
            try:  # LK_LOCK retries for 10 s, then raises OSError: try again
                msvcrt.locking(tests.fileno(), msvcrt.LK_LOCK, 1)
                break
            except OSError:
                continue
        try:
            yield
        finally:
            tests.seek(0)
            msvcrt.locking(tests.fileno(), msvcrt.LK_UNLCK, 1)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    folder = _lock_dir()
    if folder is None:  # not under xdist: one test at a time anyway
        yield
        return
    with _held(folder, exclusive=item.get_closest_marker(MARKER) is not None):
        yield
