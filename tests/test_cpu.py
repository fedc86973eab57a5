"""nbio_helpers.cpu: a thread's CPU time on Linux, macOS and Windows, never NaN.

macOS is simulated on Linux: ``time.pthread_getcpuclockid`` is taken away and psutil numbers
the threads 1..n, as it does on macOS, so the threads report their own CPU time. Windows is
simulated too: no thread clock, but psutil's ids are the native ids. Each simulated figure is
compared with the Linux thread clock, read at the same moment for the same threads.

Tolerance: a self-reporting thread reports on every loop turn, so its figure lags the clock
by the CPU time of at most one turn (a blocked thread uses none, so its report stays right).
One turn of these loops takes well under a millisecond of CPU, but a turn may include a full
garbage collection, which here (pytest's heap plus an event log of 200,000 events) takes up
to ~100 ms, and another thread can read the figure while it runs (finalizers run Python code,
and the GIL changes hands). So two readings, each off by at most one turn, are within
``TOLERANCE`` (10 ms of CPU) plus the longest garbage collection measured during the test:
each reading must lie between the clock's readings just before and just after it, less that.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import sys
import threading
import time
from collections import namedtuple

import psutil
import pytest

from nbio_helpers import cpu as cpu_module
from nbio_helpers.clients import run_load
from nbio_helpers.cpu import PSUTIL, SELF_REPORTED, THREAD_CLOCK, ThreadCPU, cpu_share

pytestmark = [
    pytest.mark.alone,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not hasattr(time, "pthread_getcpuclockid"), reason="compares with the thread clock (Linux)"
    ),
]

TOLERANCE = 0.010
"""Seconds of CPU by which a simulated reading may differ from the thread clock's."""

PSUTIL_RESOLUTION = 2 / os.sysconf("SC_CLK_TCK")
"""psutil reads /proc on Linux: user and system time in clock ticks (10 ms), each truncated."""

WINDOW = 0.5
"""Seconds of wall time each share is measured over."""

REAL_CLOCK_ID = getattr(time, "pthread_getcpuclockid", None)
REAL_PROCESS = psutil.Process
FakeThread = namedtuple("FakeThread", "id user_time system_time")


def clock_total(cpu: ThreadCPU) -> float:
    """What the thread-clock method reads for ``cpu``'s threads right now (the reference)."""
    return cpu.total(clock=lambda ident: time.clock_gettime(REAL_CLOCK_ID(ident)))


class MacPsutilProcess:
    """psutil.Process as on macOS: the real times, but the threads numbered 1..n."""

    def __init__(self, *args):
        self._real = REAL_PROCESS(*args)

    def threads(self):
        return [
            FakeThread(i, t.user_time, t.system_time)
            for i, t in enumerate(self._real.threads(), start=1)
        ]


@pytest.fixture
def ids_found_out_again():
    """psutil's ids are checked again here, and again after the test (it may replace
    ``psutil.Process``)."""
    cpu_module.psutil_knows_native_ids.cache_clear()
    yield
    cpu_module.psutil_knows_native_ids.cache_clear()


@pytest.fixture
def simulated_macos(monkeypatch, ids_found_out_again):
    monkeypatch.delattr(time, "pthread_getcpuclockid")
    monkeypatch.setattr(psutil, "Process", MacPsutilProcess)


@pytest.fixture
def simulated_windows(monkeypatch, ids_found_out_again):
    monkeypatch.delattr(time, "pthread_getcpuclockid")  # Linux psutil: the real ids


@pytest.fixture
def longest_gc():
    """``longest_gc()`` -> CPU seconds of the longest garbage collection (any thread) since
    the fixture began, counting one still running (the GIL can change hands in the gc
    callbacks, before they note the end)."""
    started, longest = {}, [0.0]

    def timing(phase, info):
        now, me = time.thread_time(), threading.get_ident()
        if phase == "start":
            started[me] = now
        elif me in started:
            longest[0] = max(longest[0], now - started.pop(me))

    def current():
        running = [
            time.clock_gettime(REAL_CLOCK_ID(ident)) - start
            for ident, start in list(started.items())
        ]
        return max([longest[0], *running])

    gc.callbacks.insert(0, timing)
    yield current
    gc.callbacks.remove(timing)


def reading(cpu: ThreadCPU):
    """``(by cpu's own method, thread clock just before, just after, live threads)``.

    The GIL is kept for the three reads (a long switch interval), so that no other thread
    runs between them; only a read that waits for the OS (psutil reads /proc) may let one.
    """
    old = sys.getswitchinterval()
    sys.setswitchinterval(5.0)
    try:
        before = clock_total(cpu)
        threads = cpu.live_threads
        value = cpu.total()
        after = clock_total(cpu)
    finally:
        sys.setswitchinterval(old)
    return value, before, after, threads


def check_agreement(cpu: ThreadCPU, longest_gc, seconds: float = WINDOW):
    """Read at both ends of a window; each reading lies between the clock's readings around
    it, less at most the allowed lag. Returns (share by cpu's method, share by the clock)."""
    v0, b0, a0, n0 = reading(cpu)
    t0 = time.perf_counter()
    time.sleep(seconds)
    v1, b1, a1, n1 = reading(cpu)
    t1 = time.perf_counter()
    for value, before, after, threads in ((v0, b0, a0, n0), (v1, b1, a1, n1)):
        lag = (
            TOLERANCE + longest_gc()
            if cpu.method == SELF_REPORTED
            else PSUTIL_RESOLUTION * threads
            if cpu.method == PSUTIL
            else 0.0
        )
        assert not math.isnan(value)
        assert before - lag <= value <= after, (value, before, after, lag)
    return (v1 - v0) / (t1 - t0), (a1 - b0) / (t1 - t0)


