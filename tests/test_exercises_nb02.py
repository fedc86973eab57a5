"""The checkers of notebook 02 pass the reference solutions and fail, with their hint, on the
typical wrong answers: BlockingIOError let out, b'' for "not yet", None for "closed"; a single
send(), sendall() on a non-blocking socket, a retry that re-sends from the start, no timeout;
and the unsolved stubs."""
import select
import time

import pytest

from nbio_helpers.exercises import FAIL_PREFIX, NOT_IMPLEMENTED_MESSAGE, PASS_PREFIX, NotYet
from nbio_helpers.exercises.nb01 import ScriptedPeer
from nbio_helpers.exercises.nb02 import (SMALL_BUFFER, _never_read, check_recv_nonblocking,
                                         check_send_all_nonblocking, fill_buffers, payload)


# ---------------------------------------------------------------- recv_nonblocking
def recv_reference(sock):
    """The notebook's solution, verbatim."""
    try:
        return sock.recv(65536)       # b'' if the peer closed, else the data
    except BlockingIOError:
        return None                   # nothing has arrived yet


def recv_lets_error_escape(sock):
    return sock.recv(65536)


def recv_empty_for_not_yet(sock):
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def recv_none_for_closed(sock):
    try:
        return sock.recv(65536) or None
    except BlockingIOError:
        return None


def recv_switches_to_blocking(sock):
    sock.settimeout(0.05)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None


def recv_stub(sock):
    raise NotImplementedError


@pytest.mark.timeout(20)
def test_recv_reference_passes(capsys):
    assert check_recv_nonblocking(recv_reference) is True
    assert capsys.readouterr().out.startswith(PASS_PREFIX)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("wrong, expected_hint", [
    (recv_lets_error_escape, "except BlockingIOError: return None"),
    (recv_empty_for_not_yet, "'no data yet' must look different: return None"),
    (recv_none_for_closed, "return it as it is"),
    (recv_switches_to_blocking, "leave the socket's mode alone"),
])
def test_recv_wrong_answers_fail_with_hint(wrong, expected_hint, capsys):
    assert check_recv_nonblocking(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX) and "Hint:" in out
    assert expected_hint in out


@pytest.mark.timeout(10)
def test_recv_stub_fails_cleanly(capsys):
    assert check_recv_nonblocking(recv_stub) is False
    assert NOT_IMPLEMENTED_MESSAGE in capsys.readouterr().out


# ---------------------------------------------------------------- send_all_nonblocking
def send_reference(sock, data, timeout):
    """The notebook's solution, verbatim."""
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"sent {len(data) - len(view)} of {len(data)} bytes "
                                   f"in {timeout} s") from None
            select.select([], [sock], [], left)   # sleep until there is room again
            continue
        view = view[sent:]


def send_once(sock, data, timeout):
    sock.send(data)


def send_sendall(sock, data, timeout):
    sock.sendall(data)


def send_restarts(sock, data, timeout):
    deadline = time.monotonic() + timeout
    sent_total = 0
    while sent_total < len(data):
        try:
            sent_total += sock.send(data)          # always from the start: repeats bytes
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("too slow") from None
            select.select([], [sock], [], 0.1)


def send_ignores_blocking(sock, data, timeout):
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            break                                   # gives up: the rest is lost


def send_no_deadline(sock, data, timeout):
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            select.select([], [sock], [])           # waits forever for a peer that never reads


def send_stub(sock, data, timeout):
    raise NotImplementedError


def test_payload_is_8_mib_and_not_periodic_in_buffer_sizes():
    data = payload()
    assert len(data) == 8 * 1024 * 1024
    assert data[:65536] != data[65536:131072]


@pytest.mark.timeout(60)
def test_send_reference_passes(capsys):
    assert check_send_all_nonblocking(send_reference) is True
    assert capsys.readouterr().out.startswith(PASS_PREFIX)


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("wrong, expected_hint", [
    (send_once, "keep sending the rest"),
    (send_sendall, "sendall() (or an unguarded send()) on a non-blocking socket"),
    (send_restarts, "continue from where send() stopped"),
    (send_ignores_blocking, "keep sending the rest"),
    (send_no_deadline, "never without a timeout"),
])
def test_send_wrong_answers_fail_with_hint(wrong, expected_hint, capsys):
    assert check_send_all_nonblocking(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX) and "Hint:" in out
    assert expected_hint in out


@pytest.mark.timeout(10)
def test_send_stub_fails_cleanly(capsys):
    assert check_send_all_nonblocking(send_stub) is False
    assert NOT_IMPLEMENTED_MESSAGE in capsys.readouterr().out


@pytest.mark.timeout(10)
def test_fill_buffers_leaves_no_room():
    """After fill_buffers(), a send() to a peer that never reads has no room (on every OS:
    Windows would otherwise accept a huge send() into an empty buffer)."""
    with ScriptedPeer(sndbuf=SMALL_BUFFER, rcvbuf=SMALL_BUFFER) as peer:
        peer.sock.setblocking(False)
        assert fill_buffers(peer.sock) > 0
        with pytest.raises(BlockingIOError):
            peer.sock.send(b"x" * 1024)


@pytest.mark.timeout(10)
def test_never_read_fails_a_function_that_returns_early(capsys):
    """The never-read part alone: one guarded send() then return is not a TimeoutError."""
    def send_once_quietly(sock, data, timeout):
        try:
            sock.send(data)
        except BlockingIOError:
            pass

    with pytest.raises(NotYet) as failure:
        _never_read(send_once_quietly)
    assert "could not be sent" in failure.value.message
    assert "raise TimeoutError" in failure.value.hint
