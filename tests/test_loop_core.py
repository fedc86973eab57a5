"""The event loop of notebook 06, step by step, on socketpairs (no server)."""

from __future__ import annotations

import socket
import time

import pytest

from nbio_helpers.loop.coroutines import CancelledError, Future, Loop
from nbio_helpers.loop.generators import GeneratorLoop
from nbio_helpers.loop.reactor import Reactor
from nbio_helpers.loop.timers import TimerLoop

pytestmark = pytest.mark.timeout(30)


def run_until(loop, predicate, turns=1000):
    for _ in range(turns):
        if predicate():
            return True
        loop.run_once()
    return predicate()


# ------------------------------------------------------------------------ step 1: reactor
def test_reader_is_called_while_readable_until_removed(pair):
    a, b = pair
    loop = Reactor()
    got = []

    def on_readable():
        got.append(a.recv(10))
        if len(got) == 2:
            loop.remove_reader(a)

    loop.add_reader(a, on_readable)
    b.send(b"one")
    loop.run_once()
    b.send(b"two")
    loop.run_once()
    assert got == [b"one", b"two"]
    assert loop.selector.get_map().get(a) is None  # unregistered: no interest left
    loop.close()


def test_reader_and_writer_on_one_socket(pair):
    a, b = pair
    loop = Reactor()
    calls = []
    loop.add_reader(a, calls.append, "read")
    loop.add_writer(a, calls.append, "write")
    assert loop.selector.get_key(a).events == 3
    b.send(b"x")
    loop.run_once()
    assert calls == ["read", "write"]
    loop.remove_writer(a)
    assert loop.selector.get_key(a).events == 1
    loop.remove_writer(a)  # twice: harmless
    loop.remove_reader(a)
    assert a not in loop.selector.get_map()
    loop.close()


def test_a_callback_removed_earlier_in_the_same_turn_is_not_called(pair):
    a, b = pair
    c, d = socket.socketpair()
    loop = Reactor()
    called = []

    def first():
        called.append("first")
        loop.remove_reader(a)
        loop.remove_reader(c)

    loop.add_reader(a, first)
    loop.add_reader(c, lambda: called.append("second"))
    b.send(b"x")
    d.send(b"x")
    loop.run_once()
    # whichever ran first removed the other
    assert len(called) == 1
    loop.close()
    c.close()
    d.close()


def test_call_soon_runs_next_turn_and_select_does_not_sleep():
    loop = Reactor()
    order = []
    loop.call_soon(order.append, 1)
    loop.call_soon(lambda: loop.call_soon(order.append, 3) or order.append(2))
    assert loop.timeout() == 0
    loop.run_once()
    assert order == [1, 2]
    loop.run_once()
    assert order == [1, 2, 3]
    assert loop.timeout() is None
    loop.close()


def test_run_forever_until_stop():
    loop = Reactor()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert not loop.running
    loop.close()


# ------------------------------------------------------------------ step 2: generator tasks
def test_generator_task_waits_for_read_and_write(pair):
    a, b = pair
    loop = GeneratorLoop()
    log = []

    def task():
        yield "read", a
        log.append(a.recv(10))
        yield "write", a
        a.send(b"pong")
        log.append("sent")

    loop.spawn(task())
    loop.run_once()
    assert log == [] and len(loop.tasks) == 1
    b.send(b"ping")
    assert run_until(loop, lambda: not loop.tasks)
    assert log == [b"ping", "sent"]
    assert b.recv(10) == b"pong"
    assert not loop.selector.get_map()
    loop.close()


def test_two_generator_tasks_interleave(pair):
    a, b = pair
    c, d = socket.socketpair()
    c.setblocking(False)
    loop = GeneratorLoop()
    log = []

    def reader(sock, name):
        yield "read", sock
        log.append((name, sock.recv(10)))

    loop.spawn(reader(a, "A"))
    loop.spawn(reader(c, "C"))
    loop.run_once()
    d.send(b"c first")
    assert run_until(loop, lambda: len(log) == 1)
    b.send(b"then a")
    assert run_until(loop, lambda: len(log) == 2)
    assert log == [("C", b"c first"), ("A", b"then a")]
    loop.close()
    c.close()
    d.close()


def test_step_can_raise_an_error_in_the_task():
    loop = GeneratorLoop()
    seen = []

    def task():
        try:
            yield "sleep", 1
        except TimeoutError as exc:
            seen.append(str(exc))

    gen = task()
    loop.tasks.add(gen)
    next(gen)
    loop.step(gen, TimeoutError("late"))
    assert seen == ["late"] and not loop.tasks
    loop.close()


