"""``serve`` under stress: graceful stop on a signal, a second signal, turned-away clients.

Each test runs ``python -m nbio_helpers serve`` as a subprocess and reads its stderr line by
line while it runs.
"""

from __future__ import annotations

import queue
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from streaming import StreamingClients

from nbio_helpers import MODELS
from nbio_helpers.limits import fd_limit_raised

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

CLI = [sys.executable, "-m", "nbio_helpers"]


class Serve:
    """``serve ARGS`` with stderr read line by line (``wait_for(pattern)``)."""

    def __init__(self, *args, fd_limit: int | None = None):
        def lower_limit():
            # Both limits, as `ulimit -n` does: the server raises a low soft limit itself
            # (limits.ensure_fd_room) as far as the hard limit allows.
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", "0", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lower_limit if fd_limit else None,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        first = self.proc.stdout.readline()
        assert first.startswith("listening on "), (first, self.proc.stderr)
        self.address = ("127.0.0.1", int(first.rsplit(":", 1)[1]))

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)

    def wait_for_line(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s: {self.err}")

    def wait_exit(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0)  # the reader thread drains the pipe
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def serve():
    started = []

    def start(*args, **kwargs) -> Serve:
        server = Serve(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


# ------------------------------------------------------------------------ graceful stop
@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_sigint_under_load_sends_back_every_byte_read(model, serve):
    server = serve("--model", model)
    clients = StreamingClients(server.address, 50)
    try:
        wait = (
            (lambda: clients.received[0])
            if model == "blocking"
            else (lambda: all(clients.received))
        )
        deadline = time.monotonic() + 30
        while not wait() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wait(), "not every client was served"
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        code = server.wait_exit()
        took = time.monotonic() - signalled
    finally:
        clients.join(15)
    line = server.wait_for_line(r"^stopped")
    assert code == 0, server.err
    read = int(re.search(r"([\d,]+) bytes read", line).group(1).replace(",", ""))
    assert line == f"stopped: {read:,} bytes read from clients, every reply sent\n", line
    assert sum(clients.received) == read
    assert all(clients.correct)
    assert took < 1.0 + 2  # the default grace period, and the exit
    assert not any("Traceback" in line for line in server.err)


@pytest.mark.slow
def test_a_second_sigint_stops_at_once(serve):
    server = serve("--model", "threads", "--grace", "30")
    with socket.create_connection(server.address, timeout=5) as idle:  # keeps it waiting
        idle.sendall(b"x")
        assert idle.recv(1) == b"X"
        server.proc.send_signal(signal.SIGINT)
        server.wait_for_line(
            r"^stopping: no new clients; finishing 1 connection\(s\) for up to "
            r"30 s \(Ctrl-C again to stop at once\)"
        )
        started = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        assert server.wait_exit() == 130
        assert time.monotonic() - started < 10
    server.wait_for_line(r"^stopped at once \(1 bytes read from clients\)")
    assert not any("Traceback" in line for line in server.err)


@pytest.mark.slow
def test_sigterm_is_a_graceful_stop_too(serve):
    server = serve("--model", "selectors")
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    server.wait_for_line(r"^stopped: 0 bytes read from clients, every reply sent")


# ------------------------------------------------------------------ turned-away clients
def hold(address, count: int) -> tuple[list[socket.socket], dict]:
    """Open ``count`` connections, each sends a message: how many are echoed, closed?"""
    socks = [socket.create_connection(address, timeout=10) for _ in range(count)]
    outcome = {"echoed": 0, "closed": 0, "no reply": 0}
    with selectors.DefaultSelector() as sel:
        for i, sock in enumerate(socks):
            try:
                sock.sendall(b"m%05d" % i)
            except OSError:
                outcome["closed"] += 1
                continue
            sel.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 10
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(0.1):
                try:
                    data = key.fileobj.recv(100)
                except OSError:
                    data = b""
                outcome["echoed" if data else "closed"] += 1
                sel.unregister(key.fileobj)
        outcome["no reply"] = len(sel.get_map())
    return socks, outcome


@pytest.mark.slow
@pytest.mark.parametrize("model", ["select", "selectors", "asyncio", "threads"])
def test_clients_turned_away_out_of_descriptors_are_reported_once(model, serve):
    server = serve("--model", model, fd_limit=64)
    socks, outcome = hold(server.address, 70)
    try:
        assert outcome["no reply"] == 0, outcome  # nobody left hanging
        assert outcome["closed"] > 0, outcome  # the shortage really happened
        line = server.wait_for_line(r"^turned away")
        assert line == (
            f"turned away {outcome['closed']} clients: out of descriptors (ulimit -n 64)\n"
        )
    finally:
        for sock in socks:
            sock.close()
    server.proc.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0
    assert sum("turned away" in line for line in server.err) == 1, server.err


@pytest.mark.slow
def test_select_refusals_beyond_fd_setsize_are_reported(serve):
    with fd_limit_raised(1400) as limit:
        if limit is not None and limit < 1400:
            pytest.skip(f"the descriptor limit ({limit}) is too low to pass FD_SETSIZE")
        server = serve("--model", "select")
        socks, outcome = hold(server.address, 1100)
        try:
            assert outcome["no reply"] == 0 and outcome["closed"] > 0, outcome
            line = server.wait_for_line(r"^turned away")
            assert line == (
                f"turned away {outcome['closed']} clients: descriptor beyond "
                "select()'s FD_SETSIZE (1024)\n"
            )
        finally:
            for sock in socks:
                sock.close()
    server.proc.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0


@pytest.mark.slow
def test_grace_0_stops_at_once(serve):
    server = serve("--model", "select", "--grace", "0")
    server.proc.send_signal(signal.SIGINT)
    assert server.wait_exit() == 0
    server.wait_for_line(r"^stopped at once \(0 bytes read from clients\)")
    assert not any(line.startswith("stopping") for line in server.err)
