"""Shared fixtures of the helper tests.

* ``model``: every server model in turn (a test that takes it runs once per model, the way
  CPython's test_selectors runs one test class per selector); ``nonblocking_model``: each
  model whose loop serves ``Connection`` objects. ``nbio_helpers.models.models_with()``
  filters the models on their capabilities (see ``Server``'s docstring). The conformance
  suite, over every server the package ships, is tests/test_models.py.
* ``make_server(model, **options)``: starts a server on 127.0.0.1:0 and stops it after the
  test, failing the test if ``stop()`` raises (an exception that killed the loop).
* ``exchange(address, data)``: sends ``data`` from a thread while reading the echo, then
  half-closes and reads until the server's EOF; returns every byte received.
* ``cli(*args)`` / ``serve_cli(model)``: the command line as subprocesses.
* ``open_fds()`` / ``nbio_threads()``: what is left behind.

Every fixture cleans up after itself; ``nothing_left_running`` (used by the helper tests)
fails a test that leaves a server running, and two autouse fixtures fail a test that leaves
an asyncio loop or learner code running.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest

from nbio_helpers import MODELS, running_servers, start_server, stop_all
from nbio_helpers.connection import Connection
from nbio_helpers.models import models_with
from nbio_helpers.server import wait_until

CLI = [sys.executable, "-m", "nbio_helpers"]


@pytest.fixture(params=list(MODELS))
def model(request) -> str:
    """The name of each server model in turn."""
    return request.param


@pytest.fixture(params=models_with(connection_class=Connection))
def nonblocking_model(request) -> str:
    """Each model whose loop serves :class:`~nbio_helpers.connection.Connection` objects."""
    return request.param


@pytest.fixture
def make_server():
    """Factory: ``make_server("select", high_water=...)`` -> a started server."""
    started = []

    def make(model_name: str, **options):
        server = start_server(model_name, **options)
        started.append(server)
        return server

    yield make
    errors = []
    for server in started:
        try:
            server.stop()
        except BaseException as exc:
            errors.append(f"{server.name}: {type(exc).__name__}: {exc}")
    assert not errors, f"stop() raised: {errors}"


@pytest.fixture
def server(model, make_server):
    """A started server of each model in turn."""
    return make_server(model)


@pytest.fixture
def nothing_left_running():
    """Fails a test that leaves a server running (and stops it). Not autouse: other test
    modules may keep a server across tests; use ``pytest.mark.usefixtures``."""
    yield
    leftover = running_servers()
    stop_all()
    assert not leftover, f"the test left servers running: {sorted(leftover)}"


def _exchange(
    address,
    data: bytes,
    *,
    bufsize: int | None = None,
    timeout: float = 30.0,
    chunk: int | None = None,
) -> bytes:
    """Send ``data`` (one ``sendall``, or ``chunk``-sized ones) from a thread while this thread
    reads; half-close after the last byte; read until EOF. Returns every byte received.

    ``bufsize`` sets SO_SNDBUF and SO_RCVBUF before ``connect()``.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sender_error: list[BaseException] = []
    try:
        if bufsize is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        sock.settimeout(timeout)
        sock.connect(address)

        def send():
            try:
                if chunk is None:
                    sock.sendall(data)
                else:
                    for start in range(0, len(data), chunk):
                        sock.sendall(data[start : start + chunk])
                sock.shutdown(socket.SHUT_WR)
            except BaseException as exc:
                sender_error.append(exc)

        sender = threading.Thread(target=send, name="test-exchange-sender", daemon=True)
        sender.start()
        received = bytearray()
        try:
            while True:
                piece = sock.recv(1 << 20)
                if not piece:
                    break
                received += piece
        finally:
            if sender.is_alive():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # unblock the sender
            sender.join(timeout)
        if sender_error:
            raise sender_error[0]
        return bytes(received)
    finally:
        sock.close()


@pytest.fixture
def exchange():
    """``exchange(address, data, bufsize=None, timeout=30)`` -> every byte of the echo."""
    return _exchange


def count_open_fds() -> int:
    """Open descriptors of this process (/proc/self/fd on Linux, psutil elsewhere)."""
    if os.path.isdir("/proc/self/fd"):
        return len(os.listdir("/proc/self/fd"))
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    return process.num_fds() if hasattr(process, "num_fds") else process.num_handles()


@pytest.fixture
def open_fds():
    """``open_fds()`` -> how many descriptors this process has open now.

    The process-wide reserve descriptor (opened once, by the first server started) is opened
    first, so that a test that counts before its first server does not count it as a leak."""
    from nbio_helpers.limits import descriptor_reserve

    descriptor_reserve()
    return count_open_fds


@pytest.fixture
def nbio_threads():
    """``nbio_threads()`` -> the live threads that belong to nbio servers."""
    return lambda: [t for t in threading.enumerate() if t.name.startswith("nbio-")]