# --------------------------------------------------------------------------- step 3: time
def test_timers_fire_in_deadline_order():
    loop = TimerLoop()
    fired = []
    for delay in (0.03, 0.01, 0.02, 0.01):
        loop.call_later(delay, fired.append, delay)
    cancelled = loop.call_later(0.015, fired.append, "cancelled")
    cancelled.cancel()
    assert run_until(loop, lambda: len(fired) == 4)
    assert fired == [0.01, 0.01, 0.02, 0.03]
    assert loop.timeout() is None  # no timer left: select() may sleep forever
    loop.close()


def test_timeout_is_the_time_until_the_earliest_deadline():
    loop = TimerLoop()
    loop.call_later(5, lambda: None)
    loop.call_later(2, lambda: None)
    assert 1.9 < loop.timeout() <= 2
    loop.call_soon(lambda: None)
    assert loop.timeout() == 0  # callbacks waiting: do not sleep
    loop.close()


def test_cancelled_earliest_timer_does_not_shorten_the_sleep():
    loop = TimerLoop()
    loop.call_later(0.001, lambda: None).cancel()
    loop.call_later(10, lambda: None)
    assert loop.timeout() > 9
    assert len(loop.timers) == 1  # the cancelled one was dropped
    loop.close()


def test_timer_set_by_a_timer_waits_for_the_next_turn():
    loop = TimerLoop()
    fired = []

    def again():
        fired.append(len(fired))
        loop.call_later(0, again)

    loop.call_later(0, again)
    loop.run_once()
    assert fired == [0]  # not an endless loop inside one turn
    loop.run_once()
    assert fired == [0, 1]
    loop.close()


def test_idle_loop_sleeps_in_select():
    loop = TimerLoop()
    cpu, wall = time.thread_time(), time.monotonic()  # before the timer's 0.2 s start
    loop.call_later(0.2, loop.stop)
    loop.run_forever()
    wall = time.monotonic() - wall
    assert wall >= 0.2
    assert time.thread_time() - cpu < 0.05  # a spinning loop would use ~0.2 s
    loop.close()


def test_generator_sleep_and_read_timeout(pair):
    a, b = pair
    loop = TimerLoop()
    log = []

    def task():
        start = loop.time()
        yield "sleep", 0.02
        log.append(loop.time() - start >= 0.02)
        try:
            yield "read", a, 0.02
        except TimeoutError as exc:
            log.append(str(exc))
        yield "read", a, 5
        log.append(a.recv(10))

    loop.spawn(task())
    assert run_until(loop, lambda: len(log) == 2)
    assert log == [True, "no data for 0.02 s"]
    b.send(b"late")
    assert run_until(loop, lambda: not loop.tasks)
    assert log[2] == b"late"
    assert not loop.selector.get_map()  # every read, timed out or not, unregistered
    assert all(t.cancelled for t in loop.timers)  # the 5 s timer was cancelled
    loop.close()


# ---------------------------------------------------------------------- step 4: coroutines
def test_future_result_callbacks_and_await():
    fut = Future()
    seen = []
    fut.add_done_callback(seen.append)
    assert not fut.done()
    fut.set_result(42)
    fut.set_result(43)  # the first outcome wins
    assert fut.done() and fut.result() == 42 and seen == [fut]
    later = []
    fut.add_done_callback(later.append)  # already done: called at once
    assert later == [fut]
    failed = Future()
    failed.set_exception(ValueError("no"))
    with pytest.raises(ValueError):
        failed.result()


def test_coroutine_task_recv_and_sendall(pair):
    a, b = pair
    loop = Loop()

    async def echo_once():
        data = await loop.sock_recv(a, 100)
        await loop.sock_sendall(a, data.upper())
        return len(data)

    task = loop.create_task(echo_once(), name="echo")
    loop.run_once()
    assert not task.done()
    b.send(b"hello")
    assert run_until(loop, task.done)
    assert task.result() == 5 and b.recv(10) == b"HELLO"
    assert not loop.tasks and not loop.selector.get_map()
    loop.close()


def test_sock_sendall_waits_while_the_buffer_is_full(pair):
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    loop = Loop()
    data = bytes(range(256)) * 4096  # 1 MiB: far more than the buffers
    task = loop.create_task(loop.sock_sendall(a, data))
    received = bytearray()

    def drain():
        try:
            received.extend(b.recv(65536))
        except BlockingIOError:
            pass

    loop.add_reader(b, drain)
    assert run_until(loop, lambda: len(received) == len(data), turns=100_000)
    assert task.done() and bytes(received) == data
    loop.close()


