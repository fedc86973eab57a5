"""The checkers of notebook 06 pass the reference solutions (the notebook's, verbatim) and
reject every typical wrong answer with a hint that names the mistake.

The rules and the mistakes are listed in the docstring of nbio_helpers/exercises/nb06.py.
Exercise 1: the line framer. Exercise 2: the timer heap (unit checks on the checker's clock,
then live: idle, on time). Exercise 3: a coroutine handler for the chat, on our loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import socket
import time

import pytest

from nbio_helpers.exercises import nb06
from nbio_helpers.exercises.nb06 import check_chat_handler, check_framer, check_timer_loop
from nbio_helpers.framing import LineTooLong
from nbio_helpers.loop import GeneratorLoop, Timer

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited"),
]


def rejected(check, answer, *hints):
    verdict = check.verdict(answer)
    assert not verdict.passed, verdict.text
    for hint in hints:
        assert hint in verdict.text, verdict.text
    return verdict


# ======================================================================= exercise 1
class MyFramer:
    """The notebook's solution, verbatim."""

    def __init__(self, max_line=1024):
        self.max_line = max_line
        self.buffer = bytearray()  # the partial line, kept between calls

    def feed(self, data):
        """The complete lines that data ends (bytes, without their line ending)."""
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > self.max_line + 1:  # the +1: a \r may still be a \r\n
            raise LineTooLong(self.max_line)
        complete = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                raise LineTooLong(self.max_line)
            complete.append(line)
        return complete


def framer(feed):
    """MyFramer with ``feed`` replaced (a wrong answer)."""
    return type("Wrong", (MyFramer,), {"feed": feed})


def each_chunk_alone(self, data):
    return data.split(b"\n")[:-1]


def each_chunk_with_partial(self, data):
    return data.split(b"\n")


def returns_partial(self, data):
    self.buffer += data
    lines = self.buffer.split(b"\n")
    self.buffer = lines[-1]
    return [line.rstrip(b"\r") for line in lines if line]


def drops_partial(self, data):
    *lines, _ = (bytes(self.buffer) + data).split(b"\n")
    self.buffer = bytearray()
    return [line.removesuffix(b"\r") for line in lines]


def splitlines(self, data):
    self.buffer += data
    lines = bytes(self.buffer).splitlines(keepends=True)
    self.buffer = bytearray(lines.pop()) if lines and not lines[-1].endswith(b"\n") else bytearray()
    if len(self.buffer) > self.max_line + 1:
        raise LineTooLong(self.max_line)
    return [line.rstrip(b"\r\n") for line in lines]


