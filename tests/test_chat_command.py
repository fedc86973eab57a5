"""``python -m nbio_helpers chat``: real ``nc`` clients against the command, in subprocesses."""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from conftest import CLI

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and nc"),
]

NC = shutil.which("nc")


class Lines:
    """Lines a subprocess writes to one of its pipes, read by a thread (pipes cannot be
    waited on with a timeout everywhere)."""

    def __init__(self, pipe):
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe):
        for line in pipe:
            self.queue.put(line.decode(errors="replace").rstrip("\n"))
        self.queue.put(None)

    def next(self, timeout=10.0):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s") from None


class ChatProcess:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [*CLI, "chat", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out, self.err = Lines(self.proc.stdout), Lines(self.proc.stderr)
        first = self.out.next(20)
        assert first and first.startswith("listening on "), (first, self.err.next(1))
        host, _, port = first.removeprefix("listening on ").rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def stop(self, signum=signal.SIGINT):
        self.proc.send_signal(signum)
        return self.proc.wait(20)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Nc:
    """A real ``nc`` client: ``send(line)``, ``line()``."""

    def __init__(self, host, port):
        self.proc = subprocess.Popen(
            [NC, "-N", host, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.out = Lines(self.proc.stdout)

    def send(self, data):
        self.proc.stdin.write(data if isinstance(data, bytes) else data.encode() + b"\n")
        self.proc.stdin.flush()

    def line(self):
        return self.out.next()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # -N: nc shuts its socket down on EOF
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def chat_process():
    started = []

    def start(*args):
        process = ChatProcess(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.mark.skipif(NC is None, reason="nc (netcat-openbsd) is not installed")
@pytest.mark.parametrize("step", ["coroutines", "callbacks"])
def test_two_nc_clients_talk_then_ctrl_c_exits_0(chat_process, step):
    chat = chat_process("--port", 0, "--step", step, "--max-line", 100)
    assert "connect with: nc 127.0.0.1" in chat.err.next()
    alice, bob = Nc(chat.host, chat.port), Nc(chat.host, chat.port)
    try:
        assert alice.line() == "* welcome to nbio chat! what is your name?"
        alice.send("alice")
        assert alice.line().startswith("* hello alice! nobody else")
        assert bob.line().startswith("* welcome")
        bob.send("alice")
        assert bob.line() == "! alice is taken: what is your name?"
        bob.send("bob")
        assert bob.line().startswith("* hello bob! here too: alice.")
        assert alice.line() == "* bob joined"
        alice.send("hi bob, from nc")
        assert bob.line() == "alice: hi bob, from nc"
        bob.send(b"x" * 300 + b"\n")
        assert bob.line() == "! line too long (the limit is 100 bytes): bye"
        assert alice.line() == "* bob left"  # the server closed bob's connection
        # (nc itself goes on until its input ends, so bob's nc is still running)
        alice.close()  # EOF: alice leaves
        assert alice.line() is None
    finally:
        alice.close()
        bob.close()
    assert chat.stop(signal.SIGINT) == 0
    rest = []
    while (line := chat.err.next()) is not None:
        rest.append(line)
    assert rest == ["stopped"]  # no traceback


def test_sigterm_with_clients_connected_exits_0(chat_process):
    import socket

    chat = chat_process("--port", 0)
    with socket.create_connection((chat.host, chat.port), timeout=5) as sock:
        assert sock.recv(100).startswith(b"* welcome")
        assert chat.stop(signal.SIGTERM) == 0
        assert sock.recv(100) == b""  # closed by the server


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "x"], "not a whole number"),
        (["--port", "70000"], "a port must be 0 to 65,535"),
        (["--step", "nope"], "invalid choice"),
        (["--idle-timeout", "-1"], "seconds must be more than 0"),
        (["--idle-timeout", "0"], "seconds must be more than 0"),
        (["--step", "generators", "--idle-timeout", "5"], "needs timers"),
        (["--max-line", "0"], "--max-line must be 1 to"),
    ],
)
def test_bad_arguments_exit_2_with_usage_and_no_traceback(cli, args, message):
    done = cli("chat", *args)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.startswith("usage: ") and message in err
    assert "Traceback" not in err


def test_port_in_use_exits_1_without_traceback(chat_process, cli):
    chat = chat_process("--port", 0)
    done = cli("chat", "--port", chat.port)
    err = done.stderr.decode()
    assert done.returncode == 1 and "cannot listen on" in err and "Traceback" not in err


def test_non_loopback_host_warns(chat_process):
    chat = chat_process("--host", "0.0.0.0", "--port", 0)
    lines = [chat.err.next(), chat.err.next()]
    assert any(line.startswith("warning: 0.0.0.0 is not a loopback address") for line in lines)
    assert chat.stop() == 0


def test_chat_is_listed_in_the_help(cli):
    out = cli("--help").stdout.decode()
    assert "chat" in out and "classroom" in out
