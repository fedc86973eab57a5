"""What the ``tasks`` model adds to the common conformance suite (tests/test_models.py)."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from nbio_helpers import connect, recv_exactly, start_server
from nbio_helpers.events import RECV
from nbio_helpers.models.tasks_model import TasksServer
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]


class HeldUpServer(TasksServer):
    """The tasks model, whose first connection's task blocks the loop for 0.3 s."""

    async def echo(self, stream):
        if stream.id == 1:
            time.sleep(0.3)
        await super().echo(stream)


def test_tasks_take_turns_when_data_keeps_coming():
    """Each read is a scheduling point: with data waiting for two clients, their tasks
    alternate instead of one reading all of its client's bytes first (starving the other).

    The loop is held up while both clients connect and send, so that both have all their
    bytes waiting when it goes on."""
    with HeldUpServer(recv_size=1, name="fair") as server, connect(server.address):
        assert wait_until(lambda: server.events.count("accept") == 1, 5)
        time.sleep(0.05)  # the loop is inside time.sleep() now
        a, b = connect(server.address), connect(server.address)
        with a, b:
            a.sendall(b"a" * 200)
            b.sendall(b"b" * 200)
            assert recv_exactly(a, 200) == b"A" * 200
            assert recv_exactly(b, 200) == b"B" * 200
        reads = [e.conn for e in server.events.events(RECV)]
        last = min(len(reads) - 1 - reads[::-1].index(c) for c in (2, 3))
        longest = max(len(list(run)) for _, run in itertools.groupby(reads[: last + 1]))
        assert longest <= 3, f"one task read {longest} times in a row"
        assert last > 300, reads  # both had data waiting until late


def test_loop_leaves_no_task_or_registration_behind():
    server = start_server("tasks", name="clean")
    assert wait_until(lambda: server.loop is not None, 5)
    for _ in range(20):
        with connect(server.address) as sock:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"X"
    assert wait_until(lambda: len(server.loop.tasks) == 1, 5)  # only the accepting task
    registered = {key.fileobj for key in server.loop.selector.get_map().values()}
    assert registered == {server.listener, server.waker}
    server.stop()


def test_idle_connections_use_no_timer_and_one_registration_each():
    with start_server("tasks", name="idle") as server:
        socks = [socket.create_connection(server.address, timeout=5) for _ in range(50)]
        try:
            assert wait_until(
                lambda: server.loop is not None and len(server.loop.selector.get_map()) == 52, 5
            )
            assert server.loop.timers == []
            assert server.loop.timeout() is None  # nothing due: select() may sleep
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tasks", "callbacks", "generators", "timers", "coroutines"])
def test_an_idle_loop_sleeps(which):
    """Silent clients connected: the loop does not wake up at all, and uses no CPU."""
    from nbio_helpers.cpu import cpu_share
    from nbio_helpers.events import WAKEUP
    from nbio_helpers.loop import start_chat
    from nbio_helpers.measure import idle_clients

    server = (
        start_server("tasks", name="idle")
        if which == "tasks"
        else start_chat(
            which,
            name="idle",
            **({"idle_timeout": 60} if which in ("timers", "coroutines") else {}),
        )
    )
    with server, idle_clients(server, 20):
        assert wait_until(
            lambda: server.events.count("send") >= (0 if which == "tasks" else 20), 5
        )  # the chat greeted all of them
        time.sleep(0.05)
        wakeups = server.events.count(WAKEUP)
        share = cpu_share(server.cpu, 0.3)
        assert server.events.count(WAKEUP) == wakeups  # not one select() returned
        assert share < 0.05
