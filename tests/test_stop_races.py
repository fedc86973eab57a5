"""``stop()`` in the windows where a socket exists but the server had not noted it yet.

Two windows were found (issue 14):

* ``BlockingServer`` noted its client's socket (``_current``) only after ``accept_all()``
  returned it;
* ``ThreadsServer`` registered a client's worker thread (whose socket its stop step shut
  down) only after ``track()`` had returned.

Each test holds the server thread inside its window: a patched seam tells the test that the
thread is there (a ``threading.Event``), then blocks on the new socket, as the model's next
call on it would (a blocking ``recv()`` returns with data, an EOF or a shutdown; here the
client sends nothing). The test then calls ``stop(timeout=1)``: stop() must find that socket
and shut it down, which releases the thread, and return without ``ServerStopTimeout``. No
sleep synchronises anything: the Event says when the thread is in the window, and the only
thing that can release it before the test's cleanup is ``stop()`` itself.
"""

from __future__ import annotations

import select
import socket
import threading

import pytest

from nbio_helpers import BlockingServer, Server, ThreadsServer
from nbio_helpers.connection import accept_all
from nbio_helpers.events import RECV
from nbio_helpers.models import blocking
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]

HOLD = 20.0
"""Longest the seam holds the thread (if nothing releases it, the test's cleanup does)."""


def block_on(sock: socket.socket) -> None:
    """Wait until ``sock`` is readable: data, an EOF, or a shutdown by stop()."""
    select.select([sock], [], [], HOLD)


def stop_in_the_window(server, in_window: threading.Event, names_before: set[str]) -> None:
    """Connect a silent client, wait until the server thread is held in the window, stop."""
    client = socket.create_connection(server.address, timeout=5)
    try:
        assert in_window.wait(10), "the server never reached the window"
        server.stop(timeout=1)  # raised ServerStopTimeout before the fix
        assert server.stopped and not server.running
        left = {t.name for t in threading.enumerate() if t.is_alive()} - names_before
        assert left == set(), f"stop() returned with {left} still running"
        assert server.open_connections() == 0
    finally:
        client.close()  # releases a thread still held (before the fix)
        assert wait_until(lambda: not server.running, 10)


def test_blocking_stop_between_accept_and_noting_the_socket(monkeypatch):
    in_window = threading.Event()
    real_accept_all = blocking.accept_all

    def accept_then_hold(server, *args, **kwargs):
        accepted = real_accept_all(server, *args, **kwargs)
        for sock in accepted:  # accept() has returned; the model has not seen the socket yet
            in_window.set()
            block_on(sock)
        return accepted

    monkeypatch.setattr(blocking, "accept_all", accept_then_hold)
    names_before = {t.name for t in threading.enumerate()}
    server = BlockingServer(name="race-blocking").start()
    stop_in_the_window(server, in_window, names_before)


def test_threads_stop_between_track_and_the_worker(monkeypatch):
    in_window = threading.Event()
    names_before = {t.name for t in threading.enumerate()}
    server = ThreadsServer(name="race-threads")
    real_track = server.track

    def track_then_hold(sock, *args, **kwargs):
        cid = real_track(sock, *args, **kwargs)
        if not in_window.is_set():  # the first client, once: track() has returned
            in_window.set()
            block_on(sock)
        return cid

    monkeypatch.setattr(server, "track", track_then_hold)
    server.start()
    stop_in_the_window(server, in_window, names_before)


# ------------------------------------------------------------------ the rule, step by step
class Sleeper(Server):
    """A loop that only sleeps, and records what the stop rule's steps see from inside."""

    model = "sleeper"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_sleep: bool | None = None
        self.looping = threading.Event()  # set once the loop has begun
        self.rounds = 0
        self.during_stop: dict[str, object] = {}
        self.on_stop_calls = 0

    def serve(self) -> None:
        self.first_sleep = self.sleep(0)
        self.looping.set()
        while not self.sleep(30):  # only stop() can end this loop in time
            self.rounds += 1

    def on_stop(self) -> None:
        self.on_stop_calls += 1
        self.listener.setblocking(False)  # accept_all() below must not wait
        a, b = socket.socketpair()
        with a, b:
            self.during_stop["own"] = self.own(a)
            self.during_stop["shut down"] = a.fileno() != -1 and a.recv(1) == b""
        worker = threading.Thread(target=lambda: None)
        self.during_stop["start_thread"] = self.start_thread(worker)
        self.during_stop["accepted"] = accept_all(self, make=lambda sock, server: sock)


def test_sleep_is_cut_short_by_stop():
    server = Sleeper(name="sleeper").start()
    assert server.looping.wait(10)
    server.stop(timeout=5)  # a 30 s sleep would make this raise ServerStopTimeout
    assert server.first_sleep is False  # sleep(0) while running: the time passed
    assert server.rounds == 0


def test_once_stop_began_nothing_new_is_owned_started_or_accepted():
    server = Sleeper(name="sleeper").start()
    client = socket.create_connection(server.address, timeout=5)  # waits in the backlog
    with client:
        server.stop(timeout=5)
        assert server.during_stop == {
            "own": False,  # owned, but shut down at once
            "shut down": True,  # recv() returns b'' at once; the descriptor stays valid
            "start_thread": False,  # not started
            "accepted": [],  # accepted and closed at once
        }
        assert client.recv(1) == b""  # closed by accept_all (or with the listener)
    late, peer = socket.socketpair()
    with late, peer:
        assert server.own(late) is False and late.fileno() == -1  # after stop(): closed


def test_concurrent_stops_run_the_rule_once():
    server = Sleeper(name="sleeper").start()
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def stop() -> None:
        barrier.wait(5)
        try:
            server.stop(timeout=5)
        except BaseException as exc:
            errors.append(exc)

    stoppers = [threading.Thread(target=stop) for _ in range(2)]
    for t in stoppers:
        t.start()
    barrier.wait(5)
    for t in stoppers:
        t.join(10)
    assert errors == [] and server.stopped and server.on_stop_calls == 1


def test_a_stop_during_the_blocking_delay_is_at_once():
    server = BlockingServer(delay=30, name="slow").start()
    with socket.create_connection(server.address, timeout=5) as client:
        client.sendall(b"x")
        assert wait_until(lambda: server.events.count(RECV) == 1, 5)
        server.stop(timeout=5)  # the 30 s sleep is cut short
        try:
            assert client.recv(1) == b""  # no reply: the socket was shut down first
        except ConnectionResetError:
            pass


def test_a_graceful_stop_during_the_blocking_delay_sends_the_reply():
    server = BlockingServer(delay=30, name="slow").start()
    with socket.create_connection(server.address, timeout=5) as client:
        client.sendall(b"x")
        client.shutdown(socket.SHUT_WR)  # our EOF: the polite close need not wait for it
        assert wait_until(lambda: server.events.count(RECV) == 1, 5)
        server.stop(grace=20)  # the sleep ends; the reply to what was read goes out
        assert client.recv(1) == b"X"
        assert client.recv(1) == b""  # then the server's EOF
    assert server.unfinished == 0
