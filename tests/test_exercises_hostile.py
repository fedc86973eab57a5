"""Hostile learner code, through every checker: a verdict within the checker's bound, a hint
that names what the code did, nothing printed into later cells, nothing left running.

The behaviours (each a learner function that runs away in its own way):

* ``spin`` — ``while True: pass``;
* ``flood`` — prints in a loop that never ends;
* ``keyboard`` / ``exit`` — ``raise KeyboardInterrupt``, ``sys.exit()``;
* ``close`` — closes the socket it was given (the checkers that give one);
* ``recv`` / ``select`` — a blocking ``recv()`` / a ``select()`` without timeout on a socket
  the checker owns;
* ``sleep`` / ``swallow`` — waits in a C call that never returns / loops catching every
  ``BaseException``: no harness can stop these in a thread; the verdict must say to restart
  the kernel (released at the end of the test, so that the test leaves nothing behind).

In the server-loop checkers (03, 04, 05) the learner's code runs inside a server's loop, in a
server thread; there it first behaves (the reference) and turns hostile from its
``after``-th call, so the hostility happens inside the loop, not in a first probe call.
The kernel-level side (Stop button, the kernel's CPU afterwards) is in test_exercises_kernel.py.
"""

from __future__ import annotations

import select
import socket
import sys
import threading
import time

import pytest
import test_exercises_nb03 as t03
import test_exercises_nb04 as t04
import test_exercises_nb06 as t06

from nbio_helpers.exercises import (
    RESTART_ADVICE,
    harness,
    nb01,
    nb02,
    nb03,
    nb04,
    nb05,
    nb06,
    zombies,
)
from nbio_helpers.exercises.harness import learner_calls_running as learner_calls_running_now
from nbio_helpers.models import SelectorsServer

BOUND = 30.0
"""Seconds within which every checker gives its verdict, whatever the learner's code does."""

RELEASE = threading.Event()  # frees the "sleep" and "swallow" behaviours at the end of a test


def hostile(kind: str, reference=None, after: int = 0):
    """A learner function that behaves like ``reference`` for ``after`` calls, then ``kind``."""
    calls = {"n": 0}

    def learner(*args):
        calls["n"] += 1
        if calls["n"] <= after:
            return reference(*args)
        if kind == "spin":
            while True:
                pass
        if kind == "flood":
            n = 0
            while True:
                print("tick", n)
                n += 1
        if kind == "keyboard":
            raise KeyboardInterrupt
        if kind == "exit":
            sys.exit(3)
        if kind == "close":
            for arg in args:
                if isinstance(arg, socket.socket):
                    arg.close()
            return None
        if kind == "recv":
            sock = next(a for a in args if isinstance(a, socket.socket))
            sock.setblocking(True)
            sock.settimeout(None)
            while True:
                sock.recv(1)
        if kind == "select":
            sock = next(a for a in args if isinstance(a, socket.socket))
            while True:
                select.select([sock], [], [])
                time.sleep(0.01)
        if kind == "sleep":
            RELEASE.wait()  # a C wait: no asynchronous exception gets in
            return None
        if kind == "swallow":
            while not RELEASE.is_set():
                try:
                    time.sleep(0.001)
                except BaseException:
                    pass
            return None
        raise AssertionError(kind)

    learner.__name__ = f"learner_{kind}"
    return learner


def hostile_server(kind: str, where: str = "serve"):
    """A learner IdleTimeoutServer whose ``serve`` (or ``__init__``) is hostile."""
    bad = hostile(kind)

    class Hostile(SelectorsServer):
        def __init__(self, *args, idle_timeout: float = 1.0, **kwargs):
            if where == "init":
                bad()
            super().__init__(*args, **kwargs)
            self.idle_timeout = idle_timeout

        def serve(self):
            if where == "serve":
                bad(self.listener)
            super().serve()

    return Hostile


def framer_with(bad):
    """Notebook 06's framer whose feed() is hostile."""
    return type("HostileFramer", (t06.MyFramer,), {"feed": lambda self, data: bad(data)})


