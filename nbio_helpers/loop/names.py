"""Step 5 · our names and asyncio's, one to one (checked against CPython's ``Lib/asyncio``).

:data:`NAMES` is the table as data; :func:`names_table` prints it::

    print(names_table())

Each row: our name, asyncio's, where asyncio defines it, and what differs. The differences
are real and few: asyncio schedules every callback through its ready queue (``Handle``
objects that can be cancelled), runs a future's callbacks on the next turn rather than at
once, and refuses to set a result twice; the idea is the same.
"""

from __future__ import annotations

from typing import NamedTuple


class Name(NamedTuple):
    ours: str  # how the notebook calls it (loop = our Loop, asyncio loop = theirs)
    asyncio: str
    defined_in: str  # CPython Lib/asyncio/...
    step: int  # the notebook section that builds ours
    difference: str


NAMES = [
    Name(
        "Reactor(selector)",
        "asyncio.SelectorEventLoop(selector)",
        "selector_events.py",
        1,
        "same: an event loop around one selectors selector",
    ),
    Name(
        "loop.add_reader(sock, cb, *args)",
        "loop.add_reader(fd, cb, *args)",
        "selector_events.py",
        1,
        "asyncio keeps (reader, writer) Handles in key.data; we keep {event: (cb, args)}",
    ),
    Name(
        "loop.remove_reader(sock)",
        "loop.remove_reader(fd)",
        "selector_events.py",
        1,
        "asyncio also cancels the Handle, so a callback already due is skipped",
    ),
    Name(
        "loop.add_writer / remove_writer",
        "loop.add_writer / remove_writer",
        "selector_events.py",
        1,
        "as add_reader / remove_reader",
    ),
    Name(
        "loop.call_soon(cb, *args)",
        "loop.call_soon(cb, *args)",
        "base_events.py",
        1,
        "asyncio returns a Handle that can be cancelled",
    ),
    Name(
        "loop.run_once()",
        "loop._run_once() (private)",
        "base_events.py",
        1,
        "asyncio queues I/O and timer callbacks, then runs the ready queue; we call I/O "
        "callbacks as select() returns them, then the ready queue, then due timers",
    ),
    Name(
        "loop.run_forever() / loop.stop()",
        "loop.run_forever() / loop.stop()",
        "base_events.py",
        1,
        "same",
    ),
    Name(
        "generator task: yield 'read', sock",
        "(none: asyncio runs coroutines)",
        "-",
        2,
        "asyncio's first version (tulip, 2013) ran generators with 'yield from'",
    ),
    Name(
        "loop.call_later(delay, cb, *args)",
        "loop.call_later(delay, cb, *args)",
        "base_events.py",
        3,
        "asyncio returns a TimerHandle; both keep a heap of deadlines",
    ),
    Name(
        "Timer.cancel()",
        "TimerHandle.cancel()",
        "events.py",
        3,
        "asyncio also rebuilds its heap when most of it is cancelled timers",
    ),
    Name(
        "loop.timeout()",
        "the timeout computed in loop._run_once()",
        "base_events.py",
        3,
        "same rule: 0 if callbacks are ready, else until the earliest timer, else None "
        "(asyncio caps it at one day)",
    ),
    Name("loop.time()", "loop.time()", "base_events.py", 3, "both time.monotonic()"),
    Name(
        "Future",
        "asyncio.Future",
        "futures.py",
        4,
        "asyncio runs done callbacks on the next turn (call_soon), raises "
        "InvalidStateError for a second result; ours calls them at once, keeps the first",
    ),
    Name(
        "future.__await__(): yield self",
        "Future.__await__(): yield self",
        "futures.py",
        4,
        "same (asyncio also sets _asyncio_future_blocking)",
    ),
    Name(
        "Task(loop, coro)",
        "asyncio.Task(coro)",
        "tasks.py",
        4,
        "same step: coro.send(None) or coro.throw(exc), wake up when the yielded future is "
        "done; asyncio's bad yield is a RuntimeError, ours a TypeError",
    ),
    Name(
        "loop.create_task(coro, name=...)",
        "loop.create_task(coro, name=...)",
        "base_events.py",
        4,
        "same",
    ),
    Name(
        "task.cancel() / CancelledError",
        "Task.cancel() / asyncio.CancelledError",
        "tasks.py, exceptions.py",
        4,
        "both raise CancelledError where the task awaits; both a BaseException",
    ),
    Name(
        "loop.tasks",
        "asyncio.all_tasks(loop)",
        "tasks.py",
        4,
        "asyncio keeps a weak set of every task not done",
    ),
    Name(
        "await loop.sleep(seconds)",
        "await asyncio.sleep(seconds)",
        "tasks.py",
        4,
        "same: a future set by call_later; sleep(0) just yields (asyncio: a bare yield)",
    ),
    Name(
        "await loop.wait_for(aw, timeout)",
        "await asyncio.wait_for(aw, timeout)",
        "tasks.py, timeouts.py",
        4,
        "both cancel the awaitable at the deadline and raise TimeoutError "
        "(asyncio.TimeoutError before Python 3.11)",
    ),
    Name(
        "await loop.sock_recv(sock, n)",
        "await loop.sock_recv(sock, n)",
        "selector_events.py",
        4,
        "same: try recv() first, else wait for a reader callback",
    ),
    Name(
        "await loop.sock_sendall(sock, data)",
        "await loop.sock_sendall(sock, data)",
        "selector_events.py",
        4,
        "same",
    ),
    Name(
        "Transport.write() / Stream.drain()",
        "transport.write() / StreamWriter.drain()",
        "selector_events.py, streams.py",
        4,
        "same: send at once, buffer the rest for a writer callback; drain waits above the "
        "high-water mark",
    ),
]
"""Our names -> asyncio's, in the order notebook 06 builds ours."""


def names_table(rows=NAMES) -> str:
    """:data:`NAMES` as a fixed-width text table (ours, asyncio's, step)."""
    width = max(len(r.ours) for r in rows) + 2
    lines = [f"{'step':<6}{'ours':<{width}}asyncio", "-" * (6 + width + 40)]
    lines += [f"{r.step:<6}{r.ours:<{width}}{r.asyncio}" for r in rows]
    return "\n".join(lines)


__all__ = ["NAMES", "Name", "names_table"]
