"""Out of descriptors: nbio_helpers.limits, and accept_all() turning clients away (no spin).

When ``accept()`` fails with EMFILE the client stays in the backlog, the listener stays
readable, and a select/selectors loop would wake up again at once, forever. The end-to-end
test provokes that in a subprocess (its soft RLIMIT_NOFILE lowered, every descriptor taken)
and counts the loop's WAKEUP events; then it frees the descriptors and checks the server
serves new clients again.
"""

from __future__ import annotations

import collections
import errno
import json
import socket
import subprocess
import sys
import types

import pytest

from nbio_helpers.connection import accept_all
from nbio_helpers.events import ERROR, EventLog
from nbio_helpers.limits import (
    DescriptorReserve,
    descriptor_reserve,
    fd_limit,
    fd_limit_raised,
    raise_fd_limit,
)

pytestmark = pytest.mark.timeout(60)

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")


# ------------------------------------------------------------------------------ limits
def test_raise_fd_limit_returns_the_limit_in_force():
    soft = fd_limit()
    assert raise_fd_limit(1) == soft  # never lowers
    if soft is not None:
        assert raise_fd_limit(soft) == soft


@posix_only
def test_fd_limit_raised_restores_the_previous_limit():
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft < 1000:
        pytest.skip("the soft limit is unlimited, or too low to lower it safely")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 10, hard))  # room to raise it
    try:
        with fd_limit_raised(soft) as limit:
            assert limit == fd_limit() == soft
        assert fd_limit() == soft - 10
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@posix_only
def test_the_reserve_turns_one_waiting_client_away_and_is_reopened(open_fds):
    before = open_fds()
    reserve = DescriptorReserve()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            assert reserve.turn_away(listener)
            try:
                assert client.recv(1) == b""  # the server closed it at once
            except ConnectionResetError:
                pass
        listener.setblocking(False)
        assert not reserve.turn_away(listener)  # nobody waiting
        assert reserve.held
    reserve.close()
    assert not reserve.held
    assert open_fds() == before


# ------------------------------------------------------------- accept_all, no socket
class FakeListener:
    """``accept()`` raises or returns each of ``outcomes`` in turn, then BlockingIOError."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)

    def accept(self):
        outcome = self.outcomes.pop(0) if self.outcomes else BlockingIOError()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome, ("127.0.0.1", 1)


def fake_server(*outcomes):
    refused = collections.Counter()
    return types.SimpleNamespace(
        listener=FakeListener(*outcomes),
        events=EventLog(),
        refused=refused,
        count_refusal=lambda why: refused.update([why]),
        own=lambda sock: True,  # a running server: it owns what it accepts
        forget=lambda sock: None,
    )


@posix_only
def test_accept_all_turns_a_client_away_when_out_of_descriptors():
    if not descriptor_reserve().held:
        pytest.skip("the process-wide reserve descriptor is not open")
    turned_away, peer = socket.socketpair()
    with peer:
        server = fake_server(OSError(errno.EMFILE, "Too many open files"), turned_away)
        assert accept_all(server) == []
        assert turned_away.fileno() == -1  # accepted on the reserve, closed at once
        assert server.listener.outcomes == []  # ... then accept() said nobody waits
        [event] = server.events.events(ERROR)
        assert event.detail == "out of descriptors (EMFILE): a waiting client was turned away"
        assert server.refused == {f"out of descriptors (ulimit -n {fd_limit()})": 1}
    assert descriptor_reserve().held


def test_accept_all_leaves_other_errors_to_the_next_round():
    server = fake_server(OSError(errno.ECONNABORTED, "Software caused connection abort"))
    assert accept_all(server) == []
    assert server.events.count(ERROR) == 0


# ------------------------------------------------------- end to end, in a subprocess
SCRIPT = r"""
import json, os, resource, socket, sys, time
from nbio_helpers import connect, recv_exactly, request, start_server
from nbio_helpers.events import ACCEPT, CLOSE, ERROR, WAKEUP
from nbio_helpers.limits import descriptor_reserve
from nbio_helpers.server import wait_until

model = sys.argv[1]
report = {"rounds": []}
with start_server(model, name="emfile") as server:
    witness = connect(server.address, timeout=5)        # connected before the shortage
    assert request(server.address, b"warm up") == b"WARM UP"
    # Lower the soft limit just above the descriptors in use (numbers are allocated lowest
    # first, and the limit caps the numbers), so that filling it takes a few opens only.
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = probe + 32
    for _ in range(2):                                  # twice: the reserve comes back
        client = socket.socket()                        # before the shortage: it needs an fd
        client.settimeout(5)
        # Every connection but the witness closed by the server (it closes them after the
        # reply, in its own thread): a descriptor freed later would end the shortage.
        wait_until(lambda: server.events.count(ACCEPT) == server.events.count(CLOSE) + 1, 5)
        # Take every descriptor number below the limit first, then lower the limit. (Filling
        # up to a lowered limit would race the server: on Linux, accept() fails with EMFILE
        # even when nobody is waiting, so the server would free and retake its reserve while
        # this thread grabs descriptors.)
        fillers = []
        while (fd := os.open(os.devnull, os.O_RDONLY)) < limit:
            fillers.append(fd)
        os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        errors_before = server.events.count(ERROR)
        client.connect(server.address)                  # accept() will fail with EMFILE
        turned_away = wait_until(lambda: server.events.count(ERROR) > errors_before, 5)
        try:
            closed = client.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:                            # still waiting in the backlog
            closed = False
        # A spinning loop would make thousands of rounds in this window; an idle one none.
        wakeups, cpu = server.events.count(WAKEUP), server.cpu_time()
        time.sleep(0.3)
        witness.sendall(b"still served")                # one more round, for the witness
        witness_ok = recv_exactly(witness, 12, timeout=5) == b"STILL SERVED"
        wakeups = server.events.count(WAKEUP) - wakeups
        cpu = server.cpu_time() - cpu
        client.close()                                  # frees descriptors: not before
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for fd in fillers:
            os.close(fd)
        report["rounds"].append({
            "fillers": len(fillers), "turned_away": turned_away, "client_closed": closed,
            "wakeups": wakeups, "cpu": cpu, "witness_ok": witness_ok,
            "served_after": request(server.address, b"after", timeout=5) == b"AFTER",
            "reserve_held": descriptor_reserve().held})
    witness.close()
    report["errors"] = [e.detail for e in server.events.events(ERROR)]
    report["refusals"] = server.refusals()
    report["limit"] = limit