def timer_loop_with(bad):
    """Notebook 06's timer loop whose timeout() is hostile."""
    return type("HostileLoop", (t06.MyTimerLoop,), {"timeout": lambda self: bad()})


def handler_with(bad):
    """Notebook 06's chat handler, hostile right after its greeting (in the loop's thread)."""

    async def my_chat(room, client):
        room.welcome(client)
        bad(client.sock)
        await t06.my_chat(room, client)

    return my_chat


# checker, how to call it with a learner, after (calls that behave), kinds that apply
PURE = ["spin", "flood", "keyboard", "exit"]
CASES = {
    "nb01.recv_exactly_timeout": (
        nb01.check_recv_exactly_timeout,
        None,
        0,
        PURE + ["close", "recv", "select"],
    ),
    "nb01.why_second_client_waited": (nb01.check_why_second_client_waited, None, 0, PURE),
    "nb02.recv_nonblocking": (
        nb02.check_recv_nonblocking,
        None,
        0,
        PURE + ["close", "recv", "select"],
    ),
    "nb02.send_all_nonblocking": (
        nb02.check_send_all_nonblocking,
        None,
        0,
        PURE + ["close", "recv", "select"],
    ),
    # 03: the probes call the step 2 (3) times before the loop does: hostile inside the loop.
    "nb03.send_pending": (nb03.check_send_pending, t03.send_pending, 2, PURE),
    "nb03.accept_new": (nb03.check_accept_new, t03.accept_new, 3, PURE + ["select"]),
    "nb04.select_round": (nb04.check_select_round, t04.reference, 0, PURE + ["close", "select"]),
    "nb04.prediction": (
        lambda fn: nb04.check_prediction.verdict("spin_one_client", fn),
        None,
        0,
        PURE,
    ),
    "nb05.model_choices": (nb05.check_model_choices, None, 0, PURE),
    "nb05.idle_timeout.serve": (nb05.check_idle_timeout, "serve", 0, PURE + ["select"]),
    "nb05.idle_timeout.init": (nb05.check_idle_timeout, "init", 0, PURE),
    "nb06.framer": (lambda bad: nb06.check_framer.verdict(framer_with(bad)), None, 0, PURE),
    "nb06.timer_loop": (
        lambda bad: nb06.check_timer_loop.verdict(timer_loop_with(bad)),
        None,
        0,
        PURE,
    ),
    "nb06.chat_handler": (
        lambda bad: nb06.check_chat_handler.verdict(handler_with(bad)),
        None,
        0,
        PURE + ["select", "recv"],
    ),
}
EXPECTED = {
    "spin": "did not return within|made no progress",
    "flood": "did not return within|made no progress",
    "keyboard": "raised KeyboardInterrupt",
    "exit": "raised SystemExit",
    "close": "socket it was given",
    "recv": "did not return within|made no progress",
    "select": "did not return within|made no progress",
}
FAST = {"keyboard", "exit", "close"}
SLOW_CHECKERS = ("nb03.",)  # their first stage takes 1-3 s even for code that exits at once


def run_case(name: str, kind: str):
    check, reference, after, _ = CASES[name]
    if name.startswith("nb05.idle_timeout"):
        learner = hostile_server(kind, where=reference)
    else:
        learner = hostile(kind, reference, after)
    verdict_of = check.verdict if hasattr(check, "verdict") else check
    started = time.monotonic()
    verdict = verdict_of(learner)
    return verdict, time.monotonic() - started


