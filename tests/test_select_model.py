"""SelectServer on Windows, simulated on any OS: a burst of accepts must not overfill rlist.

Windows' ``select()`` takes at most 512 sockets per list and raises ``ValueError: too many
file descriptors in select()`` beyond that, which would end the loop. ``fits_in_select``
refuses a connection that would not fit; each connection of a burst of accepts must be
checked against the connections admitted so far, those of the same burst included.

The simulation: ``sys.platform`` reads ``"win32"`` in the model's module, the limit is
lowered to 20 sockets, and ``select()`` raises Windows' ValueError beyond it. A gate holds the
loop just before a ``select()`` while a burst of clients queues on the listener, so that one
``accept_all()`` takes them all at once.
"""

import select
import threading
import types

import pytest

from nbio_helpers.clients import connect, recv_exactly
from nbio_helpers.lessons import nb04 as select_demos
from nbio_helpers.models import select_model
from nbio_helpers.server import wait_until

LIMIT = 20
pytestmark = pytest.mark.timeout(30)


class WindowsSelect:
    """A ``select`` module whose ``select()`` behaves as Windows' does with ``LIMIT`` sockets
    per list, and can be held at a gate before it waits."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.at_gate = threading.Event()
        self.largest = 0

    def select(self, rlist, wlist, xlist, *timeout):
        if not self.gate.is_set():
            self.at_gate.set()
            self.gate.wait(10)
        self.largest = max(self.largest, len(rlist), len(wlist))
        if max(len(rlist), len(wlist), len(xlist)) > LIMIT:
            raise ValueError("too many file descriptors in select()")
        return select.select(rlist, wlist, xlist, *timeout)


@pytest.fixture
def windows(monkeypatch):
    fake = WindowsSelect()
    windows_sys = types.SimpleNamespace(platform="win32")
    monkeypatch.setattr(select_model, "sys", windows_sys)
    monkeypatch.setattr(select_model, "WINDOWS_SELECT_LIMIT", LIMIT)
    monkeypatch.setattr(select_model, "select", types.SimpleNamespace(select=fake.select))
    monkeypatch.setattr(select_demos, "select", types.SimpleNamespace(select=fake.select))
    return fake


def echoes(sock, data=b"hi") -> bool:
    try:
        sock.sendall(data)
        return recv_exactly(sock, len(data), 3.0) == data.upper()
    except (ConnectionError, TimeoutError, OSError):
        return False


@pytest.mark.parametrize(
    "server_class", [select_model.SelectServer, select_demos.HeartbeatSelectServer]
)
def test_a_burst_is_admitted_one_connection_at_a_time(windows, server_class):
    server = server_class(name=f"burst-{server_class.__name__}").start()
    clients = []
    try:
        for _ in range(10):
            clients.append(connect(server.address, 3.0))
            assert echoes(clients[-1])
        windows.gate.clear()  # the next select() waits at the gate
        clients.append(connect(server.address, 3.0))
        assert windows.at_gate.wait(5)  # accepted it: 11 connections, then the gate
        burst = [connect(server.address, 3.0) for _ in range(20)]  # queued on the listener
        windows.gate.set()
        room = LIMIT - 2 - 11  # rlist: listener + waker + connections
        assert wait_until(lambda: sum(server.refusals().values()) >= 20 - room, 5)
        assert server.running and server.error is None, server.error
        assert windows.largest <= LIMIT
        assert sum(server.refusals().values()) == 20 - room
        assert server.refusals() == {
            f"select() takes {LIMIT} sockets at most on Windows": 20 - room
        }
        assert sum(echoes(sock) for sock in burst) == room  # the first ones of the burst
        assert all(echoes(sock) for sock in clients)  # the others carry on
    finally:
        for sock in clients + locals().get("burst", []):
            sock.close()
        windows.gate.set()
        server.stop()


def test_fits_in_select_on_posix_looks_at_the_descriptor_number():
    class Conn:
        def __init__(self, fd):
            self.fd, self.reason = fd, None

        def fileno(self):
            return self.fd

        def close(self, reason):
            self.reason = reason

    server = select_model.SelectServer(name="fits")  # never started: no socket needed
    low, high = Conn(1023), Conn(1024)
    if select_model.sys.platform == "win32":
        pytest.skip("POSIX rule")
    assert server.fits_in_select(low, []) and low.reason is None
    assert not server.fits_in_select(high, [])
    assert high.reason == "descriptor 1024 is beyond select()'s FD_SETSIZE limit"
    assert server.refusals() == {"descriptor beyond select()'s FD_SETSIZE (1024)": 1}
