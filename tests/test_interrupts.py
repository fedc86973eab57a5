"""Ctrl-C anywhere in start(), __exit__ or stop() leaves no server running.

A KeyboardInterrupt can land between any two bytecodes of the main thread. Three ways to put
it everywhere:

* each step of ``start()`` and ``stop()`` patched to raise KeyboardInterrupt itself (as a
  failing step would), before or after doing its work;
* each step patched to *signal* SIGINT (``signal.raise_signal``): the handler then runs at
  the next bytecode, inside that step;
* a timer thread interrupting the main thread (``_thread.interrupt_main``) at random moments
  of a tight ``with PollingServer(interval=0)`` loop, hundreds of times.

After each, nothing may be left: no registered server, no ``nbio-`` thread, no descriptor.
(``test_kernel_interrupts.py`` does the same to a real Jupyter kernel.)
"""

from __future__ import annotations

import _thread
import contextlib
import os
import random
import signal
import socket
import sys
import threading
import time

import pytest

from nbio_helpers import MODELS, PollingServer, Server, registry, request, running_servers
from nbio_helpers.interrupts import interrupts_deferred
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("nothing_left_running")]

main_thread_only = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signals are delivered to the main thread",
)


def assert_nothing_left(fds_before: int, open_fds, nbio_threads) -> None:
    assert running_servers() == {}
    alive = [t for t in nbio_threads() if t.is_alive()]
    assert alive == [], alive
    # CI saw one descriptor more, once, in a full run with 4 workers on 2 cores, with every
    # nbio thread gone (the cause is not known). So wait for the count to come back, in case
    # another thread of this worker holds one for a moment; a leak stays, and is listed.
    if not wait_until(lambda: open_fds() == fds_before, 2.0):
        assert open_fds() == fds_before, f"still open: {open_fd_targets()}"


def open_fd_targets() -> list[str]:
    """What this process's descriptors point to (Linux), to name a leak."""
    folder = "/proc/self/fd"
    if not os.path.isdir(folder):
        return []
    targets = []
    for fd in sorted(os.listdir(folder), key=int):
        with contextlib.suppress(OSError):
            targets.append(f"{fd} -> {os.readlink(os.path.join(folder, fd))}")
    return targets


def interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def signal_interrupt(*_args, **_kwargs):
    signal.raise_signal(signal.SIGINT)  # the handler runs at the next bytecode


def patched(original, when):
    """``original`` with an interrupt ``"before"`` or ``"after"`` it, or ``"signal"``-led."""

    def step(*args, **kwargs):
        if when == "before":
            raise KeyboardInterrupt
        if when == "signal":
            signal_interrupt()
        result = original(*args, **kwargs)
        if when == "after":
            raise KeyboardInterrupt
        return result

    return step


START_STEPS = {
    "registry.stop_named": (registry, "stop_named"),
    "socket.create_server": (socket, "create_server"),
    "set_buffer_sizes": (Server, "set_buffer_sizes"),
    "socket.socketpair": (socket, "socketpair"),
    "registry.register": (registry, "register"),
    "Thread.start": (threading.Thread, "start"),
}
STOP_STEPS = {
    "_shut_down_all": (Server, "_shut_down_all"),
    "_wake": (Server, "_wake"),
    "on_stop": (Server, "on_stop"),
    "Thread.join": (threading.Thread, "join"),
    "_close_all": (Server, "_close_all"),
    "registry.unregister": (registry, "unregister"),
}


@main_thread_only
@pytest.mark.parametrize("when", ["before", "after", "signal"])
@pytest.mark.parametrize("step", list(START_STEPS))
def test_interrupted_start_leaves_nothing(step, when, monkeypatch, open_fds, nbio_threads):
    with PollingServer(interval=0, name="warm-up"):  # first imports, lazy objects
        pass
    fds_before = open_fds()
    owner, name = START_STEPS[step]
    monkeypatch.setattr(owner, name, patched(getattr(owner, name), when))
    server = PollingServer(interval=0, name="interrupted")
    with pytest.raises(KeyboardInterrupt):
        with server:
            pytest.fail("the with block must not run when start() was interrupted")
    monkeypatch.undo()
    assert not server.running
    assert_nothing_left(fds_before, open_fds, nbio_threads)