# ------------------------------------------------------------------------ command line
def _cli(*args, input: bytes | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``python -m nbio_helpers ARGS...``; returns the finished process (bytes output)."""
    return subprocess.run(
        [*CLI, *map(str, args)],
        input=input,
        capture_output=True,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    """``cli("load", "--port", 8080)`` -> CompletedProcess (stdout/stderr as bytes)."""
    return _cli


class ServeProcess:
    """A ``serve`` subprocess: ``.address`` once it printed ``listening on HOST:PORT``."""

    def __init__(self, *args, startup_timeout: float = 20.0):
        self.proc = subprocess.Popen(
            [*CLI, "serve", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        # A thread reads the first line: a pipe cannot be waited on with a timeout everywhere.
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            self.first_line = lines.get(timeout=startup_timeout).decode()
        except queue.Empty:
            self.kill()
            raise AssertionError(f"serve printed nothing within {startup_timeout} s") from None
        if not self.first_line.startswith("listening on "):
            _, err = self.finish(signal.SIGTERM)
            raise AssertionError(f"unexpected first line {self.first_line!r}; stderr: {err!r}")
        host, _, port = self.first_line.removeprefix("listening on ").strip().rpartition(":")
        self.address = (host.strip("[]"), int(port))

    def finish(self, signum=signal.SIGINT, timeout: float = 20.0):
        """Send ``signum``, wait for the exit; returns ``(rest of stdout, stderr)``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return out.decode(errors="replace"), err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def serve_cli():
    """``serve_cli("--model", "select", "--port", 0)`` -> a running :class:`ServeProcess`;
    killed after the test if it is still running."""
    if sys.platform == "win32":
        pytest.skip("stopping the serve subprocess cleanly needs POSIX signals")
    started: list[ServeProcess] = []

    def serve(*args, **kwargs) -> ServeProcess:
        process = ServeProcess(*args, **kwargs)
        started.append(process)
        return process

    yield serve
    for process in started:
        process.kill()


@pytest.fixture
def pair():
    """Two connected non-blocking sockets (``socket.socketpair()``), closed afterwards."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _nbgrader_round_trip(tmp_path_factory, students):
    """``test_nbgrader_roundtrip.round_trip`` of every notebook with exercises, for these
    students; ``None`` where nbgrader cannot run (Python 3.10, or not installed)."""
    if sys.version_info < (3, 11):
        return None
    try:
        import nbgrader.api  # noqa: F401
    except ImportError:
        return None
    from test_nbgrader_roundtrip import WRONG, round_trip

    return round_trip(tmp_path_factory.mktemp("course"), list(WRONG), students)


@pytest.fixture(scope="session")
def nbgrader_course(tmp_path_factory):
    """The nbgrader round trip of the unsolved release of every notebook with exercises,
    run once per session: ``{notebook name: result}`` (see
    ``test_nbgrader_roundtrip.round_trip``), or ``None`` where nbgrader cannot run.
    ``test_nbgrader_roundtrip`` checks the scores; ``test_student_edition`` checks the run,
    which is the student edition executed (the same cells), instead of executing it again.
    A test that uses it runs alone under ``pytest -n`` (tests/run_alone.py)."""
    return _nbgrader_round_trip(tmp_path_factory, ("unsolved",))


@pytest.fixture(scope="session")
def nbgrader_graded(tmp_path_factory):
    """The same round trip, of the solved and the wrong submissions (their scores)."""
    return _nbgrader_round_trip(tmp_path_factory, ("solved", "wrong"))


@pytest.fixture(autouse=True)
def no_event_loop_left_running(request):
    """A test must not leave an asyncio event loop marked as running in its thread: the next
    test that runs a loop there would fail ("another loop is running"). The browser tests
    are the exception while their module runs: Playwright's sync API keeps its loop running
    in the main thread until its (module-scoped) fixture closes it."""
    import asyncio

    yield
    if "browser" in request.fixturenames:
        return
    leaked = asyncio.events._get_running_loop()
    assert leaked is None, f"an event loop is left running in this thread: {leaked!r}"


@pytest.fixture(autouse=True)
def no_learner_code_left_running():
    """A test must not leave learner code running: a spinning leftover takes a core from
    every test after it (their CPU-share verdicts fail) and its server thread fails their
    leak checks. This fails the test that left it, and stops it, so that the failure stays
    with its cause."""
    yield
    harness = sys.modules.get("nbio_helpers.exercises.harness")
    if harness is None:  # no learner code ran in this worker
        return
    if wait_until(lambda: not harness.learner_calls_running(), 2.0):
        return
    left = harness.learner_calls_running()
    harness.stop_learner_code(list(left))
    pytest.fail(f"the test left learner code running: {sorted(left.values())}", pytrace=False)