def nothing_left_running(timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not learner_calls_running_now() and not [
            t for t in threading.enumerate() if t.name.startswith("learner-") and t.is_alive()
        ]:
            return True
        time.sleep(0.02)
    return False


PARAMS = [
    pytest.param(
        name,
        kind,
        id=f"{name}-{kind}",
        marks=() if kind in FAST and not name.startswith(SLOW_CHECKERS) else pytest.mark.slow,
    )
    for name, (_, _, _, kinds) in CASES.items()
    for kind in kinds
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name, kind", PARAMS)
def test_hostile_code_gets_a_verdict_and_is_stopped(name, kind, capsys):
    verdict, elapsed = run_case(name, kind)
    assert not verdict.passed, verdict.text
    assert elapsed < BOUND, f"{elapsed:.1f} s"
    expected = EXPECTED[kind]
    if name.startswith("nb05.idle_timeout.serve") and kind in ("spin", "flood", "select"):
        # serve() is the server's loop: one that is stuck before it serves anybody is told
        # that no client got an answer, and where it was stuck (a serve() that serves but
        # ignores self.stopping is told "did not stop within": tests/test_exercises_nb05.py)
        expected = "did not answer a client within"
    if name.startswith(("nb03", "nb04.select")) and kind in ("flood", "spin", "select"):
        expected = "did not return within 1 s"
    if name == "nb06.chat_handler" and kind in ("flood", "spin", "select", "recv"):
        expected = "did not give the loop back"  # a coroutine step: stopped after 1 s
    assert any(e in verdict.text for e in expected.split("|")), verdict.text
    if kind in ("spin", "flood"):
        assert "still running line" in verdict.text, verdict.text  # says where it was
    if kind == "flood":
        assert "printed" in verdict.text and "tick 0" in verdict.text, verdict.text
    if kind in ("keyboard", "exit"):
        assert "Hint:" in verdict.text and "ordinary exception" in verdict.text
    assert RESTART_ADVICE not in verdict.text  # these can all be stopped
    assert nothing_left_running(), "learner code still running after the verdict"
    time.sleep(0.1)
    assert capsys.readouterr().out == "", "learner output leaked out of the check"


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "name",
    [
        "nb01.recv_exactly_timeout",
        "nb02.send_all_nonblocking",
        "nb04.select_round",
        "nb05.idle_timeout.serve",
        "nb05.idle_timeout.init",
        "nb06.framer",
        "nb06.timer_loop",
        "nb06.chat_handler",
    ],
)
@pytest.mark.parametrize("kind", ["sleep", "swallow"])
def test_unstoppable_code_gets_the_restart_advice(name, kind, capsys, monkeypatch):
    # Neither behaviour ends before RELEASE, however long it is tried (a LearnerStopped never
    # lands in a blocked wait, and the swallowing loop catches every one): trying for 0.3 s
    # instead of harness.STOP_TIMEOUT (1.5 s) gives the same verdict, 1.2 s sooner.
    monkeypatch.setattr(harness, "STOP_TIMEOUT", 0.3)
    RELEASE.clear()
    try:
        verdict, elapsed = run_case(name, kind)
        assert not verdict.passed
        assert elapsed < BOUND
        assert "restart the kernel (Kernel → Restart)" in verdict.text, verdict.text
        assert zombies()
    finally:
        RELEASE.set()
    assert nothing_left_running(5.0)
    assert not zombies()


def test_a_stub_answer_function_is_not_done_yet():
    def choice():
        raise NotImplementedError()

    for check in (nb01.check_why_second_client_waited, nb05.check_model_choices):
        verdict = check.verdict(choice)
        assert "not done yet" in verdict.text, verdict.text
    assert "not done yet" in nb04.check_prediction.verdict("spin_one_client", choice).text


@pytest.mark.parametrize(
    "check, wrong",
    [
        (nb01.check_recv_exactly_timeout, "recv_exactly_timeout"),
        (nb02.check_recv_nonblocking, 42),
        (nb03.check_send_pending, None),
        (nb03.check_accept_new, []),
        (nb04.check_select_round, {"a": 1}),
        (nb05.check_idle_timeout, SelectorsServer()),
    ],
)
def test_wrong_types_get_a_verdict(check, wrong):
    verdict = check.verdict(wrong)
    assert not verdict.passed and "expected a" in verdict.text, verdict.text


def test_a_learner_server_class_that_is_not_a_server_gets_a_verdict():
    class NotAServer:
        def __init__(self, idle_timeout):
            self.idle_timeout = idle_timeout

    verdict = nb05.check_idle_timeout.verdict(NotAServer)
    assert not verdict.passed
    assert "Traceback" not in verdict.text