def idle_clients(address, n):
    return [socket.create_connection(address, timeout=5) for _ in range(n)]


def test_linux_reads_the_thread_clock():
    assert ThreadCPU().method == THREAD_CLOCK


def test_the_simulations_pick_their_methods(simulated_macos):
    assert not hasattr(time, "pthread_getcpuclockid")
    assert ThreadCPU().method == SELF_REPORTED and ThreadCPU().needs_samples


def test_windows_simulation_uses_psutil(simulated_windows):
    assert ThreadCPU().method == PSUTIL and not ThreadCPU().needs_samples


@pytest.mark.slow
@pytest.mark.parametrize("simulation", ["simulated_macos", "simulated_windows"])
def test_a_busy_polling_loop_agrees_with_the_clock(request, simulation, make_server, longest_gc):
    request.getfixturevalue(simulation)
    server = make_server("polling", interval=0)
    clients = idle_clients(server.address, 3)
    try:
        share, _reference = check_agreement(server.cpu, longest_gc)
    finally:
        for c in clients:
            c.close()
    assert share > 0.1  # it burns CPU (> 0.8 of a core on a quiet machine)


@pytest.mark.slow
@pytest.mark.parametrize("simulation", ["simulated_macos", "simulated_windows"])
def test_an_idle_select_loop_agrees_with_the_clock(request, simulation, make_server, longest_gc):
    request.getfixturevalue(simulation)
    server = make_server("select")
    clients = idle_clients(server.address, 10)
    try:
        assert run_load(server.address, clients=5, messages=20).ok  # some work first
        share, _reference = check_agreement(server.cpu, longest_gc)
    finally:
        for c in clients:
            c.close()
    assert share < 0.05  # blocked in select(): ~0, and its last report is right


@pytest.mark.slow
@pytest.mark.parametrize("simulation", ["simulated_macos", "simulated_windows"])
def test_the_threads_model_agrees_with_the_clock_under_load(
    request, simulation, make_server, longest_gc
):
    request.getfixturevalue(simulation)
    server = make_server("threads")
    done = threading.Event()
    results = []

    def load():
        while not done.is_set():
            results.append(run_load(server.address, clients=20, messages=50).ok)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(0.2)
        share, reference = check_agreement(server.cpu, longest_gc)
    finally:
        done.set()
        loader.join(30)
    assert all(results) and results
    assert share > 0, (share, reference)


def test_the_threads_model_total_after_stop_is_the_clock_total(simulated_macos, make_server):
    server = make_server("threads")
    assert run_load(server.address, clients=20, messages=20).ok
    before_stop = clock_total(server.cpu)
    server.stop()
    assert server.cpu.total() >= before_stop - TOLERANCE
    assert server.cpu.live_threads == 0  # every worker and the loop reported at exit


def test_a_thread_that_never_samples_is_counted_at_exit(simulated_macos):
    cpu = ThreadCPU()
    ready, finish = threading.Event(), threading.Event()
    used = []

    def work():
        cpu.enter()
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:
            pass
        ready.set()
        finish.wait(5)
        used.append(time.thread_time())
        cpu.exit()

    worker = threading.Thread(target=work)
    worker.start()
    ready.wait(5)
    assert cpu.total() < 0.05  # nothing reported yet: the figure lags, never NaN
    cpu_seen_by_clock = clock_total(cpu)
    assert cpu_seen_by_clock >= 0.05
    finish.set()
    worker.join(5)
    assert cpu.total() == pytest.approx(used[0], abs=1e-3)  # exit() reads it once more


def test_total_is_never_nan_when_psutil_does_not_list_a_thread(simulated_windows, monkeypatch):
    class ListsNoThread:
        def __init__(self, *args):
            pass

        def threads(self):
            return []

    cpu = ThreadCPU()
    cpu.enter()
    try:
        monkeypatch.setattr(psutil, "Process", ListsNoThread)
        assert cpu.total() >= 0 and not math.isnan(cpu.total())
    finally:
        cpu.exit()


def test_sample_is_a_no_op_for_threads_not_entered(simulated_macos):
    cpu = ThreadCPU()
    cpu.sample()
    assert cpu.total() == 0.0


def test_psutil_is_read_once_per_total(simulated_windows, monkeypatch):
    """With 100 threads the psutil method made 100 Process.threads() calls per total()."""
    calls = []

    class Counting(REAL_PROCESS):
        def threads(self):
            calls.append(1)
            return super().threads()

    cpu = ThreadCPU()  # its method is found out first (one Process.threads() call, not counted)
    monkeypatch.setattr(psutil, "Process", Counting)
    release = threading.Event()
    entered = threading.Barrier(51)

    def park():
        cpu.enter()
        entered.wait(5)
        release.wait(5)
        cpu.exit()

    threads = [threading.Thread(target=park) for _ in range(50)]
    for t in threads:
        t.start()
    try:
        entered.wait(5)
        assert cpu.total() >= 0
        assert len(calls) == 1
    finally:
        release.set()
        for t in threads:
            t.join(5)


def test_cpu_share_of_an_idle_thread_set_is_zero():
    assert cpu_share(ThreadCPU(), 0.01) == 0.0
