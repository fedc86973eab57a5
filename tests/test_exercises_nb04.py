"""The checkers of notebook 04 pass the reference solution and fail, with their hint, on the
typical wrong answers: write interest always (spin), dropped partial sends (bytes lost),
b'' not handled (connections leak), and the unsolved stub."""
import select
import threading

import pytest

from nbio_helpers.exercises import FAIL_PREFIX, PASS_PREFIX
from nbio_helpers.exercises.nb04 import QUESTIONS, check_prediction, check_select_round


# ---------------------------------------------------------------- learner versions
def reference(listener, outbufs, timeout):
    """The notebook's solution, verbatim."""
    rlist = [listener, *outbufs]
    wlist = [sock for sock, pending in outbufs.items() if pending]
    readable, writable, _ = select.select(rlist, wlist, [], timeout)
    for sock in readable:
        if sock is listener:
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                continue
            client.setblocking(False)
            outbufs[client] = bytearray()
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionError:
            data = b""
        if data:
            outbufs[sock] += data.upper()
        else:
            del outbufs[sock]
            sock.close()
    for sock in writable:
        if sock not in outbufs:
            continue
        try:
            sent = sock.send(outbufs[sock])
        except BlockingIOError:
            continue
        except ConnectionError:
            del outbufs[sock]
            sock.close()
            continue
        del outbufs[sock][:sent]


def make_variant(*, write_always=False, drop_partial=False, ignore_eof=False):
    """The reference with one typical mistake switched on."""
    def variant(listener, outbufs, timeout):
        rlist = [listener, *outbufs]
        wlist = list(outbufs) if write_always else [s for s, p in outbufs.items() if p]
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        for sock in readable:
            if sock is listener:
                try:
                    client, _ = listener.accept()
                except BlockingIOError:
                    continue
                client.setblocking(False)
                outbufs[client] = bytearray()
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            if data:
                outbufs[sock] += data.upper()
            elif not ignore_eof:
                del outbufs[sock]
                sock.close()
        for sock in writable:
            if sock not in outbufs:
                continue
            try:
                sent = sock.send(outbufs[sock])
            except BlockingIOError:
                continue
            if drop_partial:
                outbufs[sock].clear()
            else:
                del outbufs[sock][:sent]
    return variant


def stub(listener, outbufs, timeout):
    raise NotImplementedError


def no_learner_threads_left():
    return not [t for t in threading.enumerate()
                if t.name.startswith("learner-select-loop") and t.is_alive()]


# ---------------------------------------------------------------- select_round
@pytest.mark.timeout(60)
def test_reference_passes(capsys):
    assert check_select_round.report(reference) is True
    assert capsys.readouterr().out.startswith(PASS_PREFIX)
    assert no_learner_threads_left()


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("mistake, expected", [
    ({"write_always": True}, "it spins"),
    ({"drop_partial": True}, "the rest was lost"),
    ({"ignore_eof": True}, "the connections leak"),
])
def test_typical_mistakes_fail_with_a_hint(capsys, mistake, expected):
    assert check_select_round.report(make_variant(**mistake)) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX) and expected in out and "Hint:" in out
    assert no_learner_threads_left()


@pytest.mark.timeout(60)
def test_a_zero_timeout_spins_and_the_hint_says_so(capsys):
    def zero_timeout(listener, outbufs, timeout):
        reference(listener, outbufs, 0)
    assert check_select_round.report(zero_timeout) is False
    out = capsys.readouterr().out
    assert "it spins" in out and "timeout" in out.split("Hint:")[1]
    assert no_learner_threads_left()


@pytest.mark.timeout(30)
def test_unsolved_stub_says_not_done(capsys):
    assert check_select_round.report(stub) is False
    assert "NotImplementedError" in capsys.readouterr().out
    assert no_learner_threads_left()


@pytest.mark.timeout(30)
def test_a_crashing_loop_is_reported_not_raised(capsys):
    def crashes(listener, outbufs, timeout):
        raise KeyError("oops")
    assert check_select_round.report(crashes) is False
    assert "KeyError" in capsys.readouterr().out


@pytest.mark.timeout(30)
def test_a_loop_without_timeout_still_ends(capsys):
    def no_timeout(listener, outbufs, timeout):
        reference(listener, outbufs, None)
    # It works as a server; the checker must still be able to stop it.
    check_select_round.report(no_timeout)
    capsys.readouterr()
    assert no_learner_threads_left()


def test_not_a_function(capsys):
    assert check_select_round.report("select_round") is False
    assert "expected a function" in capsys.readouterr().out


# ---------------------------------------------------------------- predictions
@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_predictions_right_and_wrong(capsys, question):
    right = QUESTIONS[question][0]
    wrong = "a" if right != "a" else "b"
    assert check_prediction.report(question, lambda: right) is True
    assert check_prediction.report(question, lambda: f"({wrong.upper()})") is False
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(PASS_PREFIX) and out[1].startswith(FAIL_PREFIX)
    assert "Hint:" in out[1]


def test_prediction_stub_and_nonsense(capsys):
    def unsolved():
        raise NotImplementedError
    assert check_prediction.report("idle_many_clients", unsolved) is False
    assert check_prediction.report("idle_many_clients", lambda: 42) is False
    assert check_prediction.report("no_such_question", lambda: "a") is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "42" in out and "no_such_question" in out
