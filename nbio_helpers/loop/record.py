"""The loop's event log, recorded *around* the loop code the notebook shows.

The loops of :mod:`nbio_helpers.loop` hold no instrumentation. :func:`recording` makes a
subclass of any of them that records, into a :class:`LoopLog`:

* each ``select()`` call (through :class:`RecordingSelector`, a wrapper of the selector): when
  it started and returned, how many sockets it watched, how many were ready, the timeout it
  was given; the time in between is the *idle gap*, the loop asleep in the kernel;
* each time a task ran (a generator task's ``step``, a :class:`~.coroutines.Task`'s step, or a
  connection's callback in the callback server), as a :class:`TaskRun` in the task's lane.

Usage::

    log = LoopLog()
    loop = recording(TimerLoop)(log)     # a TimerLoop that records into log
    ...
    log.selects()     # [SelectCall(start=..., end=..., watched=3, ready=1, timeout=None), ...]
    log.runs()        # [TaskRun(lane='conn 1', start=..., end=...), ...]

Every ``select()`` also counts as a ``WAKEUP`` event (``nbytes`` = sockets ready), as in the
other models, even when the log keeps counters only (``enabled=False``).
"""

from __future__ import annotations

import collections
import functools
import selectors
import time
import types
from typing import NamedTuple

from nbio_helpers.events import WAKEUP, EventLog
from nbio_helpers.loop.coroutines import Future, Task


class SelectCall(NamedTuple):
    """One ``select()`` call. Times are ``time.monotonic()`` seconds."""

    start: float
    end: float
    watched: int  # sockets registered when it was called
    ready: int  # sockets it returned
    timeout: float | None  # what it was given (None: no limit)

    @property
    def idle(self) -> float:
        """Seconds asleep inside ``select()``."""
        return self.end - self.start


class TaskRun(NamedTuple):
    """A task (or a connection's callback) ran from ``start`` to ``end``, in lane ``lane``."""

    lane: str
    start: float
    end: float


class LoopLog(EventLog):
    """An :class:`~nbio_helpers.events.EventLog` that also keeps :class:`SelectCall` and
    :class:`TaskRun` records (bounded like the events; cleared with them)."""

    def __init__(self, capacity: int = 200_000, enabled: bool = True):
        super().__init__(capacity, enabled)
        self._selects: collections.deque[SelectCall] = collections.deque(maxlen=capacity)
        self._runs: collections.deque[TaskRun] = collections.deque(maxlen=capacity)

    def record_select(self, call: SelectCall) -> None:
        self.record(WAKEUP, nbytes=call.ready)
        if self.enabled:
            with self._lock:
                self._selects.append(call)

    def record_run(self, run: TaskRun) -> None:
        if self.enabled:
            with self._lock:
                self._runs.append(run)

    def selects(self, since: float | None = None) -> list[SelectCall]:
        with self._lock:
            calls = list(self._selects)
        return [c for c in calls if since is None or c.start >= since]

    def runs(self, since: float | None = None) -> list[TaskRun]:
        with self._lock:
            runs = list(self._runs)
        return [r for r in runs if since is None or r.start >= since]

    def lanes(self) -> list[str]:
        """The task lanes, in the order they first ran."""
        return list(dict.fromkeys(r.lane for r in self.runs()))

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._selects.clear()
            self._runs.clear()


class RecordingSelector:
    """A selector that records each ``select()`` in a :class:`LoopLog`; everything else is
    passed to the wrapped selector (``register``, ``get_map``, ``close``...)."""

    def __init__(self, selector: selectors.BaseSelector, log: LoopLog):
        self.selector = selector
        self.log = log

    def select(self, timeout=None):
        watched = len(self.selector.get_map())
        start = time.monotonic()
        ready = self.selector.select(timeout)
        self.log.record_select(SelectCall(start, time.monotonic(), watched, len(ready), timeout))
        return ready

    def __getattr__(self, name):
        return getattr(self.selector, name)


def lane_of(obj) -> str | None:
    """The lane of a task, generator task or callback owner; None if it has none."""
    if isinstance(obj, Task):
        return obj.name
    if isinstance(obj, types.GeneratorType):
        frame = obj.gi_frame  # a task not finished: its arguments name it
        client = frame.f_locals.get("client") if frame is not None else None
        return f"conn {client.id}" if client is not None and hasattr(client, "id") else obj.__name__
    conn = getattr(obj, "id", None)
    return f"conn {conn}" if isinstance(conn, int) else None


def _timed(log: LoopLog, lane: str, callback):
    @functools.wraps(callback)
    def run(*args):
        start = time.monotonic()
        try:
            return callback(*args)
        finally:
            log.record_run(TaskRun(lane, start, time.monotonic()))

    return run


@functools.cache
def recording(loop_class):
    """A subclass of ``loop_class`` whose constructor takes a :class:`LoopLog` and records
    into it: ``recording(Loop)(log)``."""

    class Recording(loop_class):  # type: ignore[misc,valid-type]  # a base given at run time
        def __init__(self, log: LoopLog, selector=None):
            super().__init__(RecordingSelector(selector or selectors.DefaultSelector(), log))
            self.log = log

        def step(self, task, error=None):  # a generator task runs
            lane = lane_of(task) or "task"  # before: a finished task has no frame
            start = time.monotonic()
            try:
                return super().step(task, error)
            finally:
                self.log.record_run(TaskRun(lane, start, time.monotonic()))

        def call_soon(self, callback, *args):  # a coroutine Task runs
            owner = getattr(callback, "__self__", None)
            if isinstance(owner, Task) and self.log.enabled:
                callback = _timed(self.log, owner.name, callback)
            super().call_soon(callback, *args)

        def _watch(self, sock, event, handler):  # a connection's callback runs
            callback, args = handler
            owner = getattr(callback, "__self__", None)
            lane = None if isinstance(owner, Future) else lane_of(owner)
            if lane is not None and self.log.enabled:
                handler = (_timed(self.log, lane, callback), args)
            super()._watch(sock, event, handler)

    Recording.__name__ = Recording.__qualname__ = f"Recording{loop_class.__name__}"
    return Recording


__all__ = ["LoopLog", "RecordingSelector", "SelectCall", "TaskRun", "lane_of", "recording"]
