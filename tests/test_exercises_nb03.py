"""The checkers of notebook 03 pass the reference solutions and fail, with their hint, on the
typical wrong answers: the rest of a partial send dropped (bytes lost), a list changed while
iterated (replies skipped), BlockingIOError not caught, sendall() on a non-blocking socket,
the whole reply re-sent after a partial send, a blocking accepted socket, (sock, address)
pairs taken for sockets, and the stubs."""
import os
import sys
import threading

import pytest

from nbio_helpers.exercises import FAIL_PREFIX, PASS_PREFIX
from nbio_helpers.exercises.nb03 import check_accept_new, check_send_pending

pytestmark = pytest.mark.timeout(60)


# ------------------------------------------------------------------ send_pending versions
def send_pending(wlist):
    """The notebook's solution, verbatim."""
    for item in wlist[:]:                  # a copy: we remove items from wlist as we go
        sock, data = item
        try:
            sent = sock.send(data)
        except BlockingIOError:            # its buffer is full: try again next round
            continue
        except ConnectionError:            # the client is gone
            wlist.remove(item)
            continue
        if sent < len(data):
            item[1] = data[sent:]          # a partial send: keep the rest for next round
        else:
            wlist.remove(item)


def drops_partial_rest(wlist):
    """The classic flaw: removed whatever send() took."""
    for item in wlist[:]:
        sock, data = item
        try:
            sock.send(data)
        except BlockingIOError:
            continue
        wlist.remove(item)


def removes_while_iterating(wlist):
    for item in wlist:                     # no copy: the item after a removed one is skipped
        sock, data = item
        try:
            sent = sock.send(data)
        except BlockingIOError:
            continue
        if sent < len(data):
            item[1] = data[sent:]
        else:
            wlist.remove(item)


def does_not_catch_blocking(wlist):
    for item in wlist[:]:
        sock, data = item
        sent = sock.send(data)
        if sent < len(data):
            item[1] = data[sent:]
        else:
            wlist.remove(item)


def uses_sendall(wlist):
    for item in wlist[:]:
        sock, data = item
        try:
            sock.sendall(data)
        except BlockingIOError:
            continue                       # part was sent, the whole is sent again later
        wlist.remove(item)


def resends_everything(wlist):
    for item in wlist[:]:
        sock, data = item
        try:
            sent = sock.send(data)
        except BlockingIOError:
            continue
        if sent == len(data):
            wlist.remove(item)             # a partial send is retried from the start


def send_stub(wlist):
    raise NotImplementedError


# -------------------------------------------------------------------- accept_new versions
def accept_new(listener):
    """The notebook's solution, verbatim."""
    new = []
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:            # nobody (else) is waiting
            return new
        sock.setblocking(False)            # accept() returns a blocking socket on Linux
        new.append(sock)


def leaves_blocking(listener):
    new = []
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return new
        new.append(sock)


def forgets_nobody_waiting(listener):
    sock, _ = listener.accept()
    sock.setblocking(False)
    return [sock]


def returns_one_socket(listener):
    try:
        sock, _ = listener.accept()
    except BlockingIOError:
        return []
    sock.setblocking(False)
    return sock


def returns_pairs(listener):
    new = []
    while True:
        try:
            pair = listener.accept()       # (sock, address), kept whole
        except BlockingIOError:
            return new
        pair[0].setblocking(False)
        new.append(pair)


def treats_the_pair_as_a_socket(listener):
    new = []
    while True:
        try:
            sock = listener.accept()
        except BlockingIOError:
            return new
        sock.setblocking(False)            # AttributeError: a tuple has no setblocking
        new.append(sock)


def leaves_blocking_as_macos_does(listener):
    """As on macOS: the descriptor inherits non-blocking, Python still says blocking."""
    new = []
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return new
        os.set_blocking(sock.fileno(), False)  # the OS flag only; getblocking() stays True
        new.append(sock)


def accept_stub(listener):
    raise NotImplementedError


# --------------------------------------------------------------------------------- tests
def verdict(capsys):
    return capsys.readouterr().out.strip()


def test_send_pending_reference_passes(capsys):
    assert check_send_pending.report(send_pending) is True
    assert verdict(capsys).startswith(PASS_PREFIX)


@pytest.mark.parametrize("wrong, expected", [
    (drops_partial_rest, "never came back"),
    (removes_while_iterating, "rounds"),
    (does_not_catch_blocking, "BlockingIOError"),
    (uses_sendall, "came back"),
    (resends_everything, "came back"),
    (send_stub, "not done yet"),
])
def test_send_pending_wrong_answers_fail(wrong, expected, capsys):
    assert check_send_pending.report(wrong) is False
    out = verdict(capsys)
    assert out.startswith(FAIL_PREFIX) and "Hint:" in out
    assert expected in out


def test_send_pending_hints_name_the_fix(capsys):
    check_send_pending.report(drops_partial_rest)
    assert "data[sent:]" in verdict(capsys)
    check_send_pending.report(removes_while_iterating)
    assert "wlist[:]" in verdict(capsys)


def test_accept_new_reference_passes(capsys):
    assert check_accept_new.report(accept_new) is True
    assert verdict(capsys).startswith(PASS_PREFIX)


@pytest.mark.slow
@pytest.mark.parametrize("wrong, expected", [
    (leaves_blocking, "setblocking(False)"),
    (forgets_nobody_waiting, "BlockingIOError"),
    (returns_one_socket, "not a list"),
    (returns_pairs, "sock, _ = listener.accept()"),
    (treats_the_pair_as_a_socket, "sock, _ = listener.accept()"),
    (accept_stub, "not done yet"),
])
def test_accept_new_wrong_answers_fail(wrong, expected, capsys):
    assert check_accept_new.report(wrong) is False
    out = verdict(capsys)
    assert out.startswith(FAIL_PREFIX) and "Hint:" in out
    assert expected in out


@pytest.mark.skipif(sys.platform == "win32", reason="os.set_blocking on sockets: Unix")
def test_accept_new_blocking_mode_is_caught_even_without_a_freeze(capsys):
    assert check_accept_new.report(leaves_blocking_as_macos_does) is False
    out = verdict(capsys)
    assert "getblocking() is True" in out and "setblocking(False)" in out


def test_checkers_leave_no_thread_behind():
    before = {t.name for t in threading.enumerate()}
    check_send_pending.report(drops_partial_rest)
    check_accept_new.report(leaves_blocking)
    after = {t.name for t in threading.enumerate() if t.is_alive()}
    assert not {n for n in after - before if n.startswith(("nbio-", "learner-check"))}