def strips(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    return [line.strip() for line in lines]


def strips_every_cr(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    return [line.replace(b"\r", b"") for line in lines]


def keeps_cr(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    return lines


def drops_empty(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    return [line.removesuffix(b"\r") for line in lines if line.removesuffix(b"\r")]


def decodes(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    return [line.removesuffix(b"\r").decode() for line in lines]


class DecodesEachChunk(MyFramer):
    def __init__(self, max_line=1024):
        super().__init__(max_line)
        self.text = ""

    def feed(self, data):
        self.text += data.decode()
        *lines, self.text = self.text.split("\n")
        return [line.removesuffix("\r").encode() for line in lines]


def limit_only_on_complete_lines(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    complete = []
    for line in lines:
        line = line.removesuffix(b"\r")
        if len(line) > self.max_line:
            raise LineTooLong(self.max_line)
        complete.append(line)
    return complete


def greater_or_equal(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    if len(self.buffer) > self.max_line + 1:
        raise LineTooLong(self.max_line)
    complete = []
    for line in lines:
        line = line.removesuffix(b"\r")
        if len(line) >= self.max_line:
            raise LineTooLong(self.max_line)
        complete.append(line)
    return complete


def counts_the_crlf(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    if len(self.buffer) > self.max_line + 1:
        raise LineTooLong(self.max_line)
    complete = []
    for line in lines:
        if len(line) > self.max_line:  # measured before the \r is removed
            raise LineTooLong(self.max_line)
        complete.append(line.removesuffix(b"\r"))
    return complete


def partial_limit_without_the_cr(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    if len(self.buffer) > self.max_line:  # a line of max_line bytes + its \r: refused
        raise LineTooLong(self.max_line)
    return [line.removesuffix(b"\r") for line in lines]


def value_error(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    if len(self.buffer) > self.max_line + 1 or any(
        len(line.removesuffix(b"\r")) > self.max_line for line in lines
    ):
        raise ValueError("line too long")
    return [line.removesuffix(b"\r") for line in lines]


def hard_coded_limit(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    if len(self.buffer) > 1025 or any(len(line.removesuffix(b"\r")) > 1024 for line in lines):
        raise LineTooLong(1024)
    return [line.removesuffix(b"\r") for line in lines]


def generator(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    for line in lines:
        yield line.removesuffix(b"\r")


def none_when_empty(self, data):
    self.buffer += data
    *lines, self.buffer = self.buffer.split(b"\n")
    return [line.removesuffix(b"\r") for line in lines] or None


def keeps_everything(self, data):
    self.history = getattr(self, "history", b"") + data  # a copy of the whole stream
    return MyFramer.feed(self, data)


def stub(self, *args):
    raise NotImplementedError()


def test_the_reference_framer_passes_five_times():
    for _ in range(5):
        verdict = check_framer.verdict(MyFramer)
        assert verdict.passed, verdict.text
    assert "LineTooLong" in verdict.text


def test_the_package_framer_passes():
    from nbio_helpers.framing import LineFramer

    assert check_framer.verdict(LineFramer).passed


@pytest.mark.parametrize(
    "feed, hints",
    [
        (each_chunk_alone, ["cut in two by recv()", "came back in pieces", "self.buffer"]),
        (each_chunk_with_partial, ["complete only once its b'\\n' has arrived"]),
        (returns_partial, ["complete only once its b'\\n' has arrived"]),
        (drops_partial, ["came back in pieces", "keep the last piece"]),
        (splitlines, ["a b'\\r' alone is data", "splitlines()"]),
        (strips, ["spaces and tabs are data", "strip()"]),
        (strips_every_cr, ["remove only the one b'\\r'"]),
        (keeps_cr, ["one b'\\r' right before the b'\\n'", "remove it too"]),
        (drops_empty, ["an empty line is a line"]),
        (decodes, ["returned text (str)", "never decode"]),
        (limit_only_on_complete_lines, ["never raised", "grow without bound", "partial line"]),
        (greater_or_equal, ["exactly max_line=16 bytes raised", "(not >=)"]),
        (counts_the_crlf, ["followed by \\r\\n", "the \\r\\n does not count"]),
        (partial_limit_without_the_cr, ["when its \\r came", "max_line + 1"]),
        (value_error, ["not LineTooLong", "raise LineTooLong(self.max_line)"]),
        (hard_coded_limit, ["17 bytes (max_line=16) was accepted", "LineTooLong(self.max_line)"]),
        (generator, ["returned generator, not a list", "return a list"]),
        (none_when_empty, ["returned None", "[] when it completed none"]),
        (keeps_everything, ["your framer kept", "keep only the partial line"]),
        (stub, ["not done yet"]),
    ],
    ids=lambda value: getattr(value, "__name__", "")[:30],
)
def test_wrong_framers_are_rejected_with_their_hint(feed, hints):
    rejected(check_framer, framer(feed), *hints)


def test_decoding_each_chunk_is_rejected():
    rejected(check_framer, DecodesEachChunk, "UnicodeDecodeError", "never decode")


def test_a_framer_that_is_not_a_class():
    rejected(check_framer, MyFramer(), "expected a class")


def test_held_bytes_counts_every_bytes_attribute():
    f = MyFramer(16)
    f.feed(b"abc")
    f.extra = [b"12", bytearray(b"345")]
    assert nb06.held_bytes(f) == 3 + 5


# ======================================================================= exercise 2
class MyTimerLoop(GeneratorLoop):
    """The notebook's solution, verbatim."""

    def __init__(self, selector=None):
        super().__init__(selector)
        self.timers = []  # a heap of Timer: self.timers[0] is the earliest
        self.order = itertools.count()  # numbers for Timer.order: they break ties

    def time(self):  # the loop's clock: use it, not time.monotonic()
        return time.monotonic()

    def call_later(self, delay, callback, *args):
        """Call callback(*args) in delay seconds; return the Timer (it has .cancel())."""
        timer = Timer(self.time() + delay, next(self.order), callback, args)
        heapq.heappush(self.timers, timer)
        return timer

    def timeout(self):
        """How long select() may sleep: 0 if callbacks are ready (self.ready), else the
        seconds until the earliest timer not cancelled (never negative), else None."""
        while self.timers and self.timers[0].cancelled:
            heapq.heappop(self.timers)
        if self.ready:
            return 0
        if not self.timers:
            return None
        return max(0, self.timers[0].when - self.time())

    def run_timers(self):
        """Call every timer that is due and not cancelled, earliest first; not the timers
        those calls set (they wait for the next turn)."""
        now, due = self.time(), []
        while self.timers and self.timers[0].when <= now:
            due.append(heapq.heappop(self.timers))
        for timer in due:
            if not timer.cancelled:
                timer.callback(*timer.args)

    def run_once(self):  # given: a turn, then the timers that are due
        super().run_once()
        self.run_timers()

    def wait_sleep(self, task, seconds):  # given: a task's  yield "sleep", seconds
        self.call_later(seconds, self.step, task)


def timer_loop(**methods):
    return type("Wrong", (MyTimerLoop,), methods)


def zero_with_timers(self):
    return 0 if self.ready or self.timers else None


def delay_as_given(self, delay, callback, *args):
    timer = Timer(delay, next(self.order), callback, args)  # the delay, not a deadline
    heapq.heappush(self.timers, timer)
    return timer


def delay_as_given_timeout(self):
    if self.ready:
        return 0
    live = [t for t in self.timers if not t.cancelled]
    return min(t.when for t in live) if live else None


def latest(self):
    if self.ready:
        return 0
    live = [t for t in self.timers if not t.cancelled]
    return max(0, max(t.when for t in live) - self.time()) if live else None


def appends(self, delay, callback, *args):
    timer = Timer(self.time() + delay, next(self.order), callback, args)
    self.timers.append(timer)  # not a heap
    return timer


def negative(self):
    while self.timers and self.timers[0].cancelled:
        heapq.heappop(self.timers)
    if self.ready:
        return 0
    return self.timers[0].when - self.time() if self.timers else None


def forgets_ready(self):
    while self.timers and self.timers[0].cancelled:
        heapq.heappop(self.timers)
    return max(0, self.timers[0].when - self.time()) if self.timers else None


def counts_cancelled(self):
    if self.ready:
        return 0
    return max(0, self.timers[0].when - self.time()) if self.timers else None


def fires_cancelled(self):
    now, due = self.time(), []
    while self.timers and self.timers[0].when <= now:
        due.append(heapq.heappop(self.timers))
    for timer in due:
        timer.callback(*timer.args)


def monotonic_call_later(self, delay, callback, *args):
    timer = Timer(time.monotonic() + delay, next(self.order), callback, args)
    heapq.heappush(self.timers, timer)
    return timer


def monotonic_timeout(self):
    if self.ready:
        return 0
    live = [t for t in self.timers if not t.cancelled]
    return max(0, min(t.when for t in live) - time.monotonic()) if live else None


def no_tie_breaker(self, delay, callback, *args):
    timer = Timer(self.time() + delay, 0, callback, args)  # every order 0
    heapq.heappush(self.timers, timer)
    return timer


def ties_reversed(self, delay, callback, *args):
    timer = Timer(self.time() + delay, -next(self.order), callback, args)
    heapq.heappush(self.timers, timer)
    return timer


class Tuples(MyTimerLoop):
    """(when, callback, timer) tuples on the heap: ties compare the callbacks."""

    def call_later(self, delay, callback, *args):
        timer = Timer(self.time() + delay, 0, callback, args)
        heapq.heappush(self.timers, (timer.when, callback, timer))
        return timer

    def timeout(self):
        while self.timers and self.timers[0][2].cancelled:
            heapq.heappop(self.timers)
        if self.ready:
            return 0
        return max(0, self.timers[0][0] - self.time()) if self.timers else None

    def run_timers(self):
        now, due = self.time(), []
        while self.timers and self.timers[0][0] <= now:
            due.append(heapq.heappop(self.timers)[2])
        for timer in due:
            if not timer.cancelled:
                timer.callback(*timer.args)


def rereads_the_heap(self):
    while self.timers and self.timers[0].when <= self.time():
        timer = heapq.heappop(self.timers)
        if not timer.cancelled:
            timer.callback(*timer.args)


def fires_early(self):
    now, due = self.time(), []
    while self.timers and self.timers[0].when - 0.2 <= now:
        due.append(heapq.heappop(self.timers))
    for timer in due:
        if not timer.cancelled:
            timer.callback(*timer.args)


def fires_twice(self):
    now = self.time()
    for timer in sorted(self.timers):
        if timer.when <= now and not timer.cancelled:
            timer.callback(*timer.args)


def returns_none(self, delay, callback, *args):
    heapq.heappush(self.timers, Timer(self.time() + delay, next(self.order), callback, args))


def busy_waits(self):
    while self.timers and not self.timers[0].cancelled and self.timers[0].when > self.time():
        pass
    return MyTimerLoop.timeout(self)


def sorts_a_list(self, delay, callback, *args):
    timer = Timer(self.time() + delay, next(self.order), callback, args)
    self.timers.append(timer)
    self.timers.sort()  # slow, but right
    return timer


@pytest.mark.slow
def test_the_reference_timer_loop_passes_five_times():
    for _ in range(5):
        verdict = check_timer_loop.verdict(MyTimerLoop)
        assert verdict.passed, verdict.text
    assert "slept in select()" in verdict.text and "on time" in verdict.text


@pytest.mark.slow
def test_the_package_timer_loop_passes():
    from nbio_helpers.loop import TimerLoop

    assert check_timer_loop.verdict(TimerLoop).passed


@pytest.mark.slow
def test_a_sorted_list_is_slow_but_right():
    assert check_timer_loop.verdict(timer_loop(call_later=sorts_a_list)).passed


@pytest.mark.slow
@pytest.mark.parametrize(
    "methods, hints",
    [
        ({"timeout": zero_with_timers}, ["returned 0: the loop would spin", "earliest deadline"]),
        (
            {"call_later": delay_as_given, "timeout": delay_as_given_timeout},
            ["still returned 2.5", "the delay as given"],
        ),
        ({"timeout": latest}, ["returned 5", "earliest deadline (the smallest)"]),
        ({"call_later": appends}, ["the first one set, not the earliest", "heapq.heappush"]),
        ({"timeout": negative}, ["overdue, timeout() returned -", "never negative: max(0, ...)"]),
        ({"timeout": forgets_ready}, ["callback ready (call_soon)", "self.ready"]),
        ({"timeout": counts_cancelled}, ["was cancelled", "does not count"]),
        ({"run_timers": fires_cancelled}, ["a cancelled timer fired", ".cancelled"]),
        ({"call_later": monotonic_call_later}, ["self.time()", "not time.monotonic()"]),
        (
            {"call_later": no_tie_breaker},
            ["same deadline", "in the order they were set", "next(self.order)"],
        ),
        ({"call_later": ties_reversed}, ["same deadline", "in the order they were set"]),
        (
            {"run_timers": rereads_the_heap},
            ["run_timers() did not return within 1 s", "still running line", "delay 0"],
        ),
        ({"run_timers": fires_early}, ["fired early", "timer.when <= self.time()"]),
        ({"run_timers": fires_twice}, ["a second time", "heappop"]),
        ({"call_later": returns_none}, ["returned NoneType, not the Timer", "cancel()"]),
        ({"timeout": busy_waits}, ["timeout() did not return within 1 s", "never wait or loop"]),
        ({"call_later": stub}, ["not done yet"]),
        ({"timeout": lambda self: (_ for _ in ()).throw(NotImplementedError())}, ["not done yet"]),
    ],
    ids=lambda value: (
        "-".join(f.__name__ for f in value.values())[:40] if isinstance(value, dict) else ""
    ),
)
def test_wrong_timer_loops_are_rejected_with_their_hint(methods, hints):
    rejected(check_timer_loop, timer_loop(**methods), *hints)


@pytest.mark.parametrize("uptime", [5.0, 999.0, 1_000_002.0, 3e7])
def test_the_system_clock_is_named_whatever_the_machines_uptime(monkeypatch, uptime):
    # time.monotonic() counts from the boot on Linux: on a machine up for minutes it is
    # small. A learner's deadline on it must still be named as such, not as a spinning loop.
    real = time.monotonic
    offset = real() - uptime
    monkeypatch.setattr(time, "monotonic", lambda: real() - offset)
    for wrong in ({"call_later": monotonic_call_later}, {"timeout": monotonic_timeout}):
        rejected(check_timer_loop, timer_loop(**wrong), "self.time()", "not time.monotonic()")


def test_tuples_on_the_heap_are_rejected():
    rejected(check_timer_loop, Tuples, "'<' not supported", "Timer(when, order, callback, args)")


def test_a_loop_that_is_not_a_generator_loop():
    class Alone:
        def __init__(self, selector=None):
            self.selector = selector

    rejected(check_timer_loop, Alone, "is not a GeneratorLoop")
    rejected(check_timer_loop, MyTimerLoop(), "expected a class")


def live(cls):
    loop = nb06.LiveLoop(cls, nb06.LearnerCalls())
    loop.runner.start()
    return loop


def test_the_live_check_catches_a_loop_that_spins_while_a_timer_is_far_away():
    # The unit checks catch timeout() == 0 first; this is the live check's own evidence.
    loop = live(timer_loop(timeout=zero_with_timers))
    try:
        with pytest.raises(nb06.NotYet) as failure:
            nb06.idle_check(loop)
    finally:
        loop.stop()
    assert "it spins" in failure.value.message and "timeout 0" in failure.value.message
    assert "earliest deadline" in failure.value.hint


def test_the_live_check_catches_late_timers():
    def late(self):
        got = MyTimerLoop.timeout(self)
        return got if got in (None, 0) else got + 0.12  # oversleeps

    loop = live(timer_loop(timeout=late))
    try:
        with pytest.raises(nb06.NotYet) as failure:
            nb06.on_time_check(loop)
    finally:
        loop.stop()
    assert "ms late (median; 50 ms allowed)" in failure.value.message


@pytest.mark.slow
def test_the_live_check_measures_a_sleeping_loop():
    loop = live(MyTimerLoop)
    try:
        calls = nb06.idle_check(loop)
        late = nb06.on_time_check(loop)
    finally:
        loop.stop()
    assert calls <= 3
    assert 0 <= late <= nb06.TIMER_TOLERANCE


# ======================================================================= exercise 3
async def my_chat(room, client):
    """The notebook's solution, verbatim."""
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return  # gone before giving a name
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            if not room.hear(client, line):
                break  # /quit
    finally:
        room.leave(client)


async def sleeps(room, client):
    time.sleep(0.2)  # "wait a little for the client"
    await my_chat(room, client)


async def blocking_recv(room, client):
    client.sock.setblocking(True)  # "wait for the client to say something"
    client.sock.settimeout(0.5)
    try:
        client.sock.recv(1, socket.MSG_PEEK)
    except OSError:
        pass
    client.sock.setblocking(False)
    await my_chat(room, client)


async def holds_the_loop(room, client):
    started = time.monotonic()
    while time.monotonic() - started < 0.3:  # a long computation between two awaits
        pass
    await my_chat(room, client)


async def asyncio_sleep(room, client):
    await asyncio.sleep(0.01)
    await my_chat(room, client)


async def asyncio_sleep_0(room, client):
    await asyncio.sleep(0)
    await my_chat(room, client)


async def missing_await(room, client):
    room.welcome(client)
    name = client.readline()  # no await
    while room.name_problem(name):
        name = client.readline()
    room.join(client, name)


def plain_function(room, client):
    room.welcome(client)


async def asks_once(room, client):
    room.welcome(client)
    name = await client.readline()
    if name is None:
        return
    problem = room.name_problem(name)
    if problem:
        client.say(problem)
        return
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            if not room.hear(client, line):
                break
    finally:
        room.leave(client)


async def no_name_check(room, client):
    room.welcome(client)
    name = await client.readline()
    if name is None:
        return
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            if not room.hear(client, line):
                break
    finally:
        room.leave(client)


async def none_before_name(room, client):
    room.welcome(client)
    name = await client.readline()
    while (problem := room.name_problem(name)) is not None:
        client.say(problem)
        name = await client.readline()
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            if not room.hear(client, line):
                break
    finally:
        room.leave(client)


async def hears_none(room, client):
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while True:
            if not room.hear(client, await client.readline()):
                break
    finally:
        room.leave(client)


async def ignores_none(room, client):
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while True:
            line = await client.readline()
            if line is not None and not room.hear(client, line):
                break
    finally:
        room.leave(client)


async def no_finally(room, client):
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    while (line := await client.readline()) is not None:
        if not room.hear(client, line):
            break
    room.leave(client)


async def ignores_quit(room, client):
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            room.hear(client, line)
    finally:
        room.leave(client)


async def swallows_errors(room, client):
    try:
        await my_chat(room, client)
    except Exception:
        pass


async def swallows_errors_and_goes_on(room, client):
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while True:
            try:
                line = await client.readline()
            except Exception:
                continue  # "never crash"
            if line is None or not room.hear(client, line):
                break
    finally:
        room.leave(client)


async def broadcasts_itself(room, client):
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            room.tell_others(client, f"{client.name}: {line}")
    finally:
        room.leave(client)


async def leaves_twice(room, client):
    try:
        await my_chat(room, client)
    finally:
        room.leave(client)  # twice, and before joining: harmless


async def keyboard_interrupt(room, client):
    room.welcome(client)
    raise KeyboardInterrupt


async def stub_handler(room, client):
    raise NotImplementedError()


@pytest.mark.slow
def test_the_reference_handler_passes_five_times():
    for _ in range(5):
        verdict = check_chat_handler.verdict(my_chat)
        assert verdict.passed, verdict.text


@pytest.mark.slow
def test_the_package_handler_passes_and_leaving_twice_is_harmless():
    from nbio_helpers.loop.chat_coroutines import chat

    assert check_chat_handler.verdict(chat).passed
    assert check_chat_handler.verdict(leaves_twice).passed


@pytest.mark.parametrize(
    "handler, hints",
    [
        (sleeps, ["held the loop for", "time.sleep(0.2)", "must never block"]),
        pytest.param(
            blocking_recv,
            ["held the loop for", "client.sock.recv(1, socket.MSG_PEEK)"],
            marks=pytest.mark.slow,
        ),
        (holds_the_loop, ["held the loop for", "no other client was served"]),
        (asyncio_sleep, ["no running event loop", "this is our loop, not asyncio's"]),
        (asyncio_sleep_0, ["can only await its own futures", "our loop, not asyncio's"]),
        (missing_await, ["coroutine", "line = await client.readline()"]),
        (plain_function, ["a plain function (def)", "async def my_chat"]),
        (asks_once, ["after the name 'ANN'", "ask again, in a loop"]),
        (no_name_check, ["after the invalid name", "room.name_problem(name)"]),
        (none_before_name, ["NoneType", "also before it gave a name"]),
        (hears_none, ["NoneType"]),
        pytest.param(
            ignores_none, ["left", "returns None when the client has gone"], marks=pytest.mark.slow
        ),
        pytest.param(
            no_finally,
            ["cy was disconnected for an over-long line", "finally"],
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ignores_quit, ["after /quit", "returns False after /quit"], marks=pytest.mark.slow
        ),
        pytest.param(
            swallows_errors,
            ["line of 2000 bytes", "let LineTooLong and TimeoutError propagate"],
            marks=pytest.mark.slow,
        ),
        pytest.param(
            swallows_errors_and_goes_on, ["line of 2000 bytes", "propagate"], marks=pytest.mark.slow
        ),
        pytest.param(
            broadcasts_itself, ["ann asked /who", "room.hear(client, line)"], marks=pytest.mark.slow
        ),
        (keyboard_interrupt, ["raised KeyboardInterrupt", "ordinary exception"]),
        (stub_handler, ["not done yet"]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_wrong_handlers_are_rejected_with_their_hint(handler, hints):
    rejected(check_chat_handler, handler, *hints)


@pytest.mark.slow
def test_a_handler_that_swallows_the_idle_timeout_is_rejected():
    async def swallows_timeout(room, client):
        try:
            await my_chat(room, client)
        except TimeoutError:
            pass

    rejected(check_chat_handler, swallows_timeout, "said nothing for 0.25 s", "propagate")


@pytest.mark.slow
def test_the_idle_timeout_without_finally_is_noticed():
    from nbio_helpers.framing import LineTooLong as TooLong

    async def finally_only_for_too_long(room, client):
        room.welcome(client)
        name = await client.readline()
        while name is not None and room.name_problem(name):
            client.say(room.name_problem(name))
            name = await client.readline()
        if name is None:
            return
        room.join(client, name)
        try:
            while (line := await client.readline()) is not None:
                if not room.hear(client, line):
                    break
        except TooLong:
            room.leave(client)
            raise
        room.leave(client)

    rejected(check_chat_handler, finally_only_for_too_long, "after the idle timeout", "finally")


def test_try_on_asyncio_runs_the_handler_on_asyncio():
    lines = nb06.try_on_asyncio(my_chat)
    assert lines[0].startswith("ann got: * hello ann!")
    assert "ann got: bob: hello from asyncio" in lines
    assert "bob got: * bye, bob!" in lines and "ann got: * bob left" in lines
    with pytest.raises(NotImplementedError):
        nb06.try_on_asyncio(stub_handler)


@pytest.mark.slow
def test_try_on_asyncio_stops_a_handler_that_never_gives_the_loop_back():
    async def spins(room, client):
        room.welcome(client)
        while True:
            pass

    started = time.monotonic()
    lines = nb06.try_on_asyncio(spins)
    assert time.monotonic() - started < 10
    assert lines[-1] == "(no answer within 1 s: does my_chat block?)"
    assert nb06.try_on_asyncio(plain_function) == [
        "my_chat is not an async def function: see exercise 3."
    ]
    from nbio_helpers.exercises.harness import learner_calls_running

    assert not learner_calls_running()
    import threading

    assert not [t.name for t in threading.enumerate() if "my-chat-on-asyncio" in t.name]


def test_no_step_of_the_learners_coroutine_runs_once_it_is_over():
    import threading

    ran = []

    async def handler():
        ran.append("first step")
        await asyncio.sleep(0)
        ran.append("second step")

    over = threading.Event()
    steps = nb06._Steps(handler(), over=over)
    steps.send(None)
    over.set()
    with pytest.raises(asyncio.CancelledError):
        steps.send(None)
    with pytest.raises(asyncio.CancelledError):
        steps.throw(asyncio.CancelledError)
    assert ran == ["first step"]
    steps.close()


@pytest.mark.slow
def test_try_on_asyncio_runs_no_handler_once_the_conversation_is_over(monkeypatch):
    """The race that CI lost once: ann's spinning step is stopped, and before the stop request
    reaches the loop, the loop accepts bob and starts his handler, which spins in turn. Forced
    here: the loop gets 0.3 s between the two. No learner step may start once it is over."""
    import threading

    from nbio_helpers.exercises.harness import learner_calls_running

    handlers_started: list[float] = []
    second = threading.Event()

    async def spins(room, client):
        handlers_started.append(time.monotonic())
        if len(handlers_started) > 1:
            second.set()
        room.welcome(client)
        while True:
            pass

    real_stop = nb06.stop_learner_code
    stopped_at: list[float] = []

    def stop_then_let_the_loop_run(*args, **kwargs):
        survivors = real_stop(*args, **kwargs)
        stopped_at.append(time.monotonic())
        second.wait(0.3)  # time for the loop to start bob's handler, if it would
        return survivors

    monkeypatch.setattr(nb06, "stop_learner_code", stop_then_let_the_loop_run)
    lines = nb06.try_on_asyncio(spins)
    assert lines[-1] == "(no answer within 1 s: does my_chat block?)"
    assert len(handlers_started) == 1 and stopped_at
    assert not learner_calls_running()
    assert not [t.name for t in threading.enumerate() if "my-chat-on-asyncio" in t.name]


def test_try_on_asyncio_says_what_a_failing_handler_raised():
    lines = nb06.try_on_asyncio(missing_await)
    assert lines[-1].startswith("my_chat raised TypeError"), lines


@pytest.mark.slow
def test_timeline_of_the_learners_loop(capsys):
    log = nb06.timeline_of(MyTimerLoop)
    calls = log.selects()
    assert 3 <= len(calls) <= 20 and {"sleeper", "reader"} <= set(log.lanes())
    assert sum(1 for c in calls if c.ready) >= 2  # the two messages woke it
    assert sum(1 for c in calls if c.timeout and not c.ready) >= 2  # and the timers
    with pytest.raises(NotImplementedError):
        nb06.timeline_of(timer_loop(call_later=stub))
    spinning = nb06.timeline_of(timer_loop(timeout=zero_with_timers))
    assert len(spinning.selects()) > 100  # drawn as it is: spinning

    def hangs(self):
        if any(t.when <= self.time() for t in self.timers):
            while True:
                pass

    stuck = nb06.timeline_of(timer_loop(run_timers=hangs))
    assert "did not stop when asked, and was stopped" in capsys.readouterr().out
    assert stuck.selects()
    from nbio_helpers.exercises.harness import learner_calls_running

    assert not learner_calls_running()