def test_sleep_and_tasks_awaiting_tasks():
    loop = Loop()

    async def child(n):
        await loop.sleep(0.01 * n)
        return n

    async def parent():
        first, second = loop.create_task(child(2)), loop.create_task(child(1))
        return [await first, await second]

    task = loop.create_task(parent())
    assert run_until(loop, task.done)
    assert task.result() == [2, 1]
    loop.close()


def test_wait_for_times_out_and_cancels(pair):
    a, b = pair
    loop = Loop()
    cleaned = []

    async def slow_read():
        try:
            return await loop.sock_recv(a, 10)
        finally:
            cleaned.append(True)

    async def main():
        with pytest.raises(TimeoutError):
            await loop.wait_for(slow_read(), 0.02)
        b.send(b"now")
        return await loop.wait_for(slow_read(), 5)

    task = loop.create_task(main())
    assert run_until(loop, task.done)
    assert task.result() == b"now"
    assert cleaned == [True, True]  # the timed-out read ran its finally
    assert not loop.selector.get_map()
    assert all(t.cancelled for t in loop.timers)
    loop.close()


def test_cancel_raises_where_the_task_awaits():
    loop = Loop()
    seen = []

    async def sleeper():
        try:
            await loop.sleep(10)
        except CancelledError:
            seen.append("cancelled")
            raise

    task = loop.create_task(sleeper())
    loop.run_once()
    task.cancel()
    assert run_until(loop, task.done)
    assert seen == ["cancelled"]
    with pytest.raises(CancelledError):
        task.result()
    assert not loop.tasks
    loop.close()


def test_cancel_before_the_first_step():
    loop = Loop()
    started = []

    async def never():
        started.append(True)

    task = loop.create_task(never())
    task.cancel()
    assert run_until(loop, task.done)
    with pytest.raises(CancelledError):
        task.result()
    assert not started
    loop.close()


def test_a_failed_task_stops_the_loop_unless_handled():
    loop = Loop()

    async def broken():
        raise ValueError("bug")

    loop.create_task(broken())
    with pytest.raises(ValueError, match="bug"):
        loop.run_forever()
    errors = []
    loop.on_task_error = lambda task, exc: errors.append((task.name, str(exc)))
    loop.create_task(broken(), name="handled")
    assert run_until(loop, lambda: errors)
    assert errors == [("handled", "bug")]
    loop.close()


def test_awaiting_a_foreign_awaitable_is_a_clear_error():
    import asyncio

    loop = Loop()

    async def wrong():
        await asyncio.sleep(0)  # yields None: not one of our futures

    task = loop.create_task(wrong())
    loop.on_task_error = lambda task, exc: None
    assert run_until(loop, task.done)
    with pytest.raises(TypeError, match="can only await its own futures"):
        task.result()
    loop.close()


def test_sleep_0_lets_the_other_ready_tasks_run_first():
    loop = Loop()
    order = []

    async def worker(name):
        for i in range(3):
            order.append((name, i))
            await loop.sleep(0)

    for name in "ab":
        loop.create_task(worker(name))
    assert run_until(loop, lambda: not loop.tasks)
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert not loop.timers  # no timer for a zero sleep
    loop.close()


def test_the_loop_is_about_250_lines_as_notebook_06_says():
    """Notebook 06 (cells 0 and 72) says the loop takes "about 250 lines of plain Python":
    the code lines of the reactor, generator, timer and coroutine steps, without blank lines,
    comments or docstrings."""
    import ast
    import inspect
    from pathlib import Path

    import nbformat

    from nbio_helpers.loop import coroutines, generators, reactor, timers

    def code_lines(module) -> int:
        tree = ast.parse(inspect.getsource(module))
        docstrings = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
        lines = inspect.getsource(module).splitlines()
        return sum(
            1
            for number, line in enumerate(lines, 1)
            if line.strip() and not line.strip().startswith("#") and number not in docstrings
        )

    total = sum(code_lines(m) for m in (reactor, generators, timers, coroutines))
    assert 200 <= total <= 300, total
    notebook = nbformat.read(
        Path(__file__).resolve().parent.parent / "notebooks" / "06_event_loop_from_scratch.ipynb",
        as_version=4,
    )
    assert "about 250 lines" in "\n".join(c.source for c in notebook.cells)