print(json.dumps(report))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform not in ("linux", "darwin"), reason="Linux and macOS only")
@pytest.mark.parametrize("model", ["threads", "select", "selectors", "asyncio", "tasks"])
def test_out_of_descriptors_the_loop_does_not_spin_and_recovers(model):
    # Not the busy polling model: out of descriptors, Linux's accept() fails with EMFILE even
    # when nobody is waiting, so a busy loop frees and retakes its reserve descriptor all the
    # time, racing this test's own thread for it. It goes through the same accept_all(),
    # tested above with a fake listener.
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, model], capture_output=True, text=True, timeout=50
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for round_ in report["rounds"]:
        assert round_["fillers"] > 0, round_  # the shortage really happened
        assert round_["turned_away"] and round_["client_closed"], round_
        assert round_["wakeups"] < 50, round_  # thousands if the loop spun
        assert round_["cpu"] < 0.1, round_  # 0.3 s if it spun (asyncio did)
        assert round_["witness_ok"] and round_["served_after"], round_
        assert round_["reserve_held"], round_
    assert report["errors"] == ["out of descriptors (EMFILE): a waiting client was turned away"] * 2
    assert report["refusals"] == {f"out of descriptors (ulimit -n {report['limit']})": 2}


def test_threads_model_turns_a_client_away_when_no_thread_can_start(monkeypatch):
    import threading

    from nbio_helpers import request, start_server
    from nbio_helpers.server import wait_until

    real_start = threading.Thread.start
    refuse = {"next": True}

    def start(thread):
        if thread.name.startswith("nbio-starved-client-") and refuse.pop("next", False):
            raise RuntimeError("can't start new thread")
        return real_start(thread)

    with start_server("threads", name="starved") as server:
        monkeypatch.setattr(threading.Thread, "start", start)
        with socket.create_connection(server.address, timeout=5) as first:
            try:
                assert first.recv(1) == b""  # closed: no thread for it
            except ConnectionResetError:
                pass
        assert wait_until(lambda: server.refusals() == {"cannot start another thread": 1}, 5)
        assert request(server.address, b"next") == b"NEXT"  # the loop lives on
        assert server.running


def test_accept_all_stops_at_its_limit():
    first, second = socket.socketpair()
    try:
        server = fake_server(first, second)
        assert accept_all(server, make=lambda sock, server: sock, limit=1) == [first]
        assert server.listener.outcomes == [second]  # the next client is left waiting
    finally:
        first.close()
        second.close()


BLOCKING_SCRIPT = r"""
import json, os, resource, socket, sys
from nbio_helpers import request, start_server
from nbio_helpers.server import wait_until

with start_server("blocking", name="emfile") as server:
    assert request(server.address, b"warm up") == b"WARM UP"
    # The server closes its end of that connection after the reply: wait, or the descriptor
    # it frees would be a hole below the limit, and the next accept() would succeed.
    assert wait_until(lambda: server.events.count("close") == 1, 5)
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = probe + 16
    client = socket.socket()
    client.settimeout(5)
    fillers = []
    while (fd := os.open(os.devnull, os.O_RDONLY)) < limit:
        fillers.append(fd)
    os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    client.connect(server.address)                  # accept() fails with EMFILE
    turned_away = wait_until(lambda: sum(server.refusals().values()) > 0, 5)
    try:
        closed = client.recv(1) == b""
    except ConnectionResetError:
        closed = True
    client.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    for fd in fillers:
        os.close(fd)
    served_after = request(server.address, b"after", timeout=5) == b"AFTER"
    alive = server.running
print(json.dumps({"turned_away": turned_away, "closed": closed, "served_after": served_after,
                  "alive": alive, "error": repr(server.error)}))
"""


@pytest.mark.skipif(sys.platform not in ("linux", "darwin"), reason="Linux and macOS only")
def test_the_blocking_model_turns_a_client_away_and_goes_on_out_of_descriptors():
    # It used to call a bare accept(): EMFILE ended its loop (kept on .error).
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKING_SCRIPT], capture_output=True, text=True, timeout=50
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == {
        "turned_away": True,
        "closed": True,
        "served_after": True,
        "alive": True,
        "error": "None",
    }, report
