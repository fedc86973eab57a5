"""Checkers for notebook 06 (build your own event loop).

* :func:`check_framer` — exercise 1, the line framer: ``MyFramer(max_line).feed(data)``.
* :func:`check_timer_loop` — exercise 2, the timer heap: ``MyTimerLoop``'s ``call_later``,
  ``timeout`` and ``run_timers``, first on a clock of the checker's, then live.
* :func:`check_chat_handler` — exercise 3, ``async def my_chat(room, client)`` on our loop,
  against real clients.
* :func:`try_on_asyncio` — the learner's handler, unchanged, on asyncio (a demo cell).

Usage in the notebook::

    from nbio_helpers.exercises.nb06 import check_framer, check_timer_loop, check_chat_handler
    check_framer(MyFramer)
    check_timer_loop(MyTimerLoop)
    check_chat_handler(my_chat)

The rules each exercise states, and the checker enforces
---------------------------------------------------------
Exercise 1, ``feed(data) -> list of lines`` (``max_line`` = 16 in the checks, and the default
1024 once):

1. it returns the lines that ``data`` completes, as bytes (``bytes`` or ``bytearray``), in a
   list, without their ``\\n``; the partial last line is kept for the next call, so any split
   of a stream gives the same lines;
2. one ``\\r`` right before a ``\\n`` is removed too; any other ``\\r`` is data;
3. an empty line is a line: ``b""``; spaces and tabs are data;
4. bytes are never decoded (a UTF-8 character split between two calls, ``b"\\xff"``);
5. a line longer than ``max_line`` bytes (its ``\\n`` or ``\\r\\n`` not counted) raises
   ``LineTooLong(self.max_line)``; a line of exactly ``max_line`` bytes is fine; the partial
   line may not grow beyond ``max_line + 1`` bytes (a line of ``max_line`` bytes and the
   ``\\r`` of its ``\\r\\n``): raise as soon as it would, without waiting for a ``\\n``.

Typical mistakes, each rejected with a hint naming it: splitting each chunk on its own (a
line cut in two by ``recv()`` comes back in pieces); returning the partial line; dropping it;
``splitlines()`` (splits on a lone ``\\r``); ``strip()`` (eats spaces and tabs); stripping
every ``\\r``; dropping empty lines; decoding; not returning a list (None, a generator, str);
the limit checked only on complete lines (an endless line grows without bound); ``>=``
instead of ``>``; counting the ``\\r\\n``; ``ValueError`` instead of ``LineTooLong``.

Exercise 2, ``MyTimerLoop(GeneratorLoop)``: ``call_later``, ``timeout``, ``run_timers``:

1. ``call_later(delay, callback, *args)`` returns the Timer (``cancel()``-able); the clock
   is ``self.time()`` (the checker gives the loop a clock of its own);
2. timers fire earliest deadline first, equal deadlines in the order they were set, each
   once, never before its deadline, a cancelled one never;
3. ``timeout()`` is 0 while callbacks are ready (``self.ready``), else the seconds until the
   earliest timer not cancelled (never negative), else None;
4. a timer set by a timer's callback (even with delay 0) waits for the next turn;
5. live, an idle loop sleeps: with one timer 0.5 s away, at most :data:`SPIN_CALLS` (50)
   ``select()`` calls in :data:`IDLE_WINDOW` (0.3 s) and at most 30 % of a core (a sleeping
   loop makes one or two calls and uses nothing; a spinning one makes thousands);
6. live, timers fire on time: never early, and their median lateness at most
   :data:`TIMER_TOLERANCE` (50 ms); a generator task's ``yield "sleep", s`` too.

Typical mistakes: ``timeout()`` returning 0 whenever a timer exists (the loop spins), the
delay as given, the latest or first-set deadline, a negative timeout, forgetting
``self.ready``, cancelled timers counted or fired, ``time.monotonic()`` instead of
``self.time()``, tuples ``(when, callback)`` (``TypeError`` on a tie), ties out of order, a
list that is not a heap, ``run_timers`` running the timers its callbacks set (endless with
delay 0), timers fired early or twice, ``call_later`` returning None.

Exercise 3, ``async def my_chat(room, client)``:

1. greet (``room.welcome``); read a name; while ``room.name_problem(name)`` is not None,
   ``client.say()`` it and read another;
2. then ``room.join(client, name)`` and pass each line to ``room.hear()`` until it returns
   False (``/quit``) or ``readline()`` returns None;
3. return when ``readline()`` returns None, also before a name was given;
4. ``room.leave(client)`` once joined, however the conversation ends: a ``try``/``finally``
   (``readline()`` raises ``LineTooLong`` and, on a server with an idle timeout,
   ``TimeoutError``: let them propagate, the server answers them);
5. never block: await only what ``client`` gives (no ``time.sleep()``, no blocking socket
   call, no asyncio); no step between two awaits may hold the loop :data:`BLOCK_LIMIT` s.

The server that runs it has no safety net (it does not call ``room.leave`` itself). The
scenarios: names (invalid, taken, good), broadcast, ``/who``, a client sending byte by byte
with ``\\r\\n``, 10 clients joining at once, a client vanishing mid-line (its name free
again), one leaving before naming itself, ``/quit``, an over-long line, an idle timeout.
Typical mistakes: ``time.sleep()`` (or a blocking ``recv()``), ``asyncio.sleep()``, a
missing ``await``, a plain ``def``, the name asked once, ``name_problem`` not checked, None
not handled (a crash, or an endless loop), no ``try``/``finally``, ``hear()``'s False
ignored, ``except Exception`` swallowing ``LineTooLong`` or ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import random
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Callable

from nbio_helpers.events import CLOSE, ERROR
from nbio_helpers.exercises import (
    NOT_IMPLEMENTED_HINT,
    NOT_IMPLEMENTED_MESSAGE,
    LearnerStopped,
    LearnerThread,
    NotYet,
    base_exception_failure,
    checker,
    describe_exception,
    guarded,
    judge,
    judge_error,
    requires_exercise,
    run_learner,
    stop_learner_code,
    where,
)
from nbio_helpers.framing import LineTooLong
from nbio_helpers.loop.chat import (
    ALONE,
    ASK_NAME,
    BAD_NAME,
    BYE,
    HELLO,
    IDLE,
    JOINED,
    LEFT,
    NAME_TAKEN,
    OTHERS,
    TOO_LONG,
    WHO,
    error_line,
)
from nbio_helpers.loop.chat_asyncio import AsyncioChatServer
from nbio_helpers.loop.chat_coroutines import CoroutineChatServer
from nbio_helpers.loop.generators import GeneratorLoop
from nbio_helpers.loop.record import LoopLog, RecordingSelector, recording
from nbio_helpers.loop.talk import ChatClient
from nbio_helpers.server import wait_until

# ======================================================================= exercise 1
FRAMER_LIMIT = 16
"""The ``max_line`` the framer checks use (small: over-long lines are cheap to make)."""

FEED_HANG_HINT = (
    "feed() only looks at the bytes it was given and returns at once: never "
    "wait or loop for more data in it."
)
PARTIAL_HINT = (
    "a line is complete only once its b'\\n' has arrived: keep what comes after "
    "the last b'\\n' in self.buffer, and put the next bytes after it."
)
SPLIT_HINT = (
    "a line cut in two by recv() came back in pieces: TCP delivers bytes, not "
    "lines. Add data to self.buffer, split the buffer, and keep the last piece "
    "(the partial line) for the next call."
)
DECODE_HINT = (
    "never decode in the framer: return bytes. A UTF-8 character can be cut "
    "between two recv()s, and b'\\xff' is no UTF-8 at all; the protocol above "
    "decodes whole lines."
)
LIMIT_HINT = (
    "raise LineTooLong(self.max_line) for a line longer than self.max_line bytes, "
    "not counting its b'\\n' or b'\\r\\n'."
)


def _size(value, depth: int = 0) -> int:
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if depth == 0 and isinstance(value, (list, tuple, collections.deque)):
        return sum(_size(item, 1) for item in value)
    return 0


def held_bytes(framer) -> int:
    """Bytes (or characters) the framer keeps between calls: every bytes-like attribute, and
    lists of them (``self.buffer``, whatever its name)."""
    return sum(
        _size(value)
        for name, value in getattr(framer, "__dict__", {}).items()
        if name != "max_line"
    )


def _show(data, width: int = 40) -> str:
    text = repr(data)
    return text if len(text) <= width else text[: width - 4] + "...'"


def _feed_all(framer, chunks, trace) -> None:
    """Runs in the learner thread: feed each chunk, note each result and what is kept."""
    for chunk in chunks:
        out = framer.feed(chunk)
        # A copy: a framer that returns (then empties) a list of its own keeps what it gave.
        trace.append((list(out) if isinstance(out, list) else out, held_bytes(framer)))


def _make_framer(cls, max_line: int | None):
    args = () if max_line is None else (max_line,)
    label = f"{getattr(cls, '__name__', 'MyFramer')}({'' if max_line is None else max_line})"
    outcome = run_learner(cls, *args, limit=2.0, name=label)
    judge(outcome, label, limit=2.0, hang_hint="keep the __init__ as it was given.")
    if outcome.error is not None:
        raise NotYet(
            f"{label} raised {describe_exception(outcome.error)}",
            "keep the __init__ as it was given: it stores max_line and an empty buffer.",
        )
    framer = outcome.value
    if not callable(getattr(framer, "feed", None)):
        raise NotYet(f"{label} has no feed() method", "keep the feed(self, data) method.")
    return framer


def _lines_of(out, chunk) -> list:
    """``out`` as a list of bytes-likes, or NotYet saying what feed() returned instead."""
    call = f"feed({_show(chunk)})"
    if out is None:
        raise NotYet(
            f"{call} returned None",
            "return the list of the lines it completed: [] when it completed none.",
        )
    if inspect.isgenerator(out) or not isinstance(out, list):
        raise NotYet(
            f"{call} returned {type(out).__name__}, not a list",
            "return a list of lines (a generator would run your code later, "
            "outside feed(), and can be read only once).",
        )
    for item in out:
        if isinstance(item, str):
            raise NotYet(f"{call} returned text (str): {_show(out)}", DECODE_HINT)
        if isinstance(item, int):
            raise NotYet(
                f"{call} returned a list of int: {_show(out)}",
                "iterating over bytes gives ints: split the bytes with .split(b'\\n') instead.",
            )
        if not isinstance(item, (bytes, bytearray)):
            raise NotYet(
                f"{call} returned a list of {type(item).__name__}", "return the lines as bytes."
            )
    return [bytes(item) for item in out]


def _feed(framer, chunks, what: str, *, expect_error: bool = False):
    """Feed ``chunks`` in one learner call. Returns ``(outputs, error, held)``: the lines of
    each feed that returned, the Exception a feed raised (then the outputs stop there) and
    the bytes held after each feed."""
    trace: list = []
    outcome = run_learner(_feed_all, framer, chunks, trace, limit=2.0, name="feed")
    judge(outcome, f"feed() ({what})", limit=2.0, hang_hint=FEED_HANG_HINT)
    outputs = [_lines_of(out, chunk) for (out, _), chunk in zip(trace, chunks)]
    held = [h for _, h in trace]
    error = outcome.error
    if error is not None and not expect_error:
        chunk = chunks[len(trace)]
        if isinstance(error, UnicodeError):
            raise NotYet(
                f"feed({_show(chunk)}) raised {describe_exception(error)} ({what})", DECODE_HINT
            )
        if isinstance(error, (LineTooLong, ValueError)):
            raise NotYet(
                f"feed({_show(chunk)}) raised {describe_exception(error)} ({what}), "
                f"though no line there is longer than max_line",
                "only a line longer than max_line is an error; a line of exactly "
                "max_line bytes is fine, and its b'\\n' or b'\\r\\n' does not count.",
            )
        raise NotYet(
            f"feed({_show(chunk)}) raised {describe_exception(error)} ({what})",
            "read the error, fix feed(), run its cell again.",
        )
    return outputs, error, held


def _flat(outputs) -> list[bytes]:
    return [line for out in outputs for line in out]


def _expect_lines(framer, chunks, want, what: str, hint_for) -> list:
    """Feed ``chunks``; the lines of each call must be ``want`` (a list per chunk)."""
    outputs, _, _ = _feed(framer, chunks, what)
    if outputs != want:
        at = next(i for i, (got, exp) in enumerate(zip(outputs, want)) if got != exp)
        raise NotYet(
            f"{what}: feed({_show(chunks[at])}) returned {_show(outputs[at], 70)}, "
            f"expected {_show(want[at], 70)}",
            hint_for(chunks, outputs, want, at),
        )
    return outputs


def _split_hint(chunks, outputs, want, at) -> str:
    got, exp = outputs[at], want[at]
    if not exp and got:
        return PARTIAL_HINT
    if (
        exp
        and got
        and len(got) == len(exp)
        and any(e.endswith(g) and e != g for g, e in zip(got, exp))
    ):
        return SPLIT_HINT
    if not got and exp:
        return (
            "the partial line kept from the calls before was lost: keep it in "
            "self.buffer and put the new bytes after it."
        )
    return SPLIT_HINT


def _ending_hint(chunks, outputs, want, at) -> str:
    got, exp = outputs[at], want[at]
    if any(g.endswith(b"\r") for g in got):
        return "one b'\\r' right before the b'\\n' is part of the line ending: remove it too."
    if len(got) > len(exp):
        return (
            "a b'\\r' alone is data, not a line ending (splitlines() splits on it): split "
            "on b'\\n' only, then remove one b'\\r' at the end of a line."
        )
    if len(got) < len(exp) and b"" in exp:
        return "an empty line is a line: return it as b''."
    if [g.replace(b"\r", b"") for g in got] == [e.replace(b"\r", b"") for e in exp]:
        return (
            "remove only the one b'\\r' right before the b'\\n': any other b'\\r' is data "
            "(replace() or strip(b'\\r') removes them all)."
        )
    return "split on b'\\n' only; remove one b'\\r' at the end of a line; keep every other byte."


def _strip_hint(chunks, outputs, want, at) -> str:
    return (
        "spaces and tabs are data: strip() and rstrip() remove them. Remove the line "
        "ending only: the b'\\n', and one b'\\r' before it."
    )


def _empty_hint(chunks, outputs, want, at) -> str:
    got = outputs[at]
    if len(got) < len(want[at]):
        return (
            "an empty line is a line: return it as b'' (what to do with it is the "
            "protocol's business)."
        )
    return _split_hint(chunks, outputs, want, at)


def _bytes_hint(chunks, outputs, want, at) -> str:
    return DECODE_HINT


def _stream(rng: random.Random, lines: int) -> tuple[bytes, list[bytes]]:
    """A random stream of lines (as a client could send them) and the lines it holds."""
    alphabet = b"abc xyz\t\r-\xc3\xa9\xff\x00"
    stream, expected = bytearray(), []
    for _ in range(lines):
        size = rng.choice([0, 0, 1, 3, 8, FRAMER_LIMIT - 1, FRAMER_LIMIT])
        line = bytes(rng.choice(alphabet) for _ in range(size))
        if line.endswith(b"\r"):
            line = line[:-1] + b"."  # a line never ends in \r before \n here
        expected.append(line)
        stream += line + (b"\r\n" if rng.random() < 0.4 else b"\n")
    return bytes(stream), expected


def _random_chunks(rng: random.Random, stream: bytes) -> list[bytes]:
    chunks, at = [], 0
    while at < len(stream):
        size = rng.choice([1, 1, 2, 3, 5, 8, 13, 21, 40])
        chunks.append(stream[at : at + size])
        at += size
    return chunks


@checker
def check_framer(framer_class):
    """Exercise 1: ``framer_class(max_line).feed(data)`` against every split and the limit."""
    if not isinstance(framer_class, type):
        raise NotYet(
            f"expected a class, got {type(framer_class).__name__}",
            "pass the class itself: check_framer(MyFramer).",
        )
    limit = FRAMER_LIMIT
    make = lambda: _make_framer(framer_class, limit)  # noqa: E731

    _expect_lines(
        make(),
        [b"hel", b"lo\nwor", b"ld\n"],
        [[], [b"hello"], [b"world"]],
        "a line cut in two by recv()",
        _split_hint,
    )
    _expect_lines(
        make(),
        [b"one\ntwo\n\nthree\nfo", b"ur\n"],
        [[b"one", b"two", b"", b"three"], [b"four"]],
        "many lines in one chunk, an empty one among them",
        _empty_hint,
    )
    _expect_lines(
        make(),
        [b"  two\t spaces \n"],
        [[b"  two\t spaces "]],
        "a line with spaces and a tab",
        _strip_hint,
    )
    _expect_lines(
        make(),
        [b"crlf\r\n", b"cut\r", b"\n", b"a\rb\n", b"two\r\r\n"],
        [[b"crlf"], [], [b"cut"], [b"a\rb"], [b"two\r"]],
        "\\r\\n line endings (one cut between two chunks) and \\r as data",
        _ending_hint,
    )
    _expect_lines(
        make(),
        [b"caf\xc3\xa9 \xff\xfe\n", b"\xc3", b"\xa9\n"],
        [[b"caf\xc3\xa9 \xff\xfe"], [], [b"\xc3\xa9"]],
        "bytes that are not UTF-8, and a UTF-8 character cut in two",
        _bytes_hint,
    )
    stream = b"ann\r\nhi all\r\n\nbye\n"
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    want: list[list[bytes]] = [[] for _ in chunks]
    for i, line in zip((4, 12, 13, 17), (b"ann", b"hi all", b"", b"bye")):
        want[i] = [line]
    _expect_lines(make(), chunks, want, "a client sending byte by byte", _split_hint)

    _check_limit(framer_class, limit)
    rng = random.Random(6)
    for attempt in range(25):
        stream, expected = _stream(rng, 30)
        chunks = _random_chunks(rng, stream)
        outputs, _, held = _feed(make(), chunks, "random splits")
        got = _flat(outputs)
        if got != expected:
            at = next(
                (i for i, (g, e) in enumerate(zip(got, expected)) if g != e),
                min(len(got), len(expected)),
            )
            raise NotYet(
                f"a stream of {len(expected)} lines cut at random places (attempt "
                f"{attempt + 1}) gave other lines: line {at + 1} came out as "
                f"{_show(got[at] if at < len(got) else 'nothing')}, expected "
                f"{_show(expected[at] if at < len(expected) else 'nothing')}",
                "whatever the cuts, the same lines must come out: split the buffer "
                "(old partial line + new bytes) on b'\\n', keep the last piece.",
            )
        if max(held, default=0) > limit + 1:
            raise NotYet(
                f"with lines of at most max_line={limit} bytes, your framer kept "
                f"{max(held)} bytes between two calls",
                "keep only the partial line: the bytes after the last b'\\n'.",
            )
    return (
        f"lines came out whole for every split (byte by byte, many at once, \\r\\n cut in "
        f"two, 25 random streams), bytes untouched, and a line over max_line={limit} "
        f"raised LineTooLong, with never more than max_line + 1 bytes kept"
    )


def _too_long(error, limit: int, what: str) -> None:
    """``error`` (raised by feed) must be LineTooLong(limit)."""
    if isinstance(error, LineTooLong):
        if error.max_line != limit:
            raise NotYet(
                f"{what}: LineTooLong({error.max_line}) was raised, with max_line={limit}",
                "raise LineTooLong(self.max_line).",
            )
        return
    if isinstance(error, UnicodeError):
        raise NotYet(f"{what}: feed() raised {describe_exception(error)}", DECODE_HINT)
    raise NotYet(
        f"{what}: feed() raised {describe_exception(error)}, not LineTooLong",
        "raise LineTooLong(self.max_line) (from nbio_helpers.framing): the server "
        "catches that one, answers the client and closes the connection.",
    )


def _expect_too_long(
    framer_class,
    limit: int,
    data: bytes,
    *,
    what: str,
    accepted: tuple[str, str],
    feeding: str | None = None,
) -> None:
    """``data`` fed at once to a new framer (``max_line=limit``) must raise
    ``LineTooLong(limit)`` (:func:`_too_long` says ``what`` it was). ``accepted``: the
    (message, hint) if it did not raise; ``feeding``: what :func:`_feed` calls the call
    (default ``what``)."""
    _, error, _ = _feed(
        _make_framer(framer_class, limit), [data], feeding or what, expect_error=True
    )
    if error is None:
        raise NotYet(*accepted)
    _too_long(error, limit, what)


def _check_limit(framer_class, limit: int) -> None:
    exact = b"x" * limit
    chunks = [bytes([b]) for b in exact + b"\r\n"]
    outputs, error, _ = _feed(
        _make_framer(framer_class, limit),
        chunks,
        f"a line of exactly max_line={limit} bytes, then \\r\\n, byte by byte",
        expect_error=True,
    )
    if error is not None:
        _one_chunk, error2, _ = _feed(
            _make_framer(framer_class, limit), [exact + b"\n"], "", expect_error=True
        )
        if error2 is not None:
            raise NotYet(
                f"a line of exactly max_line={limit} bytes raised {type(error2).__name__}",
                "the longest line allowed is max_line bytes: raise only when a line "
                "is longer, len(line) > self.max_line (not >=).",
            )
        raise NotYet(
            f"a line of exactly max_line={limit} bytes followed by \\r\\n, sent byte "
            f"by byte, raised {type(error).__name__} when its \\r came",
            "the \\r\\n does not count: a partial line of max_line + 1 bytes may "
            "still be a good line whose \\r has come before its \\n; raise only "
            "beyond that (or when its last byte is not \\r).",
        )
    if _flat(outputs) != [exact]:
        raise NotYet(
            f"a line of exactly max_line={limit} bytes, sent byte by byte with "
            f"\\r\\n, came out as {_show(_flat(outputs))}",
            SPLIT_HINT,
        )

    over = b"y" * (limit + 1)
    _expect_too_long(
        framer_class,
        limit,
        over + b"\n",
        feeding=f"a line of max_line + 1 = {limit + 1} bytes",
        what=f"a line of {limit + 1} bytes",
        accepted=(f"a line of {limit + 1} bytes (max_line={limit}) was accepted", LIMIT_HINT),
    )
    _expect_too_long(
        framer_class,
        limit,
        over + b"\r\n",
        what=f"a line of {limit + 1} bytes and \\r\\n",
        accepted=(
            f"a line of {limit + 1} bytes followed by \\r\\n (max_line={limit}) was accepted",
            "remove the \\r before you measure the line: len(line) > self.max_line is too long.",
        ),
    )

    endless = [b"z" * 8] * 64
    must_by = (limit + 2 + 7) // 8  # the feed that makes the partial max_line + 2
    outputs, error, held = _feed(
        _make_framer(framer_class, limit),
        endless,
        "a line that never ends, 8 bytes at a time",
        expect_error=True,
    )
    if error is None:
        raise NotYet(
            f"a line that never ends was fed 8 bytes at a time, {len(endless) * 8} "
            f"bytes in all (max_line={limit}), and feed() never raised: a client that "
            "never sends \\n would make the buffer grow without bound",
            "check the length of the partial line too: raise LineTooLong as soon "
            "as it holds more than max_line + 1 bytes, without waiting for its \\n.",
        )
    _too_long(error, limit, "a line that never ends")
    if len(outputs) + 1 > must_by:
        raise NotYet(
            f"a line that never ends (max_line={limit}) raised LineTooLong only "
            f"after {(len(outputs) + 1) * 8} bytes",
            "raise as soon as the partial line holds more than max_line + 1 bytes: "
            "that bounds the memory a client can make the server use.",
        )
    if held and max(held) > limit + 1:
        raise NotYet(
            f"while a line that never ends came in, your framer kept {max(held)} "
            f"bytes (max_line={limit})",
            "keep only the partial line, and never more than max_line + 1 bytes.",
        )

    default = _make_framer(framer_class, None)
    outputs, error, _ = _feed(
        default, [b"d" * 1024 + b"\n"], "the default max_line of 1024", expect_error=True
    )
    if error is not None or _flat(outputs) != [b"d" * 1024]:
        raise NotYet(
            "with the default max_line (1024), a line of 1024 bytes did not come out",
            "keep __init__(self, max_line=1024) and compare with self.max_line.",
        )
    _, error, _ = _feed(
        _make_framer(framer_class, None),
        [b"d" * 1025 + b"\n"],
        "the default max_line",
        expect_error=True,
    )
    if error is None:
        raise NotYet(
            "with the default max_line (1024), a line of 1025 bytes was accepted",
            "compare with self.max_line, not a number of your own.",
        )


# ======================================================================= exercise 2
TIMER_TOLERANCE = 0.05
"""Seconds a timer may fire after its deadline on an idle loop (median of the checker's)."""

STUCK_AFTER = 1.0
"""A call_later/timeout/run_timers call still running after this many seconds is stuck."""

SPIN_CALLS = 50
"""More select() calls than this in :data:`IDLE_WINDOW` seconds with one far timer = spinning."""

IDLE_WINDOW = 0.3
LEARNER_METHODS = ("call_later", "timeout", "run_timers")

TIMER_HANG_HINTS = {
    "run_timers": (
        "take out every timer that is due first, then call them: a callback that "
        "sets a new timer (even with delay 0) must not be called in the same "
        "run_timers(), or a timer that sets itself again never lets it return."
    ),
    "timeout": (
        "timeout() only computes a number: never wait or loop on the clock in it "
        "(select() does the waiting)."
    ),
    "call_later": "call_later() only pushes a Timer on the heap and returns it.",
}
SPIN_HINT = (
    "select() may sleep until the earliest deadline: timeout() returns the seconds "
    "until it (earliest.when - self.time()), not 0."
)
CLOCK_HINT = (
    "the loop's clock is self.time(): use it for the deadline (self.time() + delay) "
    "and for 'now', not time.monotonic() (the checker gives your loop a clock of "
    "its own)."
)
HEAP_HINT = (
    "keep self.timers a heap: heapq.heappush(self.timers, timer), and the earliest "
    "deadline is always self.timers[0]."
)


class LearnerCalls:
    """Which of the learner's methods each thread is in, and since when."""

    def __init__(self):
        self.stacks: dict[int, list] = {}

    def wrap(self, name: str, fn):
        inner = guarded(fn, name=name)

        def call(*args, **kwargs):
            stack = self.stacks.setdefault(threading.get_ident(), [])
            stack.append((name, time.monotonic()))
            try:
                return inner(*args, **kwargs)
            finally:
                stack.pop()

        call.__name__ = name
        return call

    def stuck(self, limit: float = STUCK_AFTER) -> str | None:
        """The name of a learner method running for more than ``limit`` s, if any."""
        now = time.monotonic()
        for stack in list(self.stacks.values()):
            for name, started in list(stack):
                if name in LEARNER_METHODS and now - started > limit:
                    return name
        return None


def _timer_loop(cls, calls: LearnerCalls, selector=None):
    """Build the learner's loop (in the calling learner thread) with its methods wrapped."""
    loop = cls(selector)
    if not isinstance(loop, GeneratorLoop):
        _loop_close(loop)
        raise NotYet(
            f"{cls.__name__} is not a GeneratorLoop",
            "keep the class line as given: class MyTimerLoop(GeneratorLoop).",
        )
    for name in (*LEARNER_METHODS, "run_once"):
        method = getattr(loop, name, None)
        if not callable(method):
            _loop_close(loop)
            raise NotYet(f"{cls.__name__} has no {name}() method", f"write {name}().")
        setattr(loop, name, calls.wrap(name, method))
    return loop


def _loop_close(loop) -> None:
    with contextlib.suppress(Exception):
        loop.selector.close()


CLOCK_AHEAD = 1_000_000.0
"""Seconds the checker's clock starts ahead of ``time.monotonic()``: far enough that a loop
reading the system's clock instead is caught whatever the machine's uptime (a clock that
started at a fixed 1000.0 let a loop using ``time.monotonic()`` on a machine up for less
than 1000 s clamp its timeout to 0, and get the spinning hint instead of the clock's)."""


class _Clock:
    """A clock of the checker's: the learner's loop must read time through ``self.time()``."""

    def __init__(self, now: float | None = None):
        self.now = time.monotonic() + CLOCK_AHEAD if now is None else now

    def __call__(self) -> float:
        return self.now


class _Step:
    """What a check on the checker's clock is doing now: ``step("timeout() with ...")``."""

    def __init__(self) -> None:
        self.text = ""

    def __call__(self, text: str) -> None:
        self.text = text


@contextlib.contextmanager
def _on_checker_clock(cls, calls: LearnerCalls):
    """For a check that runs in a learner thread: the learner's loop, built there
    (:func:`_timer_loop`), on a :class:`_Clock` of the checker's. Yields ``(loop, clock,
    step)``; an exception other than a :class:`_Failed` that escapes the block carries, as
    ``doing``, the text of the last ``step(...)`` (:func:`_run_timer_scenario` names it).
    The loop's selector is closed at the end."""
    loop = _timer_loop(cls, calls)
    clock = loop.time = _Clock()
    step = _Step()
    try:
        yield loop, clock, step
    except Exception as exc:
        if not isinstance(exc, _Failed):
            setattr(exc, "doing", step.text)  # noqa: B010 - any exception: read with getattr
        raise
    finally:
        _loop_close(loop)


def _run_timer_scenario(scenario, cls, calls: LearnerCalls, what: str):
    """Run one of the checker's scenarios (which calls the learner's methods) in a learner
    thread; turn what went wrong into a NotYet."""
    stuck = []

    def give_up():
        name = calls.stuck()
        if name:
            stuck.append(name)
            return f"did not return within {STUCK_AFTER:g} s"
        return ""

    outcome = run_learner(scenario, cls, calls, limit=4.0, name=what, give_up=give_up)
    if outcome.timed_out:
        name = stuck[0] if stuck else "your loop"
        limit = STUCK_AFTER if stuck else 4.0
        raise NotYet(
            f"{name}() did not return within {limit:g} s"
            + ("" if stuck else f" ({what})")
            + (f": it was still running {outcome.where}" if outcome.where else ""),
            TIMER_HANG_HINTS.get(name, TIMER_HANG_HINTS["timeout"]),
        )
    if outcome.base_error is not None:
        raise NotYet(*base_exception_failure(f"your loop ({what})", outcome.base_error))
    error = outcome.error
    if error is not None:
        judge_error(error, f"{getattr(error, 'doing', what)}: your code")
    if isinstance(error, NotYet):
        raise error
    if isinstance(error, _Failed):
        raise error.not_yet()
    if error is not None:
        raise _timer_error(error, getattr(error, "doing", what))
    return outcome.value


class _Failed(Exception):
    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message, self.hint = message, hint

    def not_yet(self) -> NotYet:
        return NotYet(self.message, self.hint)


def _timer_error(error: BaseException, doing: str) -> NotYet:
    text = str(error)
    if isinstance(error, TypeError) and "'<' not supported" in text:
        return NotYet(
            f"{doing}: {describe_exception(error)}",
            "heapq compares whole entries: with equal deadlines, a tuple (when, "
            "callback, ...) compares the callbacks, which cannot be compared. Push "
            "Timer(when, order, callback, args): order, from itertools.count(), "
            "breaks ties and keeps equal deadlines in the order they were set.",
        )
    if isinstance(error, ValueError) and "non-negative" in text:
        return NotYet(
            f"{doing}: select() raised {describe_exception(error)}",
            "never give select() a negative timeout: max(0, ...).",
        )
    return NotYet(
        f"{doing}: {describe_exception(error)}",
        "read the error, fix the method, run its cell again.",
    )


def _timeout_checks(cls, calls):
    """Runs in a learner thread: ``timeout()`` and ``call_later()`` on the checker's clock."""
    with _on_checker_clock(cls, calls) as (loop, clock, step):
        step("timeout() with no timer and nothing ready")
        got = loop.timeout()
        if got == 0:
            raise _Failed(
                "with no timer and no callback ready, timeout() returned 0",
                "select(0) returns at once, so a loop with nothing to do would spin "
                "at full CPU: return None (select() then sleeps until a socket is "
                "ready).",
            )
        if got is not None:
            raise _Failed(
                f"with no timer and no callback ready, timeout() returned {got!r}, expected None",
                "None: there is nothing to wait for but sockets.",
            )
        step("timeout() with a callback ready (call_soon)")
        loop.call_soon(lambda: None)
        got = loop.timeout()
        loop.ready.clear()
        if got != 0:
            raise _Failed(
                f"with a callback ready (call_soon) and no timer, timeout() returned "
                f"{got!r}, expected 0",
                "callbacks in self.ready (call_soon, a task to resume) run on the "
                "next turn: timeout() is 0 while self.ready is not empty, or they "
                "would wait for the next socket event.",
            )
        step("call_later(2.5, ...)")
        first = loop.call_later(2.5, lambda: None)
        if not callable(getattr(first, "cancel", None)):
            raise _Failed(
                f"call_later() returned {type(first).__name__}, not the Timer",
                "return the Timer you pushed on the heap: whoever set it may cancel() it.",
            )
        when = getattr(first, "when", None)
        if isinstance(when, (int, float)) and abs(when - (time.monotonic() + 2.5)) < 60:
            raise _Failed("call_later(2.5, ...) set a deadline on time.monotonic()", CLOCK_HINT)
        step("timeout() with one timer due in 2.5 s")
        got = loop.timeout()
        _expect_timeout(got, 2.5, "with one timer due in 2.5 s")
        clock.now += 1.0
        step("timeout() 1 s later")
        _expect_timeout(
            loop.timeout(),
            1.5,
            "1 s after call_later(2.5, ...)",
            mistakes={
                2.5: (
                    "1 s after call_later(2.5, ...), timeout() still returned 2.5",
                    "keep the deadline in the Timer (self.time() + delay), and return "
                    "deadline - self.time(): the time left, not the delay as given.",
                )
            },
        )
        step("call_later() of three more timers")
        loop.call_later(5.0, lambda: None)
        soonest = loop.call_later(0.5, lambda: None)
        loop.call_later(3.0, lambda: None)
        step("timeout() with four timers")
        not_the_earliest = (
            "the loop must wake up for the earliest deadline (the smallest), "
            "self.timers[0] of a heap, not the latest or the last one set."
        )
        _expect_timeout(
            loop.timeout(),
            0.5,
            "with timers due in 1.5, 5, 0.5 and 3 s",
            mistakes={
                1.5: (
                    "with timers due in 1.5, 5, 0.5 and 3 s (set in that order), "
                    "timeout() returned 1.5: the first one set, not the earliest",
                    HEAP_HINT,
                ),
                5.0: (
                    "with timers due in 1.5, 5, 0.5 and 3 s, timeout() returned 5: the "
                    "earliest is due in 0.5 s",
                    not_the_earliest,
                ),
                3.0: (
                    "with timers due in 1.5, 5, 0.5 and 3 s, timeout() returned 3: the "
                    "earliest is due in 0.5 s",
                    not_the_earliest,
                ),
            },
        )
        step("timeout() once the earliest timer was cancelled")
        soonest.cancel()
        _expect_timeout(
            loop.timeout(),
            1.5,
            "with the earliest timer cancelled",
            mistakes={
                0.5: (
                    "the earliest timer was cancelled, and timeout() still returned the "
                    "time until it",
                    "a cancelled timer does not count: pop cancelled timers off the top "
                    "of the heap (timer.cancelled) before you look at self.timers[0].",
                )
            },
        )
        step("timeout() with every timer overdue")
        clock.now += 100.0
        got = loop.timeout()
        if isinstance(got, (int, float)) and got < 0:
            raise _Failed(
                f"with timers already overdue, timeout() returned {got:g}",
                "never negative: max(0, ...). A timer already due means 'do not "
                "sleep'; a negative time to sleep means nothing (the selectors "
                "module reads it as 0, select.select() raises ValueError).",
            )
        if got != 0:
            raise _Failed(
                f"with timers already overdue, timeout() returned {got!r}, expected 0",
                "the time until the earliest deadline, max(0, ...).",
            )
        step("timeout() with only cancelled timers left")
        with _on_checker_clock(cls, calls) as (fresh, _, _):
            a, b = fresh.call_later(1.0, lambda: None), fresh.call_later(2.0, lambda: None)
            a.cancel()
            b.cancel()
            got = fresh.timeout()
        if got is not None:
            raise _Failed(
                f"with only cancelled timers left, timeout() returned {got!r}, expected None",
                "cancelled timers do not count: with none left, "
                "return None, as with no timer at all.",
            )


def _expect_timeout(
    got, want: float, when: str, mistakes: dict[float, tuple[str, str]] | None = None
) -> None:
    """Fail unless ``got``, what ``timeout()`` returned ``when``, is ``want`` seconds.
    ``mistakes`` maps a typical wrong value to its (message, hint), tried first."""
    for wrong, (message, hint) in (mistakes or {}).items():
        if isinstance(got, (int, float)) and abs(got - wrong) < 1e-6:
            raise _Failed(message, hint)
    if got is None:
        raise _Failed(
            f"{when}, timeout() returned None",
            "None lets select() sleep until a socket is ready, past the timer's "
            "deadline: return the seconds until the earliest timer.",
        )
    if not isinstance(got, (int, float)):
        raise _Failed(
            f"{when}, timeout() returned {type(got).__name__}, not a number",
            "return a number of seconds (or None).",
        )
    if got == 0 and want > 0:
        raise _Failed(
            f"{when} and nothing else to do, timeout() returned 0: the loop would spin until then",
            SPIN_HINT,
        )
    if abs(got - want) > 1e-6:
        if abs(got - want) > 100 or got < 0:
            raise _Failed(f"{when}, timeout() returned {got:g} (expected {want:g})", CLOCK_HINT)
        raise _Failed(
            f"{when}, timeout() returned {got:g}, expected {want:g}",
            "the seconds from now (self.time()) until the earliest deadline.",
        )


def _run_timers_checks(cls, calls):
    """Runs in a learner thread: ``run_timers()`` on the checker's clock."""
    fired: list[str] = []
    with _on_checker_clock(cls, calls) as (loop, clock, step):
        step("call_later() of six timers, two with the same deadline")

        def note(name):  # a callback of its own each
            return lambda: fired.append(name)

        loop.call_later(5.0, note("c"))
        loop.call_later(1.0, note("a"))
        for tie in ("b1", "b2", "b3", "b4"):  # four with the same deadline
            loop.call_later(3.0, note(tie))
        cancelled = loop.call_later(2.0, note("x"))
        loop.call_later(10.0, note("later"))
        cancelled.cancel()
        step("run_timers() before any deadline")
        clock.now += 0.9
        loop.run_timers()
        if fired:
            raise _Failed(
                f"0.9 s after call_later(1.0, ...), run_timers() already called "
                f"{fired[0]!r}'s callback: it fired early",
                "a timer is due only once its deadline has come: timer.when <= self.time().",
            )
        step("run_timers() once five deadlines have passed")
        clock.now += 5.1
        loop.run_timers()
        if "x" in fired:
            raise _Failed("a cancelled timer fired", "skip the timers whose .cancelled is True.")
        if "later" in fired:
            raise _Failed(
                "a timer due in 10 s fired after 6 s",
                "call only the timers whose deadline has come: timer.when <= self.time().",
            )
        if not fired:
            raise _Failed(
                "six seconds on, run_timers() had called none of the timers due",
                "call timer.callback(*timer.args) for each due timer.",
            )
        want = ["a", "b1", "b2", "b3", "b4", "c"]
        if sorted(fired) != want:
            raise _Failed(
                f"of the timers due, run_timers() called {fired} (expected "
                f"{', '.join(want)}, each once)",
                "call each due timer once, and take it off the heap (heapq.heappop).",
            )
        ties = [name for name in fired if name.startswith("b")]
        if (
            ties != want[1:5]
            and [n for n in fired if not n.startswith("b")] == ["a", "c"]
            and fired.index("a") < fired.index(ties[0])
        ):
            raise _Failed(
                f"four timers with the same deadline, set in the order b1, b2, b3, "
                f"b4, fired in the order {', '.join(ties)}",
                "equal deadlines fire in the order they were set: give each Timer "
                "an increasing order (next(self.order)), which breaks the tie.",
            )
        if fired != want:
            raise _Failed(
                f"the timers due fired in the order {', '.join(fired)}, not earliest "
                f"first ({', '.join(want)})",
                HEAP_HINT,
            )
        step("run_timers() again, nothing new due")
        loop.run_timers()
        if len(fired) != len(want):
            raise _Failed(
                "run_timers() called a timer a second time",
                "take each due timer off the heap (heapq.heappop) before calling it.",
            )
        step("timeout() after run_timers()")
        got = loop.timeout()
        _expect_timeout(got, 4.0, "with one timer left, due in 4 s")

        step("a timer whose callback sets a timer with delay 0")
        again: list[str] = []

        def repeat():
            again.append("again")
            loop.call_later(0, repeat)  # sets itself again, every time

        loop.call_later(1.0, repeat)
        clock.now += 1.5
        step("run_timers() with a callback that sets a timer with delay 0")
        loop.run_timers()
        if len(again) != 1:
            raise _Failed(
                f"a timer's callback set a timer with delay 0, and run_timers() "
                f"called that one in the same call ({len(again)} times)",
                TIMER_HANG_HINTS["run_timers"],
            )
        clock.now += 0.001
        step("run_timers() on the next turn")
        loop.run_timers()
        if len(again) != 2:
            raise _Failed(
                "a timer set with delay 0 by a callback did not fire on the next turn",
                "a timer with delay 0 is due at once: on the next run_timers() it must fire.",
            )


class _DrivenLoop:
    """The learner's ``loop``, to run ``run_forever()`` in a learner thread (``runner``, not
    started yet), with a waker through which the checker hands it jobs (:meth:`run`).
    ``sockets``: more sockets of the checker's that the loop may block on."""

    def __init__(self, loop, name: str, sockets=()):
        self.loop = loop
        self.jobs: collections.deque = collections.deque()
        self.waker_r, self.waker_w = socket.socketpair()
        self.waker_r.setblocking(False)
        loop.add_reader(self.waker_r, self._woken)
        self.runner = LearnerThread(
            guarded(loop.run_forever, name="run_forever"),
            name=name,
            sockets=[self.waker_r, *sockets],
        )

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.waker_r.recv(4096)
        while self.jobs:
            self.jobs.popleft()()

    def run(self, job) -> None:
        """Run ``job()`` in the loop's thread, on its next turn."""
        self.jobs.append(job)
        with contextlib.suppress(OSError):
            self.waker_w.send(b"\0")

    def stop(self, join: float = 0.5) -> bool:
        """Ask the loop to stop, give it a second, then stop the learner's code in it (after
        ``join`` more seconds); close its selector and the waker. Returns True if the loop
        did not stop when asked."""
        self.run(self.loop.stop)
        self.runner.thread.join(1.0)
        had_to_stop = self.runner.thread.is_alive()
        self.runner.stop(join=join)
        _loop_close(self.loop)
        self.waker_r.close()
        self.waker_w.close()
        return had_to_stop


class LiveLoop(_DrivenLoop):
    """The learner's timer loop, built in a learner thread with its methods wrapped
    (:func:`_timer_loop`) and a recording selector (``log``: select() calls, timeouts), to
    run ``run_forever()`` in a learner thread."""

    def __init__(self, cls, calls: LearnerCalls):
        self.calls = calls
        self.log = LoopLog()
        made = run_learner(
            lambda: _timer_loop(
                cls, calls, RecordingSelector(selectors.DefaultSelector(), self.log)
            ),
            limit=2.0,
            name=cls.__name__,
        )
        if made.error is not None or made.value is None:
            if isinstance(made.error, NotYet):
                raise made.error
            judge(made, f"{cls.__name__}()", limit=2.0, hang_hint="keep __init__ as it was given.")
            outcome = "returned None" if made.error is None else "raised"
            if made.error is not None:
                outcome += f" {describe_exception(made.error)}"
            raise NotYet(f"{cls.__name__}() {outcome}", "keep __init__ as it was given.")
        super().__init__(made.value, "timer-loop")

    def wait(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate()``; fail at once if the loop died or is stuck."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.raise_if_failed()
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def raise_if_failed(self) -> None:
        stuck = self.calls.stuck()
        if stuck:
            place = self.runner.where()
            raise NotYet(
                f"{stuck}() did not return within {STUCK_AFTER:g} s while the loop "
                "ran" + (f": it was still running {place}" if place else ""),
                TIMER_HANG_HINTS[stuck],
            )
        error = self.runner.error
        if error is not None and not isinstance(error, LearnerStopped):
            judge_error(error, "your loop")
            raise _timer_error(error, "your loop stopped: run_forever() raised")
        if not self.runner.alive:
            raise NotYet(
                "your loop's run_forever() returned by itself", "keep run_once() as given."
            )


@checker
def check_timer_loop(loop_class):
    """Exercise 2: ``MyTimerLoop``'s timer heap, first on the checker's clock, then live:
    an idle loop sleeps, timers fire in order and on time."""
    if not isinstance(loop_class, type):
        raise NotYet(
            f"expected a class, got {type(loop_class).__name__}",
            "pass the class itself: check_timer_loop(MyTimerLoop).",
        )
    calls = LearnerCalls()
    _run_timer_scenario(_timeout_checks, loop_class, calls, "timeout() and call_later()")
    _run_timer_scenario(_run_timers_checks, loop_class, calls, "run_timers()")

    live = LiveLoop(loop_class, calls)
    try:
        live.runner.start()
        idle_check(live)
        on_time_check(live)
        live.raise_if_failed()
    finally:
        live.stop()
    return (
        "timers fired earliest first, ties in the order they were set, cancelled ones "
        "never; with one timer half a second away your loop slept in select(); live, "
        "timers and a sleeping task fired on time (never early, late within the "
        "tolerance)"
    )


def idle_check(live: LiveLoop) -> int:
    """With one timer half a second away, the running loop must sleep in ``select()``:
    raise :class:`NotYet` if it spins or burns CPU; return its ``select()`` calls."""
    ready = threading.Event()
    holder = {}

    def set_far_timer():
        holder["timer"] = live.loop.call_later(0.5, lambda: None)
        ready.set()

    live.run(set_far_timer)
    if not live.wait(ready.is_set, 2.0):
        raise NotYet(
            "your loop did not run a callback within 2 s of its socket becoming readable",
            "keep run_once() as given: super().run_once() first.",
        )
    time.sleep(0.02)  # let the loop go to sleep
    n0, c0, t0 = len(live.log.selects()), live.runner.cpu.total(), time.perf_counter()
    live.wait(lambda: False, IDLE_WINDOW)
    n1, c1, t1 = len(live.log.selects()), live.runner.cpu.total(), time.perf_counter()
    live.raise_if_failed()
    calls, share = n1 - n0, (c1 - c0) / (t1 - t0)
    timeouts = [c.timeout for c in live.log.selects()[n0:n1]]
    live.run(holder["timer"].cancel)
    if calls > SPIN_CALLS:
        zero = sum(1 for t in timeouts if t == 0)
        what = "with timeout 0" if zero == len(timeouts) else f"({zero:,} with timeout 0)"
        raise NotYet(
            f"with one timer 0.5 s away, your loop called select() {calls:,} times "
            f"in {IDLE_WINDOW:g} s {what}, using about {share:.0%} of a core: it spins",
            SPIN_HINT,
        )
    if share == share and share > 0.3:  # not NaN: a CPU clock for threads exists
        raise NotYet(
            f"with one timer 0.5 s away, your loop used about {share:.0%} of a core "
            "while it waited",
            "never busy-wait on the clock (a while loop) in timeout() or "
            "run_timers(): select() does the waiting, asleep in the kernel.",
        )
    return calls


def on_time_check(live: LiveLoop) -> float:
    """Timers and a sleeping task on the running loop must fire on time: raise
    :class:`NotYet` if one fires early, or late by more than :data:`TIMER_TOLERANCE`
    (median); return that median lateness in seconds."""
    delays = (0.06, 0.015, 0.045, 0.09, 0.03, 0.075)
    fired: list = []
    slept: list = []
    started = threading.Event()

    def set_timers():
        for delay in delays:
            set_at = live.loop.time()
            live.loop.call_later(
                delay, lambda d=delay, s=set_at: fired.append((d, time.monotonic() - (s + d)))
            )

        def sleeper():
            for _ in range(2):
                before = time.monotonic()
                yield "sleep", 0.05
                slept.append(time.monotonic() - before - 0.05)

        live.loop.spawn(sleeper())
        started.set()

    live.run(set_timers)
    live.wait(lambda: len(fired) == len(delays) and len(slept) == 2, 2.0)
    live.raise_if_failed()
    if len(fired) < len(delays):
        raise NotYet(
            f"live, {len(delays) - len(fired)} of {len(delays)} timers (set for 15 to "
            f"90 ms) had not fired after 2 s",
            "run_once() calls run_timers() after each select(): it must call every "
            "timer that is due; and timeout() must let select() wake up for it.",
        )
    order = [d for d, _ in fired]
    if order != sorted(order):
        raise NotYet(
            f"live, timers set for {', '.join(f'{d * 1e3:.0f}' for d in delays)} ms "
            f"fired in the order {', '.join(f'{d * 1e3:.0f}' for d in order)} ms",
            HEAP_HINT,
        )
    early = [(d, late) for d, late in fired if late < -1e-6]
    if early:
        d, late = early[0]
        raise NotYet(
            f"live, a timer set for {d * 1e3:.0f} ms fired {-late * 1e3:.1f} ms early",
            "a timer is due only once its deadline has come: timer.when <= self.time().",
        )
    if len(slept) < 2:
        raise NotYet(
            "a generator task that did yield 'sleep', 0.05 was not resumed after 2 s",
            "wait_sleep() (given) calls call_later(seconds, self.step, task): "
            "call_later must call callback(*args) at the deadline.",
        )
    lateness = [late for _, late in fired] + slept
    median = statistics.median(lateness)
    if median > TIMER_TOLERANCE:
        raise NotYet(
            f"live, timers fired {median * 1e3:.0f} ms late (median; "
            f"{TIMER_TOLERANCE * 1e3:.0f} ms allowed)",
            "select() must wake up when the earliest timer is due: timeout() is "
            "the time from now to that deadline.",
        )
    return median


def timeline_of(loop_class, seconds: float = 0.25) -> LoopLog:
    """A short scene on the learner's timer loop, recorded (``recording(loop_class)``), for
    :func:`~nbio_helpers.loop.timeline.plot_loop_timeline`: two timers and a cancelled one,
    a task that sleeps, a task that reads two messages a socket pair gets at 30 and 90 ms.

    The loop runs ``run_forever()`` in a learner thread for ``seconds``, then is stopped (by
    the harness if it must). Raises NotImplementedError if a method is still the stub;
    prints why, if the loop failed otherwise, and returns what it recorded up to then."""
    log = LoopLog()
    made = run_learner(lambda: recording(loop_class)(log), limit=2.0, name=loop_class.__name__)
    if made.error is not None or made.value is None:
        if isinstance(made.error, NotImplementedError):
            raise NotImplementedError(loop_class.__name__)
        print(
            f"{loop_class.__name__}() could not be made: "
            f"{describe_exception(made.error) if made.error else 'it did not return'}"
        )
        return log
    loop = made.value
    ours, peer = socket.socketpair()
    ours.setblocking(False)

    def sleeper():
        yield "sleep", 0.12

    def reader():
        for _ in range(2):
            yield "read", ours
            ours.recv(4096)

    def scene():
        loop.call_later(0.05, lambda: None)
        loop.call_later(0.15, lambda: None)
        loop.call_later(0.10, lambda: None).cancel()
        loop.spawn(sleeper())
        loop.spawn(reader())

    driven = _DrivenLoop(loop, "timeline", sockets=[ours])
    runner = driven.runner.start()
    try:
        driven.run(scene)
        start = time.monotonic()
        for at in (0.03, 0.09, seconds):
            time.sleep(max(0.0, start + at - time.monotonic()))
            if at < seconds:
                peer.send(b"ping")
    finally:
        had_to_stop = driven.stop(join=0.2)
        ours.close()
        peer.close()
    if isinstance(runner.error, NotImplementedError):
        raise NotImplementedError(loop_class.__name__)
    if runner.error is not None and not isinstance(runner.error, LearnerStopped):
        print(f"your loop stopped: {describe_exception(runner.error)}")
    elif had_to_stop:
        print("your loop did not stop when asked, and was stopped: see exercise 2's checker")
    return log


# ======================================================================= exercise 3
BLOCK_LIMIT = 0.15
"""Seconds one step of the learner's coroutine (from one await to the next) may hold the loop."""

LINE_WAIT = 1.5
"""Seconds a check client waits for a line the server must send."""

IDLE_TIMEOUT = 0.25
"""The idle timeout of the second server of :func:`check_chat_handler`."""

CROWD = 10
NEVER_BLOCK_HINT = (
    "a coroutine on an event loop must never block: while it waits (in "
    "time.sleep(), a blocking recv()...), the loop waits too, and every other "
    "client with it. Await client.readline() instead; to pause, await the "
    "loop's own sleep."
)
TRY_FINALLY_HINT = (
    "call room.leave(client) in a finally: around the conversation after "
    "room.join(), so that it runs however the conversation ends (/quit, the "
    "client gone, LineTooLong, TimeoutError)."
)
LEAVE_ON_NONE_HINT = (
    "readline() returns None when the client has gone: stop then (a loop "
    "`while (line := await client.readline()) is not None:`), and "
    "room.leave(client), in a finally, tells the others."
)
PROPAGATE_HINT = (
    "let LineTooLong and TimeoutError propagate out of your coroutine (no "
    "`except Exception:` around it): the server answers them ('! line too "
    "long', '! nothing from you') and closes the connection."
)

_checks = itertools.count(1)


class _Watch:
    """A watchdog over the server thread: the longest step of the learner's coroutine that
    held the loop more than :data:`BLOCK_LIMIT` (and where it was), and a step stopped
    because it never gave the loop back."""

    def __init__(self):
        self.held: tuple[float, str] | None = None  # (seconds, where) of the longest
        self.stopped: str | None = None  # where a stuck step was stopped
        self.step_started: float | None = None  # the step running now, since when
        self.thread: threading.Thread | None = None
        self._done = threading.Event()
        self._watchdog: threading.Thread | None = None
        # The server's connections, once known.
        self.sockets: Callable[[], list[socket.socket]] = list

    def start(self, thread: threading.Thread) -> None:
        self.thread = thread
        self._watchdog = threading.Thread(
            target=self._watch, name="check-chat-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch(self) -> None:
        thread = self.thread
        assert thread is not None  # set by start()
        while not self._done.wait(0.005):
            started = self.step_started
            seconds = time.monotonic() - started if started is not None else 0.0
            if seconds > BLOCK_LIMIT:  # where it is now is where it holds the loop
                place = self.held[1] if self.held else where(thread) or ""
                self.held = (max(seconds, self.held[0] if self.held else 0.0), place)
            if seconds > STUCK_AFTER and self.stopped is None:
                self.stopped = where(thread) or ""
                # Shut the connections down too: a blocking recv() on one then returns.
                stop_learner_code([thread.ident], sockets=self.sockets())

    def stop(self) -> None:
        self._done.set()
        if self._watchdog is not None:
            self._watchdog.join(1.0)


class _Steps:
    """Drives the learner's coroutine one guarded step at a time: each ``send``/``throw`` is
    a learner call, located and stoppable, and timed for the ``watch`` (if any). Once
    ``over`` (if given) is set, no step of the learner's runs any more: each raises
    ``CancelledError`` instead."""

    def __init__(self, coro, watch: _Watch | None = None, over: threading.Event | None = None):
        self.coro, self.watch, self.over = coro, watch, over
        self._send = self._timed(guarded(self._gated(coro.send), name="my_chat", wrap_base=False))
        self._throw = self._timed(guarded(self._gated(coro.throw), name="my_chat", wrap_base=False))

    def _gated(self, step):
        over = self.over
        if over is None:
            return step

        # Checked inside the guarded call, so there is no gap: a step that found ``over``
        # unset is already listed as running, and the stop that follows ``over.set()``
        # finds it.
        def gated(value):
            if over.is_set():
                raise asyncio.CancelledError
            return step(value)

        return gated

    def _timed(self, step):
        watch = self.watch
        if watch is None:
            return step

        def timed(value):
            try:
                watch.step_started = time.monotonic()
                return step(value)
            finally:
                watch.step_started = None

        return timed

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self._send(None)

    def send(self, value):
        return self._send(value)

    def throw(self, typ, val=None, tb=None):
        exc = val if val is not None else (typ() if isinstance(typ, type) else typ)
        return self._throw(exc)

    def close(self):
        return self.coro.close()


class _NotACoroutine(TypeError):
    pass


class _HandlerServer(CoroutineChatServer):
    """The coroutine chat server running the learner's handler one guarded step at a time,
    **without** the safety net: it does not call ``room.leave`` itself (rule 4)."""

    model = "chat-check"

    def __init__(self, *args, watch: _Watch, **kwargs):
        super().__init__(*args, **kwargs)
        self.watch = watch

    @property
    def thread(self) -> threading.Thread | None:
        """The thread running the loop (None before start and after stop)."""
        return self._thread

    def open_sockets(self) -> list[socket.socket]:
        """The accepted sockets still open (to close them if the learner's code is stuck)."""
        return list(self._open)

    def start_serving(self, loop) -> None:
        super().start_serving(loop)
        loop.call_later(0.1, self._heartbeat, loop)

    def _heartbeat(self, loop) -> None:
        # If a step of the learner's could not be stopped, stop() gives up on this thread and
        # closes the waker; once that step returns, the loop must still end by itself.
        if self.stopping:
            loop.stop()
        else:
            loop.call_later(0.1, self._heartbeat, loop)

    async def serve_client(self, client):
        reason = "peer closed"
        try:
            coro = self.handler(self.room, client)
            if not inspect.iscoroutine(coro):
                if inspect.isgenerator(coro):
                    coro.close()
                raise _NotACoroutine(f"the handler returned {type(coro).__name__}, not a coroutine")
            await _Steps(coro, self.watch)
        except (LineTooLong, TimeoutError) as exc:
            client.say(error_line(exc, self))
            reason = type(exc).__name__
        finally:
            client.close(reason)


@contextlib.contextmanager
def _handler_server(handler, **options):
    """The learner's handler on a :class:`_HandlerServer` (its thread named ``learner-…``);
    on exit, stopped, and the learner's code with it if it is stuck."""
    watch = _Watch()
    server = _HandlerServer(
        handler=handler, watch=watch, name=f"check-chat-{next(_checks)}", **options
    )
    server.start()
    thread = server.thread
    assert thread is not None  # started
    thread.name = "learner-" + thread.name.removeprefix("nbio-")
    watch.sockets = server.open_sockets
    watch.start(thread)
    try:
        yield server, watch
    finally:
        watch.stop()
        with contextlib.suppress(Exception, LearnerStopped):
            server.stop(timeout=1.0)
        if server.running:
            stop_learner_code([thread.ident], sockets=server.open_sockets())
            thread.join(0.5)


def _handler_errors(server) -> list[str]:
    return [
        e.detail
        for e in server.events.events(ERROR)
        if "LearnerStopped" not in e.detail and "CancelledError" not in e.detail
    ]


def _raise_for_handler(server, watch: _Watch, settle: float = 0.3) -> None:
    """Fail with the cause, if the learner's coroutine blocked, hung or raised. A symptom
    (a line missing, a connection closed) can reach the client just before the server
    records its cause: wait up to ``settle`` seconds for one."""
    wait_until(
        lambda: watch.stopped is not None or watch.held is not None or _handler_errors(server),
        settle,
    )
    if watch.stopped is not None:
        raise NotYet(
            f"your coroutine did not give the loop back: one step ran for more than "
            f"{STUCK_AFTER:g} s and was stopped"
            + (f": it was still running {watch.stopped}" if watch.stopped else ""),
            "between two awaits a coroutine must return to the loop at once: await "
            "client.readline() for each line, never loop without an await.",
        )
    if watch.held is not None:
        seconds, place = watch.held
        raise NotYet(
            f"one step of your coroutine held the loop for {seconds:.2f} s (more "
            f"than {BLOCK_LIMIT:g} s): no other client was served meanwhile"
            + (f"; it was at {place}" if place else ""),
            NEVER_BLOCK_HINT,
        )
    errors = _handler_errors(server)
    if not errors:
        return
    detail = errors[0]
    text = detail.split(": ", 1)[1] if detail.startswith("task ") else detail
    if text.startswith("NotImplementedError"):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    if text.startswith("_NotACoroutine"):
        raise NotYet(
            "my_chat(room, client) did not return a coroutine",
            "write it as async def my_chat(room, client): and await client.readline().",
        )
    if text.startswith(("KeyboardInterrupt", "SystemExit")):
        name = text.split(":", 1)[0]
        exc = KeyboardInterrupt() if name == "KeyboardInterrupt" else SystemExit()
        raise NotYet(*base_exception_failure("your coroutine", exc))
    if "can only await its own futures" in text or "no running event loop" in text:
        raise NotYet(
            f"your coroutine failed: {text}",
            "asyncio's sleep() and wait_for() belong to asyncio's loop, and this "
            "is our loop, not asyncio's: the only thing to await here is "
            "client.readline().",
        )
    if "coroutine" in text:
        raise NotYet(
            f"your coroutine failed: {text}",
            "client.readline() is a coroutine: write line = await "
            "client.readline(); without await you get the coroutine object, not "
            "the line.",
        )
    if "NoneType" in text:
        raise NotYet(
            f"your coroutine failed when a client left: {text}",
            "readline() returns None when the client has gone (also before it "
            "gave a name): return then.",
        )
    raise NotYet(
        f"your coroutine failed: {text}", "read the error, fix my_chat, run its cell again."
    )


class _Talk:
    """The checker's side of the conversation: clients, and what each must get."""

    def __init__(self, server, watch: _Watch):
        self.server, self.watch = server, watch
        self.clients: list[ChatClient] = []

    def client(self) -> ChatClient:
        client = ChatClient(self.server.address, timeout=LINE_WAIT)
        self.clients.append(client)
        return client

    def expect(self, client: ChatClient, want: str, what: str, hint: str) -> None:
        try:
            got = client.line(LINE_WAIT)
        except (TimeoutError, OSError):
            got = "(nothing)"
        if got != want:
            _raise_for_handler(self.server, self.watch)
            shown = "the connection closed" if got is None else f"got {got!r}"
            raise NotYet(f"{what}: expected {want!r}, {shown}", hint)
        if self.watch.held is not None or self.watch.stopped is not None:
            _raise_for_handler(self.server, self.watch, settle=0.0)  # right, but it blocked

    def expect_set(self, client: ChatClient, wants: set, what: str, hint: str) -> None:
        got = set()
        for _ in wants:
            try:
                line = client.line(LINE_WAIT)
            except (TimeoutError, OSError):
                break
            if line is None:
                break
            got.add(line)
        if got != wants:
            _raise_for_handler(self.server, self.watch)
            missing = sorted(wants - got)
            raise NotYet(
                f"{what}: {len(wants - got)} of {len(wants)} lines missing (e.g. {missing[0]!r})"
                if missing
                else f"{what}: unexpected lines {sorted(got - wants)[:2]}",
                hint,
            )

    def expect_closed(self, client: ChatClient, what: str, hint: str) -> None:
        try:
            got = client.line(LINE_WAIT)
        except (TimeoutError, OSError):
            got = "(nothing)"
        if got is not None:
            _raise_for_handler(self.server, self.watch)
            shown = "it stayed open" if got == "(nothing)" else f"it got {got!r}"
            raise NotYet(f"{what}: the server should have closed the connection; {shown}", hint)

    def join(self, name: str, others: list[str], *, watchers=()) -> ChatClient:
        client = self.client()
        self.expect(
            client, ASK_NAME, "a new client's first line", "greet first: room.welcome(client)."
        )
        client.say(name)
        hello = HELLO.format(
            name=name, others=OTHERS.format(names=", ".join(others)) if others else ALONE
        )
        self.expect(
            client,
            hello,
            f"after the name {name!r}",
            "a good name: room.join(client, name), which says hello.",
        )
        for watcher in watchers:
            self.expect(
                watcher,
                JOINED.format(name=name),
                f"when {name} joined",
                "room.join(client, name) tells the others.",
            )
        return client

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(OSError):
                client.close()


def _send_slowly(client: ChatClient, data: bytes) -> None:
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in data:
        client.send(bytes([byte]))
        time.sleep(0.002)


@checker
def check_chat_handler(handler):
    """Exercise 3: ``async def my_chat(room, client)`` on our loop, with real clients."""
    if not callable(handler):
        raise NotYet(
            f"expected a function, got {type(handler).__name__}",
            "pass the function itself: check_chat_handler(my_chat).",
        )
    if not inspect.iscoroutinefunction(handler):
        kind = (
            "a generator function"
            if inspect.isgeneratorfunction(handler)
            else "a plain function (def)"
        )
        raise NotYet(
            f"my_chat is {kind}, not a coroutine function",
            "write async def my_chat(room, client): and await client.readline().",
        )
    _talk_with(handler, _conversation)
    _talk_with(handler, _idle_conversation, idle_timeout=IDLE_TIMEOUT)
    return (
        "names asked again until good, lines passed on, /who and /quit answered, a client "
        f"typing byte by byte and {CROWD} joining at once served, leaving noticed however "
        "it happened (gone mid-line, /quit, an over-long line, an idle timeout), and the "
        "loop never blocked"
    )


def _talk_with(handler, conversation, **server_options) -> None:
    """Run ``conversation(talk)`` against a new server (:func:`_handler_server`) that runs
    ``handler``, then fail if the handler failed or blocked the loop meanwhile."""
    with _handler_server(handler, **server_options) as (server, watch):
        talk = _Talk(server, watch)
        try:
            conversation(talk)
            _raise_for_handler(server, watch, settle=0.0)
        finally:
            talk.close()


def _conversation(talk: _Talk) -> None:
    ann = talk.join("ann", [])
    bob = talk.client()
    talk.expect(bob, ASK_NAME, "a new client's first line", "greet first: room.welcome(client).")
    bob.say("b o b")
    talk.expect(
        bob,
        BAD_NAME,
        "after the invalid name 'b o b'",
        "room.name_problem(name) says what is wrong with a name (None if nothing): "
        "client.say() that line, then read another name.",
    )
    bob.say("ANN")
    talk.expect(
        bob,
        NAME_TAKEN.format(name="ANN"),
        "after the name 'ANN' (ann is here)",
        "ask again, in a loop, until room.name_problem(name) is None: the second "
        "name may be no better than the first.",
    )
    bob.say("bob")
    talk.expect(
        bob,
        HELLO.format(name="bob", others=OTHERS.format(names="ann")),
        "after a third try, the good name 'bob'",
        "keep asking until room.name_problem(name) is None, then room.join(client, name).",
    )
    talk.expect(
        ann,
        JOINED.format(name="bob"),
        "when bob joined",
        "room.join(client, name) tells the others.",
    )
    bob.say("hi ann")
    talk.expect(
        ann,
        "bob: hi ann",
        "bob said 'hi ann'",
        "pass every line after the name to room.hear(client, line).",
    )
    ann.say("/who")
    talk.expect(
        ann,
        WHO.format(names="ann, bob"),
        "ann asked /who",
        "pass every line to room.hear(client, line): it answers /who itself, and "
        "nothing else must be sent to ann meanwhile.",
    )

    cy = talk.client()
    talk.expect(cy, ASK_NAME, "a new client's first line", "greet first: room.welcome(client).")
    _send_slowly(cy, b"cy\r\n")
    talk.expect(
        cy,
        HELLO.format(name="cy", others=OTHERS.format(names="ann, bob")),
        "a client that sent its name byte by byte, with \\r\\n",
        "await client.readline() returns whole lines, however the bytes come.",
    )
    for watcher in (ann, bob):
        talk.expect(
            watcher,
            JOINED.format(name="cy"),
            "when cy joined",
            "room.join(client, name) tells the others.",
        )
    _send_slowly(cy, b"hello all\r\n")
    for watcher in (ann, bob):
        talk.expect(
            watcher,
            "cy: hello all",
            "cy typed 'hello all' byte by byte",
            "pass every line to room.hear(client, line).",
        )

    crowd = [talk.client() for _ in range(CROWD)]
    for client in crowd:
        talk.expect(
            client,
            ASK_NAME,
            f"{CROWD} clients connecting at once",
            "greet first: room.welcome(client).",
        )
    for i, client in enumerate(crowd):
        client.say(f"p{i}")
    for i, client in enumerate(crowd):
        try:
            hello = client.line(LINE_WAIT)
        except (TimeoutError, OSError):
            hello = None
        if hello is None or not hello.startswith(f"* hello p{i}!"):
            _raise_for_handler(talk.server, talk.watch)
            raise NotYet(
                f"{CROWD} clients gave their names at once; p{i} got {hello!r}",
                "room.join(client, name) once the name is good.",
            )
    joined = {JOINED.format(name=f"p{i}") for i in range(CROWD)}
    for watcher in (ann, bob, cy):
        talk.expect_set(
            watcher,
            joined,
            f"{CROWD} clients joining at once",
            "room.join(client, name) tells the others.",
        )
    for client in crowd:
        client.close()
    left = {LEFT.format(name=f"p{i}") for i in range(CROWD)}
    for watcher in (ann, bob, cy):
        talk.expect_set(
            watcher, left, f"{CROWD} clients closing their connections", LEAVE_ON_NONE_HINT
        )

    dora = talk.join("dora", ["ann", "bob", "cy"], watchers=(ann, bob, cy))
    dora.send(b"half")
    dora.close()
    talk.expect(
        ann,
        "dora: half",
        "dora sent 'half' without \\n and closed",
        "a last line without \\n still counts (readline() returns it), then "
        "readline() returns None.",
    )
    for watcher in (bob, cy):
        talk.expect(
            watcher,
            "dora: half",
            "dora sent 'half' without \\n and closed",
            "pass every line to room.hear(client, line).",
        )
    for watcher in (ann, bob, cy):
        talk.expect(watcher, LEFT.format(name="dora"), "dora vanished mid-line", LEAVE_ON_NONE_HINT)
    dora2 = talk.join("Dora", ["ann", "bob", "cy"], watchers=(ann, bob, cy))
    dora2.close()
    for watcher in (ann, bob, cy):
        talk.expect(
            watcher, LEFT.format(name="Dora"), "Dora closed her connection", LEAVE_ON_NONE_HINT
        )

    shy = talk.client()
    talk.expect(shy, ASK_NAME, "a new client's first line", "greet first: room.welcome(client).")
    shy.close()  # gone before giving a name
    ended = CROWD + 3  # the crowd, dora, Dora and shy
    if not wait_until(lambda: talk.server.events.count(CLOSE) >= ended, LINE_WAIT):
        _raise_for_handler(talk.server, talk.watch, settle=0.0)
        raise NotYet(
            "a client that closed its connection before giving a name was never "
            "let go: your coroutine went on reading a connection that had ended",
            "readline() returns None when the client has gone, also before it "
            "gave a name: return then.",
        )
    bob.say("/quit")
    talk.expect(
        bob,
        BYE.format(name="bob"),
        "bob sent /quit",
        "pass /quit to room.hear(client, line): it says bye.",
    )
    talk.expect_closed(
        bob,
        "after /quit",
        "room.hear() returns False after /quit: stop "
        "reading and return (the server then closes "
        "the connection).",
    )
    for watcher in (ann, cy):
        talk.expect(watcher, LEFT.format(name="bob"), "bob left with /quit", TRY_FINALLY_HINT)

    cy.send(b"x" * 2000 + b"\n")
    talk.expect(
        cy,
        TOO_LONG.format(limit=1024),
        "cy sent a line of 2000 bytes (the limit is 1024)",
        PROPAGATE_HINT,
    )
    talk.expect_closed(cy, "after the over-long line", PROPAGATE_HINT)
    talk.expect(
        ann, LEFT.format(name="cy"), "cy was disconnected for an over-long line", TRY_FINALLY_HINT
    )
    ann.say("/who")
    talk.expect(
        ann,
        WHO.format(names="ann"),
        "ann asked /who at the end",
        "only the clients still connected are in the room: room.leave(client) for "
        "each one that went.",
    )


def _idle_conversation(talk: _Talk) -> None:
    fred = talk.join("fred", [])
    gina = talk.join("gina", ["fred"], watchers=(fred,))
    idle = IDLE.format(seconds=IDLE_TIMEOUT)
    talk.expect(
        fred,
        idle,
        f"fred said nothing for {IDLE_TIMEOUT:g} s (the server's idle_timeout)",
        PROPAGATE_HINT,
    )
    talk.expect_closed(fred, "after the idle timeout", PROPAGATE_HINT)
    talk.expect(
        gina,
        LEFT.format(name="fred"),
        "fred was disconnected after the idle timeout",
        TRY_FINALLY_HINT,
    )
    talk.expect(gina, idle, "gina said nothing either", PROPAGATE_HINT)


# ---------------------------------------------------------------- the demo cell's helper
def try_on_asyncio(handler) -> list[str]:
    """Run ``handler`` (the learner's ``my_chat``), unchanged, on asyncio's loop
    (:class:`~nbio_helpers.loop.chat_asyncio.AsyncioChatServer`): two clients talk; returns
    the lines they received. Raises NotImplementedError if the handler is still the stub.
    Its steps run under the harness: a handler that never gives the loop back is stopped when
    the conversation is over, and the last line says what went wrong."""
    if not inspect.iscoroutinefunction(handler):
        return ["my_chat is not an async def function: see exercise 3."]
    failed: list[BaseException] = []
    over = threading.Event()  # set when the conversation is over: no learner step after it

    async def noted(room, client):
        if over.is_set():  # a client accepted late (the loop was stuck until now)
            return
        try:
            await _Steps(handler(room, client), over=over)
        except (LineTooLong, TimeoutError):
            raise
        except Exception as exc:
            failed.append(exc)

    transcript: list[str] = []
    server = AsyncioChatServer(handler=noted, name="nb06-my-chat-on-asyncio").start()
    try:
        with (
            ChatClient(server.address, timeout=1.0) as ann,
            ChatClient(server.address, timeout=1.0) as bob,
        ):
            transcript.append(f"ann got: {ann.join('ann')}")
            transcript.append(f"bob got: {bob.join('bob')}")
            bob.say("hello from asyncio")
            transcript += [f"ann got: {line}" for line in ann.lines(quiet=0.1)]
            bob.say("/quit")
            transcript += [f"bob got: {line}" for line in bob.lines(quiet=0.1)]
            transcript += [f"ann got: {line}" for line in ann.lines(quiet=0.1)]
    except (TimeoutError, OSError):
        transcript.append("(no answer within 1 s: does my_chat block?)")
    finally:
        # A step that never gave the loop back is stopped first (asyncio's Task takes the
        # exception as the handler's failure and its loop goes on), then the server: stop()
        # wakes the loop through its socketpair, which a stop() that timed out would close.
        # Between the two, the loop may accept a client that waited and start its handler:
        # ``over`` keeps every learner step from running from now on.
        over.set()
        thread = server.thread
        if thread is not None:
            stop_learner_code([thread.ident])
        with contextlib.suppress(Exception):
            server.stop(timeout=2.0)
    if any(isinstance(exc, NotImplementedError) for exc in failed):
        raise NotImplementedError("my_chat")
    if failed:
        transcript.append(f"my_chat raised {describe_exception(failed[0])}")
    return transcript


__all__ = [
    "BLOCK_LIMIT",
    "FRAMER_LIMIT",
    "IDLE_TIMEOUT",
    "TIMER_TOLERANCE",
    "LearnerCalls",
    "LiveLoop",
    "check_chat_handler",
    "check_framer",
    "check_timer_loop",
    "held_bytes",
    "idle_check",
    "on_time_check",
    "requires_exercise",
    "timeline_of",
    "try_on_asyncio",
]
