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

from nbio_helpers import BlockingServer, ThreadsServer
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
