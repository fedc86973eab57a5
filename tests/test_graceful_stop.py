"""``stop(grace=...)``: no new client, no more reading, every reply to what was read sent.

50 clients stream as fast as they can; while they do, the server is stopped gracefully. Each
client checks every byte of its echo, stops sending at the server's EOF, and then closes.
Every byte the server read (``RECV`` in its event log) must have come back to a client, and
every connection must end with the server's EOF, not a reset.
"""

from __future__ import annotations

import linecache
import socket
import sys
import threading
import time

import pytest
from streaming import StreamingClients

from nbio_helpers import MODELS, request, start_server
from nbio_helpers.events import RECV
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("nothing_left_running")]


@pytest.mark.parametrize("model", list(MODELS))
def test_graceful_stop_sends_back_every_byte_read(model):
    server = start_server(model, name=f"graceful-{model}")
    clients = StreamingClients(server.address, 50)
    try:
        # Under load: a few MB echoed, and every client served (but the blocking model's one).
        assert wait_until(lambda: server.events.total_bytes(RECV) > 4_000_000, 30)
        if model != "blocking":
            assert wait_until(lambda: all(clients.received), 30)
        started = time.monotonic()
        server.stop(grace=10)
        took = time.monotonic() - started
    finally:
        clients.join(15)
    read = server.events.total_bytes(RECV)
    assert sum(clients.received) == read, (sum(clients.received), read)
    assert all(clients.correct)
    served = [end for end, got in zip(clients.ends, clients.received) if got]
    assert served and all(end == "eof" for end in served), clients.ends
    if model != "blocking":  # it serves one client; the others wait unread
        assert len(served) == 50
    assert server.unfinished == 0
    assert took < 10


@pytest.mark.parametrize("model", list(MODELS))
def test_graceful_stop_without_clients_is_quick(model):
    server = start_server(model, name=f"quick-{model}")
    assert request(server.address, b"x") == b"X"
    started = time.monotonic()
    server.stop(grace=30)
    assert time.monotonic() - started < 10  # it did not wait for the grace period to end
    assert server.stopped and server.unfinished == 0


def waiting_in_recv(server) -> bool:
    """Whether the client thread of ``server`` (the threads model) waits in ``recv()``, past
    its check of ``stopping``: the line its frame is at calls ``recv``."""
    frames = sys._current_frames()
    for thread in threading.enumerate():
        if thread.name.startswith(f"nbio-{server.name}-client-") and thread.ident in frames:
            frame = frames[thread.ident]
            return ".recv(" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    return False


@pytest.mark.alone  # times a 0.3 s grace period
def test_the_grace_period_bounds_the_stop():
    """An idle client of the threads model keeps its thread in recv(): the grace period ends,
    the connection is closed at once, and counted as unfinished."""
    server = start_server("threads", name="bounded")
    with socket.create_connection(server.address, timeout=5) as idle:
        idle.sendall(b"a")
        assert idle.recv(1) == b"A"
        # The reply can arrive before its thread is back in recv(): a stop asked for then
        # is seen by the thread's loop, which ends the idle connection itself, in time (it
        # failed so, with unfinished == 0, on a loaded machine).
        assert wait_until(lambda: waiting_in_recv(server), timeout=5)
        started = time.monotonic()
        server.stop(grace=0.3)
        took = time.monotonic() - started
        assert 0.25 < took < 3
        assert server.unfinished == 1
        idle.settimeout(5)
        try:
            assert idle.recv(1) == b""
        except ConnectionResetError:
            pass


def test_the_fast_stop_stays_fast(model):
    server = start_server(model, name=f"fast-{model}")
    clients = StreamingClients(server.address, 10)
    try:
        assert wait_until(lambda: server.events.total_bytes(RECV) > 100_000, 30)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5  # nothing is waited for
    finally:
        clients.join(10)
