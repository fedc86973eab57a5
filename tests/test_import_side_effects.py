"""Importing any module of the package has no side effect on the process.

No descriptor opened, no thread started, no signal handler, exit hook, environment variable,
``sys.path`` entry or matplotlib setting changed: a notebook's first cell, a checker or the
command line pay nothing for what they do not use. Run in a fresh interpreter, because this
test process has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = r"""
import atexit, importlib, json, os, pkgutil, signal, sys, threading

import matplotlib  # the package's plots import pyplot: its import alone is not ours

HAS_PROC = os.path.isdir("/proc/self/fd")
SIGNALS = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]


def snapshot():
    fds = {}
    if HAS_PROC:
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                pass  # the descriptor listdir itself used, closed already
    handlers = {}
    for signum in SIGNALS:
        try:
            handlers[int(signum)] = repr(signal.getsignal(signum))
        except (ValueError, OSError):
            pass
    return {
        "fds": fds,
        "threads": sorted(t.name for t in threading.enumerate()),
        "signals": handlers,
        "atexit": atexit._ncallbacks() if hasattr(atexit, "_ncallbacks") else None,
        "environ": dict(os.environ),
        "sys_path": list(sys.path),
        "rcparams": dict(matplotlib.rcParams),
    }


def diff(before, after):
    changes = {}
    for key in before:
        if before[key] != after[key]:
            if isinstance(before[key], dict):
                changes[key] = {
                    str(k): [repr(before[key].get(k)), repr(after[key].get(k))]
                    for k in set(before[key]) | set(after[key])
                    if before[key].get(k) != after[key].get(k)
                }
            else:
                changes[key] = [before[key], after[key]]
    return changes


report = {"has_proc": HAS_PROC, "modules": 0, "changes": {}}
snapshot()  # once before: reading every rcParam may register an exit hook of matplotlib's
first = snapshot()
import nbio_helpers

report["changes"]["nbio_helpers"] = diff(first, snapshot())
names = [m.name for m in pkgutil.walk_packages(nbio_helpers.__path__, "nbio_helpers.")]
for name in names:
    if name.endswith(".__main__"):
        continue  # runs the command line: importing it is running it
    before = snapshot()
    importlib.import_module(name)
    report["modules"] += 1
    change = diff(before, snapshot())
    if change:
        report["changes"][name] = change
report["changes"]["everything"] = diff(first, snapshot())
report["changes"] = {k: v for k, v in report["changes"].items() if v}
print(json.dumps(report))
"""


@pytest.mark.slow  # about 5 s on a loaded 2-core machine: it imports the whole package
def test_importing_every_module_opens_and_starts_nothing():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=100
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["modules"] > 80  # every module was imported, not just the package
    assert report["changes"] == {}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_the_descriptor_reserve_is_opened_when_a_server_starts():
    # What the import no longer does: the reserve is held before any shortage can happen.
    script = (
        "import os\n"
        "from nbio_helpers import start_server\n"
        "def reserves():\n"
        "    fds = os.listdir('/proc/self/fd')\n"
        "    return sum(os.path.exists(f'/proc/self/fd/{fd}')\n"
        "               and os.readlink(f'/proc/self/fd/{fd}') == os.devnull for fd in fds)\n"
        "before = reserves()\n"
        "with start_server('select') as server:\n"
        "    print(reserves() - before)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
