"""The checkers of notebook 05 pass the reference solutions and fail, with their hint, on the
typical wrong answers: a wrong model; a select() without timeout, or clocks looked at only for
the ready sockets (idle clients never closed); activity never noted (busy clients closed);
closing without unregistering (the loop crashes); and the unsolved stubs."""
import time

import pytest

from nbio_helpers import SelectorsServer
from nbio_helpers.connection import Connection, accept_all
from nbio_helpers.exercises import FAIL_PREFIX, PASS_PREFIX
from nbio_helpers.exercises.nb05 import SCENARIOS, check_idle_timeout, check_model_choices
from nbio_helpers.models.selectors_model import READ

pytestmark = pytest.mark.timeout(60)

RIGHT = {"game_loop": "polling", "chat_server": "selectors", "legacy_driver": "threads"}


# ---------------------------------------------------------------- the idle-timeout server
class Reference(SelectorsServer):
    """The notebook's solution, verbatim."""

    def __init__(self, *args, idle_timeout: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_timeout = idle_timeout

    def serve(self) -> None:
        self.listener.setblocking(False)
        with self.selector_class() as sel:
            sel.register(self.listener, READ, data="listener")
            sel.register(self.waker, READ, data="waker")
            while not self.stopping:
                # A timeout: the loop must look at the clocks even when nobody talks.
                for key, mask in sel.select(timeout=self.idle_timeout / 4):
                    if key.data == "listener":
                        for conn in accept_all(self):
                            conn.last_active = time.monotonic()
                            sel.register(conn.sock, READ, data=conn)
                    elif key.data == "waker":
                        self.drain_waker()
                    else:
                        key.data.last_active = time.monotonic()
                        self.serve_connection(sel, key, mask)
                now = time.monotonic()
                for key in list(sel.get_map().values()):
                    conn = key.data
                    if isinstance(conn, Connection) and now - conn.last_active > self.idle_timeout:
                        sel.unregister(conn.sock)
                        conn.close("idle for too long")


def variant(*, no_timeout=False, never_touch=False, no_unregister=False, too_eager=False,
            only_ready=False):
    """The reference with one typical mistake switched on."""

    class Variant(Reference):
        def serve(self) -> None:
            self.listener.setblocking(False)
            with self.selector_class() as sel:
                sel.register(self.listener, READ, data="listener")
                sel.register(self.waker, READ, data="waker")
                while not self.stopping:
                    timeout = None if no_timeout else self.idle_timeout / 4
                    ready = sel.select(timeout=timeout)
                    for key, mask in ready:
                        if key.data == "listener":
                            for conn in accept_all(self):
                                conn.last_active = time.monotonic()
                                sel.register(conn.sock, READ, data=conn)
                        elif key.data == "waker":
                            self.drain_waker()
                        else:
                            if not never_touch:
                                key.data.last_active = time.monotonic()
                            self.serve_connection(sel, key, mask)
                    now = time.monotonic()
                    limit = 0 if too_eager else self.idle_timeout
                    keys = [key for key, _ in ready] if only_ready else sel.get_map().values()
                    for key in list(keys):
                        conn = key.data
                        if isinstance(conn, Connection) and now - conn.last_active > limit:
                            if not no_unregister:
                                sel.unregister(conn.sock)
                            conn.close("idle for too long")

    return Variant


class Stub(SelectorsServer):
    """The student edition: the solution region replaced by NotImplementedError."""

    def __init__(self, *args, idle_timeout: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_timeout = idle_timeout

    def serve(self) -> None:
        raise NotImplementedError


def verdict(capsys):
    return capsys.readouterr().out


def test_reference_passes(capsys):
    assert check_idle_timeout.report(Reference) is True
    assert verdict(capsys).startswith(PASS_PREFIX)


@pytest.mark.slow
@pytest.mark.parametrize("wrong, hint", [
    (variant(no_timeout=True), "give select() a timeout"),
    (variant(only_ready=True), "not only the ready ones"),
    (variant(never_touch=True), "last activity"),
    (variant(no_unregister=True), "unregister"),
    (variant(too_eager=True), "sooner than idle_timeout"),
    (SelectorsServer, "keep the __init__ that takes idle_timeout"),
])
def test_wrong_answers_fail_with_their_hint(capsys, wrong, hint):
    assert check_idle_timeout.report(wrong) is False
    out = verdict(capsys)
    assert out.startswith(FAIL_PREFIX) and hint in out, out


def test_stub_is_not_done_yet(capsys):
    assert check_idle_timeout.report(Stub) is False
    assert "not done yet" in verdict(capsys)


def test_not_a_class(capsys):
    assert check_idle_timeout.report(Reference()) is False
    assert "expected a class" in verdict(capsys)


# ---------------------------------------------------------------- choosing a model
def test_right_choices_pass_with_explanations(capsys):
    assert check_model_choices.report(RIGHT) is True
    out = verdict(capsys)
    assert out.startswith(PASS_PREFIX)
    for key in SCENARIOS:
        assert f"- {key}: " in out
    assert check_model_choices.report(dict(RIGHT, chat_server=" asyncio ")) is True


@pytest.mark.parametrize("answers, expected", [
    (dict(RIGHT, chat_server="select"), "FD_SETSIZE"),
    (dict(RIGHT, chat_server="threads"), "10,000 threads"),
    (dict(RIGHT, legacy_driver="asyncio"), "stops the whole event loop"),
    (dict(RIGHT, game_loop="blocking"), "freeze"),
    (dict(RIGHT, game_loop="epoll"), "is not a model name"),
    ({"game_loop": "polling"}, "no answer for chat_server, legacy_driver"),
    ("polling", "expected a dict"),
])
def test_wrong_choices_fail_with_their_hint(capsys, answers, expected):
    assert check_model_choices.report(answers) is False
    out = verdict(capsys)
    assert out.startswith(FAIL_PREFIX) and expected in out, out


def test_unanswered_choices_are_not_done_yet(capsys):
    assert check_model_choices.report({key: ... for key in SCENARIOS}) is False
    assert "not done yet" in verdict(capsys)
