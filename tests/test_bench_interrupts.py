"""Ctrl-C during ``bench`` (or notebook 05's comparison): one line, exit 130, nothing left.

In-process, the load process (``LoadProcess``) is interrupted at each step of its start and
its stop: no child process and no descriptor may be left. As a command, ``bench`` gets a
SIGINT at several moments of a short run, its load process's start and stop included.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from nbio_helpers.bench import worker
from nbio_helpers.bench.worker import LoadProcess, LoadProcessError

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def raise_sigint(*_args, **_kwargs):
    signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("step", ["Popen", "Thread.start", "started"])
def test_interrupted_start_leaves_no_process(step, monkeypatch, open_fds):
    with LoadProcess() as load:  # warm up: imports, lazy objects
        load.call("ping", timeout=30)
    fds, kids = open_fds(), children()
    if step == "Popen":
        real = subprocess.Popen

        class Popen(real):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                raise_sigint()  # the child exists: it must be ended

        monkeypatch.setattr(worker.subprocess, "Popen", Popen)
    elif step == "Thread.start":
        real_start = threading.Thread.start
        monkeypatch.setattr(
            threading.Thread, "start", lambda self: (real_start(self), raise_sigint())
        )
    with pytest.raises(KeyboardInterrupt):
        if step == "started":
            with LoadProcess() as load:
                raise_sigint()
                load.call("ping", timeout=30)  # interrupted while it waits
        else:
            LoadProcess()
    monkeypatch.undo()
    assert children() == kids
    assert open_fds() == fds


def test_interrupted_close_still_ends_the_process(monkeypatch, open_fds):
    fds, kids = open_fds(), children()
    load = LoadProcess()
    load.call("ping", timeout=30)
    real_wait = subprocess.Popen.wait
    monkeypatch.setattr(
        subprocess.Popen,
        "wait",
        lambda self, *a, **k: (raise_sigint(), real_wait(self, *a, **k))[1],
    )
    with pytest.raises(KeyboardInterrupt):
        load.close()
    monkeypatch.undo()
    assert load.proc.returncode is not None
    assert children() == kids and open_fds() == fds


def test_a_dead_load_process_is_a_clear_error(open_fds):
    fds = open_fds()
    with LoadProcess() as load:
        load.proc.kill()
        load.proc.wait()
        assert load.reply(timeout=10) == {"error": "the load process ended"}
        with pytest.raises(LoadProcessError, match="the load process is gone"):
            for _ in range(100):  # the first writes may still be buffered
                load.send("ping")
    assert open_fds() == fds


def test_ctrl_c_in_the_terminal_does_not_reach_the_load_process():
    with LoadProcess() as load:
        assert load.call("ping", timeout=30)["pong"]
        child = psutil.Process(load.proc.pid)
        assert child.pid != psutil.Process().pid
        assert load.proc.pid == __import__("os").getpgid(load.proc.pid)  # its own group
        load.proc.send_signal(signal.SIGINT)  # even sent to it, it is ignored
        assert load.call("ping", timeout=30)["pong"]


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.0, 0.3, 0.6, 1.0, 1.5, 2.2])
def test_bench_interrupted_at_any_moment(after):
    # ``after`` counts from the bench's first progress line: before it, the interpreter may
    # still be importing the package, and a Ctrl-C there ends any Python program with
    # KeyboardInterrupt's traceback (seen on a loaded machine at 0.3 s from the start).
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbio_helpers", "bench", "--quick", "--servers", "select,threads"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_line = proc.stderr.readline()
    assert first_line.startswith("[ 1/"), first_line
    seen: set[int] = set()
    deadline = time.monotonic() + after
    while time.monotonic() < deadline and proc.poll() is None:  # note its children
        try:
            seen |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _out, rest = proc.communicate(timeout=60)
    err = first_line + rest
    if proc.returncode == 0:
        pytest.skip(f"the run ended before {after} s")
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "bench: interrupted" or err.endswith(
        "python -m nbio_helpers bench: interrupted\n"
    ), err
    assert "Traceback" not in err and "Error" not in err, err
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in seen
    ), "a load process was left running"
