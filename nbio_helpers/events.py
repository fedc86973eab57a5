"""A thread-safe event log that servers write to and notebooks read.

Servers run in background threads and must never ``print``: instead they record what
happens here, and a notebook cell reads the log afterwards (to count, plot or assert).

Usage::

    log = EventLog()
    log.record(ACCEPT, conn=3)
    log.record(RECV, conn=3, nbytes=5)
    log.count(RECV)            # 1, even after the ring buffer has wrapped
    log.events(kind=RECV)      # [Event(t=..., kind='recv', conn=3, nbytes=5, detail='')]

The log keeps at most ``capacity`` events (a busy polling loop makes millions of them);
the per-kind counters are never truncated.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

# Event kinds. Strings, so that a printed event reads well in a notebook.
ACCEPT = "accept"  # a connection was accepted
ACCEPT_WOULD_BLOCK = "accept_would_block"  # non-blocking accept() had nothing to return
RECV_CALL = "recv_call"  # recv() was called (client-side tracing; its result follows)
RECV = "recv"  # recv() returned data (nbytes > 0)
WOULD_BLOCK = "would_block"  # recv() raised BlockingIOError: no data yet
EOF = "eof"  # recv() returned b'': the peer will send no more
SEND = "send"  # send() accepted nbytes
SEND_WOULD_BLOCK = "send_would_block"  # send() raised BlockingIOError: buffer full
WAKEUP = "wakeup"  # the loop woke up (select/epoll returned, a sleep ended)
PAUSE = "pause"  # backpressure: stopped reading a connection
RESUME = "resume"  # backpressure: reading a connection again
CLOSE = "close"  # the server closed a connection (detail says why)
ERROR = "error"  # something failed (detail says what)

KINDS = (
    ACCEPT,
    ACCEPT_WOULD_BLOCK,
    RECV_CALL,
    RECV,
    WOULD_BLOCK,
    EOF,
    SEND,
    SEND_WOULD_BLOCK,
    WAKEUP,
    PAUSE,
    RESUME,
    CLOSE,
    ERROR,
)


class Event(NamedTuple):
    """One thing that happened: ``t`` is ``time.monotonic()`` seconds."""

    t: float
    kind: str
    conn: int | None = None
    nbytes: int = 0
    detail: str = ""


class EventLog:
    """Thread-safe, bounded log of :class:`Event` plus never-truncated counters.

    Parameters
    ----------
    capacity:
        How many events to keep (oldest dropped first). Counters keep counting.
    enabled:
        When False only the counters are updated (cheapest; for benchmarks).
    """

    def __init__(self, capacity: int = 200_000, enabled: bool = True):
        self._lock = threading.Lock()
        self._events: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._counts: collections.Counter[str] = collections.Counter()
        self._bytes: collections.Counter[str] = collections.Counter()
        self.enabled = enabled
        self.started = time.monotonic()
        self.on_record: Callable[[], object] | None = None  # called after each record, if set

    def record(self, kind: str, conn: int | None = None, nbytes: int = 0, detail: str = "") -> None:
        """Record one event now. Safe to call from any thread."""
        with self._lock:
            self._counts[kind] += 1
            self._bytes[kind] += nbytes
            if self.enabled:
                self._events.append(Event(time.monotonic(), kind, conn, nbytes, detail))
        if self.on_record is not None:
            self.on_record()

    def count(self, kind: str) -> int:
        """How many events of ``kind`` were recorded since the last :meth:`clear`."""
        with self._lock:
            return self._counts[kind]

    def total_bytes(self, kind: str) -> int:
        """Sum of ``nbytes`` over events of ``kind`` (e.g. ``RECV`` = bytes in)."""
        with self._lock:
            return self._bytes[kind]

    def counts(self) -> dict[str, int]:
        """A snapshot of every counter, as a plain dict."""
        with self._lock:
            return dict(self._counts)

    def events(
        self, kind: str | Iterable[str] | None = None, since: float | None = None
    ) -> list[Event]:
        """A snapshot of the kept events, oldest first, optionally filtered."""
        kinds = {kind} if isinstance(kind, str) else (set(kind) if kind is not None else None)
        with self._lock:
            snapshot = list(self._events)
        return [
            e
            for e in snapshot
            if (kinds is None or e.kind in kinds) and (since is None or e.t >= since)
        ]

    def clear(self) -> None:
        """Forget every event and reset every counter."""
        with self._lock:
            self._events.clear()
            self._counts.clear()
            self._bytes.clear()
            self.started = time.monotonic()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __repr__(self) -> str:
        return f"<EventLog {len(self)} events, {sum(self.counts().values())} counted>"


__all__ = [
    "ACCEPT",
    "ACCEPT_WOULD_BLOCK",
    "CLOSE",
    "EOF",
    "ERROR",
    "KINDS",
    "PAUSE",
    "RECV",
    "RECV_CALL",
    "RESUME",
    "SEND",
    "SEND_WOULD_BLOCK",
    "WAKEUP",
    "WOULD_BLOCK",
    "Event",
    "EventLog",
]