@main_thread_only
@pytest.mark.parametrize("when", ["after", "signal"])
@pytest.mark.parametrize("step", list(STOP_STEPS))
@pytest.mark.parametrize("model", list(MODELS))
def test_interrupted_stop_still_stops(model, step, when, monkeypatch, open_fds, nbio_threads):
    with MODELS[model](name="warm-up") as warm:
        request(warm.address, b"x")
    fds_before = open_fds()
    server = MODELS[model](name="interrupted").start()
    assert request(server.address, b"hi") == b"HI"
    owner, name = STOP_STEPS[step]
    if owner is Server:
        owner = type(server)  # the model may override the step
    monkeypatch.setattr(owner, name, patched(getattr(owner, name), when))
    with pytest.raises(KeyboardInterrupt):
        server.stop()
    monkeypatch.undo()
    assert not server.running and server.stopped
    assert_nothing_left(fds_before, open_fds, nbio_threads)
    server.stop()  # and a second stop() is quiet


@main_thread_only
def test_interrupt_during_a_graceful_stop_stops_at_once(open_fds, nbio_threads):
    fds_before = open_fds()
    server = MODELS["threads"](name="graceful").start()
    idle = socket.create_connection(server.address)  # keeps the graceful stop waiting
    wait_until(lambda: server.open_connections() == 1, 5.0)  # ...once its thread serves it
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    try:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            server.stop(grace=30)  # would wait 30 s for the idle client
        # interrupt_main() only sets a flag (as a Windows kernel interrupt does): a single
        # long join() saw it after the whole grace period.
        assert time.monotonic() - started < 15
        timer.join()
        assert server.stopped and server.unfinished == 1
    finally:
        idle.close()
    assert_nothing_left(fds_before, open_fds, nbio_threads)


@pytest.mark.slow
@main_thread_only
@pytest.mark.timeout(300)
def test_random_interrupts_of_a_tight_with_loop(open_fds, nbio_threads):
    """What a learner does: interrupt a cell that starts and stops servers in a loop."""
    rng = random.Random(12)
    with PollingServer(interval=0, name="tight"):
        pass
    fds_before = open_fds()
    left_behind = []
    for trial in range(200):
        timer = threading.Timer(rng.uniform(0, 0.01), _thread.interrupt_main)
        try:
            timer.start()
            while True:  # until the interrupt lands, wherever it lands
                with PollingServer(interval=0, name="tight") as server:
                    _ = server.address
        except KeyboardInterrupt:
            pass
        try:
            timer.join()
        except KeyboardInterrupt:  # it landed before the loop began: no matter
            pass
        if running_servers() or nbio_threads():
            left_behind.append(trial)
            registry.stop_all()
    assert left_behind == [], f"{len(left_behind)} of 200 interrupts left a server running"
    assert_nothing_left(fds_before, open_fds, nbio_threads)


# ------------------------------------------------------------------ interrupts_deferred
@main_thread_only
def test_deferred_interrupt_is_raised_when_the_block_ends():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred() as deferred:
            signal.raise_signal(signal.SIGINT)
            for _ in range(1000):  # bytecodes: the handler has run by now
                pass
            done.append(deferred.pending)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@main_thread_only
def test_nested_deferral_delivers_once_at_the_outer_end():
    order = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred() as outer:
            with interrupts_deferred() as inner:
                signal.raise_signal(signal.SIGINT)
                sum(range(100))
            order.append(("inner ended", inner.pending, outer.pending))
    assert order == [("inner ended", True, True)]


def test_no_deferral_outside_the_main_thread():
    seen = []

    def worker():
        with interrupts_deferred() as deferred:
            seen.append((deferred.pending, signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert seen == [(False, signal.default_int_handler)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIG_IGN for SIGINT: POSIX semantics")
@main_thread_only
def test_an_ignored_signal_stays_ignored(monkeypatch):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_deferred() as deferred:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            sum(range(100))
        assert not deferred.pending
    finally:
        signal.signal(signal.SIGINT, previous)
