"""What the ``tasks`` model adds to the common conformance suite (tests/test_models.py)."""
from __future__ import annotations

import itertools
import socket

import pytest

from nbio_helpers import connect, recv_exactly, start_server
from nbio_helpers.events import RECV
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]


def test_tasks_take_turns_when_data_keeps_coming():
    """Each read is a scheduling point: with data waiting for two clients, their tasks
    alternate instead of one reading all of its client's bytes first (starving the other)."""
    with start_server("tasks", recv_size=1, name="fair") as server:
        a, b = connect(server.address), connect(server.address)
        with a, b:
            assert wait_until(lambda: server.events.count("accept") == 2, 5)
            b.sendall(b"b" * 200)
            a.sendall(b"a" * 200)
            assert recv_exactly(a, 200) == b"A" * 200
            assert recv_exactly(b, 200) == b"B" * 200
        reads = [e.conn for e in server.events.events(RECV)]
        both = max(reads.index(1), reads.index(2))     # from when both had data waiting
        longest = max(len(list(run)) for _, run in itertools.groupby(reads[both:]))
        assert longest <= 3, f"one task read {longest} times in a row"


def test_loop_leaves_no_task_or_registration_behind():
    server = start_server("tasks", name="clean")
    for _ in range(20):
        with connect(server.address) as sock:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"X"
    assert wait_until(lambda: len(server.loop.tasks) == 1, 5)   # only the accepting task
    registered = {key.fileobj for key in server.loop.selector.get_map().values()}
    assert registered == {server.listener, server.waker}
    server.stop()


def test_idle_connections_use_no_timer_and_one_registration_each():
    with start_server("tasks", name="idle") as server:
        socks = [socket.create_connection(server.address, timeout=5) for _ in range(50)]
        try:
            assert wait_until(lambda: len(server.loop.selector.get_map()) == 52, 5)
            assert server.loop.timers == []
            assert server.loop.timeout() is None         # nothing due: select() may sleep
        finally:
            for sock in socks:
                sock.close()
