"""The map of names (step 5): every asyncio name in it exists, and so does ours."""

from __future__ import annotations

import asyncio
import inspect
import re

from nbio_helpers.loop import Future, Loop, Reactor, Task, Timer
from nbio_helpers.loop.names import NAMES, names_table
from nbio_helpers.loop.streams import Stream
from nbio_helpers.loop.transport import Transport


def test_every_asyncio_name_exists():
    loop = asyncio.SelectorEventLoop()
    try:
        for row in NAMES:
            for name in re.findall(
                r"(?:loop|asyncio|Future|Task|TimerHandle|StreamWriter|"
                r"transport)\.(\w+)",
                row.asyncio,
            ):
                owners = [
                    loop,
                    asyncio,
                    asyncio.Future,
                    asyncio.Task,
                    asyncio.TimerHandle,
                    asyncio.StreamWriter,
                    asyncio.WriteTransport,
                ]
                assert any(hasattr(owner, name) for owner in owners), (row.asyncio, name)
    finally:
        loop.close()


def test_every_name_of_ours_exists():
    loop = Loop()
    owners = {
        "loop": loop,
        "future": Future,
        "task": Task,
        "Timer": Timer,
        "Transport": Transport,
        "Stream": Stream,
    }
    try:
        for row in NAMES:
            for owner, name in re.findall(
                r"\b(loop|future|task|Timer|Transport|Stream)\.(\w+)", row.ours
            ):
                assert hasattr(owners[owner], name), (row.ours, name)
    finally:
        loop.close()
    assert inspect.isclass(Reactor)


def test_wait_for_raises_the_builtin_timeout_error_on_311_and_later():
    import sys

    if sys.version_info >= (3, 11):
        assert asyncio.TimeoutError is TimeoutError
    assert issubclass(asyncio.CancelledError, BaseException)
    assert not issubclass(asyncio.CancelledError, Exception)


def test_table_lists_every_row():
    text = names_table()
    assert len(text.splitlines()) == len(NAMES) + 2
    assert "call_later" in text and "wait_for" in text
